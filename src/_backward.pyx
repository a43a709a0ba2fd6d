# Design: the gradient of the mean loss over a data set, dJ/dW^(layer) = mean_s
# delta^(layer+1) h^(layer)T and dJ/db^(layer) = mean_s delta^(layer+1), accumulated block by
# block (BLOCK rows, one gemm per layer and direction) so scratch memory stays bounded.
# Directives come from setup.py (boundscheck, wraparound, initializedcheck off; cdivision on):
# safe because cbackprop/network.py validates X, Y, params, grad and spec before calling in.
from cython cimport floating
from libc.string cimport memset
import numpy as np

from _passes cimport (Layout, make_layout, forward_block, loss_and_delta_block,
                      backward_block, SCORE_NONE)

cdef enum:
    BLOCK = 256


def gradients(const Py_ssize_t[::1] spec,     # IN  network description (see _passes.pxd)
              floating[::1] params,           # IN  all W and b (not modified)
              const floating[:, ::1] X,       # IN  (n, n_in), n >= 1
              const floating[:, ::1] Y,       # IN  (n, n_out)
              floating[::1] grad,             # OUT like params (IN/OUT when accumulate)
              const floating[::1] weights=None,   # IN (n,) sample weights; None: all 1
              double scale=0,                 # IN  factor on the summed gradient; 0: 1/n
              bint accumulate=False):         # IN  add to grad instead of overwriting it
    """grad := scale * sum_s d(weight_s J_s)/d params (+ grad when accumulating), by default
    the mean gradient; returns the summed loss sum_s weight_s J_s as a double."""
    cdef Layout net = make_layout(&spec[0])
    cdef Py_ssize_t n = X.shape[0], start, m
    dtype = np.asarray(params).dtype
    cdef floating[::1] H = np.empty(min(BLOCK, n) * net.n_units, dtype=dtype)
    cdef floating[::1] D = np.empty(min(BLOCK, n) * net.n_units, dtype=dtype)
    cdef floating[::1] Z = np.empty(min(BLOCK, n) * net.n_out, dtype=dtype)
    cdef floating alpha = <floating> (scale if scale != 0 else 1.0 / n)
    cdef bint weighted = weights is not None
    cdef double total = 0
    with nogil:
        if not accumulate:
            memset(&grad[0], 0, grad.shape[0] * sizeof(floating))
        start = 0
        while start < n:
            m = min(BLOCK, n - start)
            forward_block(&net, &params[0], &X[start, 0], <int> m, &H[0], &Z[0])
            total += loss_and_delta_block(&net, &H[0], &Z[0], &Y[start, 0],
                                          &weights[start] if weighted else NULL, <int> m,
                                          &D[0], SCORE_NONE, NULL)
            backward_block(&net, &params[0], &X[start, 0], &H[0], &D[0], <int> m,
                           &grad[0], alpha, 1, False)
            start += m
    return total


def trace(const Py_ssize_t[::1] spec,         # IN  network description (see _passes.pxd)
          floating[::1] params,               # IN  all W and b (not modified)
          const floating[:, ::1] X,           # IN  (1, n_in): one sample
          const floating[:, ::1] Y,           # IN  (1, n_out)
          floating[::1] H,                    # OUT (n_units,) h of every layer but the input
          floating[::1] D,                    # OUT (n_units,) delta of every layer but the input
          floating[::1] grad):                # OUT like params: dJ/dparams for this sample
    """One sample's forward and backward pass with every intermediate kept: the numbers
    behind Network.explain, from the passes that train the network. Returns J."""
    cdef Layout net = make_layout(&spec[0])
    cdef floating[::1] Z = np.empty(net.n_out, dtype=np.asarray(params).dtype)
    cdef double J
    with nogil:
        memset(&grad[0], 0, grad.shape[0] * sizeof(floating))
        forward_block(&net, &params[0], &X[0, 0], 1, &H[0], &Z[0])
        J = loss_and_delta_block(&net, &H[0], &Z[0], &Y[0, 0], NULL, 1, &D[0], SCORE_NONE,
                                 NULL)
        backward_block(&net, &params[0], &X[0, 0], &H[0], &D[0], 1, &grad[0], 1, 0, False)
    return J
