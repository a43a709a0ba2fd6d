# Design: inference and the loss over a data set, processed in blocks of BLOCK rows so that the
# scratch memory stays bounded however many rows X has; each block is one gemm per layer.
# Also target_kind, a look at the targets for scoring.
# Directives come from setup.py (boundscheck, wraparound, initializedcheck off; cdivision on):
# safe because cbackprop/network.py validates X, Y, params and spec before calling in.
#
# Notation: z^(layer+1) = W^(layer) h^(layer) + b^(layer), h^(layer+1) = f(z^(layer+1)).
from cython cimport floating
from libc.string cimport memcpy
cimport numpy as cnp
import numpy as np

from _passes cimport (Layout, make_layout, forward_block, loss_and_delta_block,
                      hold_own_layers, SCORE_NONE)
from _arrays cimport check_array, finite_values, ANY_FLOAT
from _blas cimport CBACKPROP_OWN_GEMM, OWN_GEMM_MIN_ROWS

cnp.import_array()

# Rows per block: gemm calls on few rows pay a fixed overhead; 4096 measured best for
# inference on 64-30-10 and 784-128-10 (benchmarks/compare.py, D-inf and M1-inf rows).
cdef enum:
    BLOCK = 4096


cdef inline bint may_hold(Py_ssize_t rows, bint allowed) noexcept nogil:
    """Whether hold_transposed may hold any W for this many rows: forward and loss_sum
    allocate room for it only then (a one-row predict() of a large network allocated a copy
    of every weight for nothing)."""
    return CBACKPROP_OWN_GEMM and allowed and rows >= OWN_GEMM_MIN_ROWS


cdef inline int hold_transposed(const Layout* net, const floating* params, floating* WT,
                                Py_ssize_t rows, bint allowed) noexcept nogil:
    """W^(layer)T at WT + w_off[layer] for each layer own_gemm (_blas.pxd) is to take: where
    it is built and allowed (BLAS runs one thread, from the Python layer: with more, BLAS's
    split of a product may be faster), for at least OWN_GEMM_MIN_ROWS rows, each W within
    OWN_GEMM_MAX_BYTES and among the first OWN_GEMM_MAX_LAYERS. Returns their bits for
    forward_block. own_gemm runs the product without packing either operand, which OpenBLAS
    does at every call: 18% of 64-30-10's inference (perf)."""
    if not may_hold(rows, allowed):
        return 0
    return hold_own_layers(net, params, WT, net.n_layers)


# Calls of forward and loss_sum that took own_gemm for some layer (counted under the GIL):
# whether it was taken cannot be told from the results, which may match BLAS's bit for bit.
cdef Py_ssize_t own_gemm_calls = 0


def own_gemm_call_count():
    """How many forward and loss_sum calls so far took own_gemm for at least one layer."""
    return own_gemm_calls


cdef inline void count_own_gemm(int own):
    global own_gemm_calls
    if own:
        own_gemm_calls += 1


def forward(const Py_ssize_t[::1] spec,       # IN  network description (see _passes.pxd)
            const floating[::1] params,       # IN  all W and b
            const floating[:, ::1] X,         # IN  (n, n_in)
            floating[:, ::1] out,             # OUT (n, n_out)
            bint own_gemm=False):             # IN  BLAS runs one thread (hold_transposed)
    """out := h^(nl) for every row of X, and True; or False, with out unfinished, if X holds
    NaN or infinity. Each block of X is checked just before its gemm reads it, while it is in
    cache: the Python layer's separate pass over X took 9% of 64-30-10's inference."""
    cdef Layout net = make_layout(&spec[0])
    cdef Py_ssize_t n = X.shape[0], start, m, n_out = net.n_out
    cdef bint finite = True
    cdef floating[::1] H = np.empty(min(BLOCK, n) * net.n_units, dtype=np.asarray(params).dtype)
    cdef floating[::1] Z = np.empty(min(BLOCK, n) * n_out, dtype=np.asarray(params).dtype)
    cdef floating[::1] WT = np.empty(net.n_params if may_hold(n, own_gemm) else 1,
                                     dtype=np.asarray(params).dtype)
    cdef Py_ssize_t last = net.n_layers - 1
    cdef int own
    with nogil:
        own = hold_transposed(&net, &params[0], &WT[0], n, own_gemm)
        start = 0
        while start < n:
            m = min(BLOCK, n - start)
            if not finite_values(&X[start, 0], m * net.n_in):
                finite = False
                break
            forward_block(&net, &params[0], &X[start, 0], <int> m, &H[0], &Z[0], &WT[0], own)
            memcpy(&out[start, 0], &H[m * net.unit_off[last]], m * n_out * sizeof(floating))
            start += m
    count_own_gemm(own)
    return finite


def loss_sum(const Py_ssize_t[::1] spec,      # IN  network description
             const floating[::1] params,      # IN  all W and b
             const floating[:, ::1] X,        # IN  (n, n_in)
             const floating[:, ::1] Y,        # IN  (n, n_out)
             bint own_gemm=False):            # IN  BLAS runs one thread (hold_transposed)
    """Sum over the rows of X of the per-sample loss J (mse or cross-entropy), as a double."""
    cdef Layout net = make_layout(&spec[0])
    cdef Py_ssize_t n = X.shape[0], start, m
    cdef floating[::1] H = np.empty(min(BLOCK, n) * net.n_units, dtype=np.asarray(params).dtype)
    cdef floating[::1] Z = np.empty(min(BLOCK, n) * net.n_out, dtype=np.asarray(params).dtype)
    cdef floating[::1] WT = np.empty(net.n_params if may_hold(n, own_gemm) else 1,
                                     dtype=np.asarray(params).dtype)
    cdef double total = 0
    cdef int own
    with nogil:
        own = hold_transposed(&net, &params[0], &WT[0], n, own_gemm)
        start = 0
        while start < n:
            m = min(BLOCK, n - start)
            forward_block(&net, &params[0], &X[start, 0], <int> m, &H[0], &Z[0], &WT[0], own)
            total += loss_and_delta_block(&net, &H[0], &Z[0], &Y[start, 0], NULL, <int> m, NULL,
                                          SCORE_NONE, NULL)
            start += m
    count_own_gemm(own)
    return total


# The checks below take the ndarray itself (see _arrays.pxd): each train() call makes several.

cdef int target_kind_of(const floating* y, Py_ssize_t n, Py_ssize_t n_out) noexcept nogil:
    cdef Py_ssize_t r, k, not_binary = 0, not_one_hot = 0
    cdef floating total, v
    for k in range(n * n_out):
        v = y[k]
        not_binary += (v != 0) & (v != 1)
    if not_binary == 0 and n_out > 1:
        for r in range(n):
            total = 0
            for k in range(n_out):
                total += y[r * n_out + k]
            not_one_hot += total != 1
    return 0 if not_binary else 1 if n_out > 1 and not not_one_hot else 2


def target_kind(cnp.ndarray Y not None):     # IN  (n, n_out) targets, validated finite
    """What the targets Y say about scoring (see cbackprop/train.py score_mode): 0 if some
    value is neither 0 nor 1; else 1 if there is more than one column and every row is one-hot
    (all 0 but a single 1); else 2 (also for no rows). Branch-free compiled passes instead of
    NumPy's isin and row sum, which took 5% of an online epoch of 64-30-10. A sum of 0/1
    values is exactly 1 only for a single 1, in any order of addition and precision."""
    cdef int kind = check_array(Y, ANY_FLOAT, 2, False, "Y")
    cdef Py_ssize_t n = cnp.PyArray_DIMS(Y)[0], n_out = cnp.PyArray_DIMS(Y)[1]
    cdef const void* y = cnp.PyArray_DATA(Y)
    if n == 0 or n_out == 0:
        return 2
    with nogil:
        if kind == cnp.NPY_FLOAT:
            kind = target_kind_of(<const float*> y, n, n_out)
        else:
            kind = target_kind_of(<const double*> y, n, n_out)
    return kind


def all_finite(cnp.ndarray values not None):     # IN  any shape and length
    """Whether no value is NaN or infinite: one pass without temporaries (NumPy's
    isfinite(X).all() wrote a boolean array as large as X, a tenth of a 784-128-10
    mini-batch epoch in page faults and its pass)."""
    cdef int kind = check_array(values, ANY_FLOAT, -1, False, "values")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(values)
    cdef const void* data = cnp.PyArray_DATA(values)
    cdef bint finite
    with nogil:
        if kind == cnp.NPY_FLOAT:
            finite = finite_values(<const float*> data, n)
        else:
            finite = finite_values(<const double*> data, n)
    return finite
