# Design: one call trains over a run of samples (an epoch, or a chunk of one) with the GIL
# released and no allocation inside the loop. Each step moves every parameter by its
# optimizer's rule (src/_optim.pxd) from the mean gradient g of its batch, each sample's
# loss and delta scaled by its weight.
#   batch_size == 1: online training, the matrix-vector path. One sample's backward pass reads
#     each row of W^(layer) to propagate delta^(layer) = (W^T delta^(layer+1)) * f'(z) and
#     applies the update to that row while it is in cache, so no gradient buffer is needed.
#     Plain SGD does both in a single pass over four rows at a time (propagate_and_step), and
#     steps W^(1) together with the next sample's z^(2) = W^(1) x_next + b^(1)
#     (sgd_then_matvec), so the first layer is read once per sample. With a wide first layer
#     (WINDOW_MIN_INPUTS) it steps W^(1) a window of WINDOW samples at a time instead, through
#     three gemms (online_window): exact in real arithmetic, see there. A network of one hidden
#     layer with 5 to 255 inputs runs with its hidden units along the vectors instead of along
#     W's rows (online_two_layer), W^(1) held transposed for the call; one with 1 to 4 inputs
#     and a hidden layer of at most two vectors keeps that layer in vectors and takes the next
#     sample's z^(2) from the previous step (online_small), shortening the chain of dependent
#     operations that sets a tiny network's speed.
#   batch_size > 1: mini-batch, matrix-matrix through BLAS gemm (see _passes.pxd). Plain SGD
#     and classical momentum fold the update into the gemm; the other rules first gather
#     the batch's gradient in a buffer.
# Full-batch Rprop takes its gradient from _backward.gradients and one apply_step per epoch.
# Directives come from setup.py (boundscheck, wraparound, initializedcheck off; cdivision on):
# safe because cbackprop/train.py validates X, Y, weights, order, params, state, hyper and
# spec first.
#
# Notation: W[i, j] = w_ij, i the unit fed (output side), j the unit it leaves (input side);
# h = f(z), delta = dJ/dz, eta = lr.
from cython cimport floating
cimport numpy as cnp
from libc.math cimport isfinite
from libc.stdlib cimport malloc, free
from posix.stdlib cimport posix_memalign
from libc.string cimport memcpy, memset
from _activations cimport (activate, mul_derivative, output_delta, sample_loss, SIGMOID, RELU,
                          LINEAR, SOFTMAX)
from _optim cimport (Step, make_step, apply_update, update_row, SGD, ADAM, RPROP,
                     H_KIND, H_LR, H_MOMENTUM, N_HYPER)
from _blas cimport (gemm, dot, matvec, own_gemm, CBACKPROP_OWN_GEMM, CBACKPROP_PLAIN_C_BUILD,
                   OWN_GEMM_MAX_BYTES, OWN_GEMM_MAX_LAYERS, transpose)
from _passes cimport (Layout, make_layout, forward_sample, forward_block, is_correct,
                      loss_and_delta_block, backward_block, activate_block, step_biases,
                      hold_own_layers, return_own_layers, takes_own,
                      SCORE_NONE, SCORE_THRESHOLD)
from _arrays cimport check_array, finite_values, ANY_FLOAT
from _team cimport cbp_barrier, cbp_barrier_init, cbp_barrier_wait, cbp_team_run, CBP_TEAM_MAX

cnp.import_array()

# Whether this build has own_gemm (_blas.pxd), which mini-batch plain SGD takes for the first
# layer when BLAS runs one thread (see epoch_of): at the AVX-512 level only.
OWN_GEMM = bool(CBACKPROP_OWN_GEMM)
# Whether this build was made with CBACKPROP_PLAIN_C (CI's plain-C job): none of the GCC
# vector code, own_gemm included.
PLAIN_C = bool(CBACKPROP_PLAIN_C_BUILD)


cdef inline bint plain_sgd(const Step* st) noexcept nogil:
    """Plain SGD (no momentum, no L2): the rule the online fast paths below apply."""
    return st.kind == SGD and st.momentum == 0 and st.l2 == 0


cdef inline void sgd_then_matvec_narrow(floating* W, floating* b, const floating* d,
                                        floating eta, const floating* x,
                                        const floating* x_next, floating* z,
                                        Py_ssize_t n_out, Py_ssize_t n_in) noexcept nogil:
    """sgd_then_matvec for a layer of 1 to 4 inputs, called with n_in a literal so that gcc
    unrolls each row (a row this short is all loop overhead and run-time checks otherwise)."""
    cdef Py_ssize_t i, j
    cdef floating step, a, w
    for i in range(n_out):
        step = eta * d[i]
        a = 0
        for j in range(n_in):
            w = W[i * n_in + j] - step * x[j]
            W[i * n_in + j] = w
            a += w * x_next[j]
        b[i] -= step
        z[i] = a + b[i]


cdef inline void sgd_then_matvec(floating* W, floating* b, const floating* d, floating eta,
                                 const floating* x, const floating* x_next, floating* z,
                                 Py_ssize_t n_out, Py_ssize_t n_in) noexcept nogil:
    """W -= eta d x^T and b -= eta d (an SGD step of a layer whose input is x), then
    z := W x_next + b with the new W: one loop over four rows at a time steps each weight and
    adds it to its row's sum, so each row is read from memory once for both. (That loop
    vectorises only with the raised run-time alias check limit in setup.py.) Rows of 1-4
    inputs go to sgd_then_matvec_narrow.
    """
    cdef Py_ssize_t i = 0, r, j, m
    cdef floating step, s0, s1, s2, s3, a0, a1, a2, a3, xj, xn, w
    cdef floating* w0
    cdef floating* w1
    cdef floating* w2
    cdef floating* w3
    if n_in <= 4:
        if n_in == 1:
            sgd_then_matvec_narrow(W, b, d, eta, x, x_next, z, n_out, 1)
        elif n_in == 2:
            sgd_then_matvec_narrow(W, b, d, eta, x, x_next, z, n_out, 2)
        elif n_in == 3:
            sgd_then_matvec_narrow(W, b, d, eta, x, x_next, z, n_out, 3)
        else:
            sgd_then_matvec_narrow(W, b, d, eta, x, x_next, z, n_out, 4)
        return
    while i + 4 <= n_out:
        w0 = W + i * n_in
        w1 = w0 + n_in
        w2 = w1 + n_in
        w3 = w2 + n_in
        s0 = eta * d[i]
        s1 = eta * d[i + 1]
        s2 = eta * d[i + 2]
        s3 = eta * d[i + 3]
        a0 = 0
        a1 = 0
        a2 = 0
        a3 = 0
        for j in range(n_in):
            xj = x[j]
            xn = x_next[j]
            w = w0[j] - s0 * xj
            w0[j] = w
            a0 += w * xn
            w = w1[j] - s1 * xj
            w1[j] = w
            a1 += w * xn
            w = w2[j] - s2 * xj
            w2[j] = w
            a2 += w * xn
            w = w3[j] - s3 * xj
            w3[j] = w
            a3 += w * xn
        b[i] -= s0
        b[i + 1] -= s1
        b[i + 2] -= s2
        b[i + 3] -= s3
        z[i] = a0 + b[i]
        z[i + 1] = a1 + b[i + 1]
        z[i + 2] = a2 + b[i + 2]
        z[i + 3] = a3 + b[i + 3]
        i += 4
    while i < n_out:
        w0 = W + i * n_in
        step = eta * d[i]
        for j in range(n_in):
            w0[j] -= step * x[j]
        b[i] -= step
        z[i] = dot(w0, x_next, n_in) + b[i]
        i += 1


cdef inline void propagate_and_step(floating* W, floating* b, const floating* d, floating eta,
                                    const floating* h, floating* d_in, Py_ssize_t n_out,
                                    Py_ssize_t n_in) noexcept nogil:
    """d_in := W^T d (with the old W), then W -= eta d h^T and b -= eta d: plain SGD on a
    hidden layer, each row of W read once for both. Four rows at a time, so d_in is loaded
    and stored once per four rows.
    """
    cdef Py_ssize_t i = 0, j
    cdef floating d0, d1, d2, d3, s0, s1, s2, s3, v0, v1, v2, v3, hj
    cdef floating* w0
    cdef floating* w1
    cdef floating* w2
    cdef floating* w3
    memset(d_in, 0, n_in * sizeof(floating))
    while i + 4 <= n_out:
        w0 = W + i * n_in
        w1 = w0 + n_in
        w2 = w1 + n_in
        w3 = w2 + n_in
        d0 = d[i]
        d1 = d[i + 1]
        d2 = d[i + 2]
        d3 = d[i + 3]
        s0 = eta * d0
        s1 = eta * d1
        s2 = eta * d2
        s3 = eta * d3
        for j in range(n_in):
            hj = h[j]
            v0 = w0[j]
            v1 = w1[j]
            v2 = w2[j]
            v3 = w3[j]
            d_in[j] += v0 * d0 + v1 * d1 + v2 * d2 + v3 * d3
            w0[j] = v0 - s0 * hj
            w1[j] = v1 - s1 * hj
            w2[j] = v2 - s2 * hj
            w3[j] = v3 - s3 * hj
        b[i] -= s0
        b[i + 1] -= s1
        b[i + 2] -= s2
        b[i + 3] -= s3
        i += 4
    while i < n_out:
        w0 = W + i * n_in
        d0 = d[i]
        s0 = eta * d0
        for j in range(n_in):
            v0 = w0[j]
            d_in[j] += v0 * d0
            w0[j] = v0 - s0 * h[j]
        b[i] -= s0
        i += 1


cdef inline floating online_step(const Layout* net, const Step* st, floating* params,
                                 floating* s0, floating* s1, const floating* x,
                                 const floating* y, floating weight, floating* h,
                                 floating* z_out, floating* delta, int score,
                                 Py_ssize_t* correct, bint z1_ready,
                                 const floating* x_next, bint defer_w1=False) noexcept nogil:
    """One online step on one sample of weight `weight`; returns its weighted loss J.

    The loss and the output delta are scaled by the sample weight, so the step follows the
    gradient of weight * J. Each row of W^(layer) is read once to propagate delta^(layer)
    and apply the update (see update_row).
    Plain SGD with x_next (the next sample's input, or NULL for none) also computes the next
    sample's z^(2) = W^(1) x_next + b^(1) from each updated row of W^(1) while it is in cache,
    into h's first layer: the next step, called with z1_ready, then skips that product. The
    first weight layer, usually the largest, is read once per sample instead of twice.
    Plain SGD with defer_w1 leaves W^(1) alone (online_window applies its steps a window of
    samples at a time) and only updates b^(1); delta^(2) stays in delta for the caller.
    """
    cdef Py_ssize_t layer, i, j, n_in, n_out, last = net.n_layers - 1
    cdef const floating* h_in
    cdef floating* W
    cdef floating step
    cdef floating* d_out
    cdef floating* d_in
    cdef floating J, d_i
    cdef Py_ssize_t w_off, b_off
    cdef int out_code = <int> net.codes[last]
    cdef bint plain = plain_sgd(st)
    cdef floating eta = <floating> st.lr

    forward_sample(net, params, x, h, z_out, z1_ready)
    J = sample_loss(net.loss, out_code, h + net.unit_off[last], z_out, y, net.n_out)
    if score != SCORE_NONE:
        correct[0] += is_correct(score, h + net.unit_off[last], y, net.n_out)
    output_delta(net.loss, out_code, h + net.unit_off[last], y,
                 delta + net.unit_off[last], net.n_out)
    if weight != 1:
        J *= weight
        for i in range(net.n_out):
            delta[net.unit_off[last] + i] *= weight

    for layer in range(last, -1, -1):
        n_in = net.sizes[layer]
        n_out = net.sizes[layer + 1]
        w_off = net.w_off[layer]
        b_off = net.b_off[layer]
        d_out = delta + net.unit_off[layer]
        h_in = x if layer == 0 else h + net.unit_off[layer - 1]
        d_in = delta + net.unit_off[layer - 1] if layer > 0 else NULL
        W = params + w_off
        if plain and d_in != NULL:
            # a hidden layer: delta^(layer) = W^T delta^(layer+1) with the old W, and the
            # step, in one pass over W
            propagate_and_step(W, params + b_off, d_out, eta, h_in, d_in, n_out, n_in)
        elif plain and defer_w1:
            for i in range(n_out):
                params[b_off + i] -= eta * d_out[i]
        elif plain and x_next != NULL:
            # W^(1), the input layer: no delta to propagate, and the next sample's z^(2)
            # computed from the new rows (h's first layer, free again: layer 2's pass above
            # was its last reader)
            sgd_then_matvec(W, params + b_off, d_out, eta, x, x_next, h + net.unit_off[0],
                            n_out, n_in)
        elif plain:
            for i in range(n_out):
                step = eta * d_out[i]
                for j in range(n_in):
                    W[i * n_in + j] -= step * h_in[j]
                params[b_off + i] -= step
        else:
            if d_in != NULL:
                memset(d_in, 0, n_in * sizeof(floating))
            for i in range(n_out):
                d_i = d_out[i]
                update_row(st, params + w_off + i * n_in, s0 + w_off + i * n_in,
                           s1 + w_off + i * n_in, h_in, d_i, n_in, d_in)
                apply_update(st, params + b_off + i, &d_i, s0 + b_off + i,
                             s1 + b_off + i, 1, False, 1)
        if d_in != NULL:
            mul_derivative(<int> net.codes[layer - 1], h_in, d_in, n_in)
    return J


cdef enum:
    # Samples per window of online_window. Its extra work per sample is one row of the
    # window's Gram matrix (WINDOW * n_in multiply-adds) against the 2 * sizes[1] * n_in of
    # the W^(1) products it turns from matrix-vector into matrix-matrix.
    WINDOW = 32
    # Inputs from which online_window pays: its products need a wide W^(1) to beat the
    # matrix-vector loops (measured on 64-30-10 and 784-128-10).
    WINDOW_MIN_INPUTS = 256


cdef inline bint takes_window(const Layout* net, const Step* st) noexcept nogil:
    """Whether online training of this network with this step goes through online_window."""
    return plain_sgd(st) and net.n_in >= WINDOW_MIN_INPUTS


cdef inline double online_window(const Layout* net, const Step* st, floating* params,
                                   const floating* X, const floating* Y,
                                   const Py_ssize_t* order, const floating* weights,
                                   Py_ssize_t n, bint sequential, floating* h,
                                   floating* z_out, floating* delta, floating* scratch,
                                   int score, Py_ssize_t* correct,
                                   bint* rows_finite) noexcept nogil:
    """Online plain SGD over n samples (rows order[0..n) of X, Y), exactly the steps of
    online_step one sample after another, with W^(1) updated a window of m samples at a time.

    Within a window starting from W^(1) = W, sample j sees W_j = W - eta sum_{i<j} d_i x_i^T
    (d_i = delta^(2) of sample i), so
        z_j^(2) = W_j x_j + b_j = (W x_j) - eta sum_{i<j} d_i (x_i . x_j) + b_j
    The products W x_j of the whole window are one gemm (P), the x_i . x_j another (gram),
    and the window's m steps of W^(1) a third: W -= eta D1^T X_w. W^(1) is read twice per
    window instead of twice per sample. Every other layer and b^(1) step sample by sample in
    online_step. The result equals the sample-by-sample steps up to rounding (the sums are
    grouped differently); windows start at sample 0 of each call, so the Python layer keeps
    call boundaries on multiples of WINDOW for runs that must repeat bit for bit.
    scratch: WINDOW * (2 * sizes[1] + WINDOW + n_in) values (see workspace_size), carved into
    P (WINDOW, sizes[1]), gram (WINDOW, WINDOW), D1 (WINDOW, sizes[1]) and XW (WINDOW, n_in),
    the rows gathered when not sequential.
    """
    cdef Py_ssize_t n_in = net.n_in, n1 = net.sizes[1], n_out = net.n_out
    cdef Py_ssize_t start, m, i, j, k, r
    cdef floating* P = scratch
    cdef floating* gram = P + WINDOW * n1
    cdef floating* D1 = gram + WINDOW * WINDOW
    cdef floating* XW = D1 + WINDOW * n1
    cdef floating* W = params + net.w_off[0]
    cdef floating* b = params + net.b_off[0]
    cdef floating* z1 = h + net.unit_off[0]
    cdef floating* d1 = delta + net.unit_off[0]
    cdef const floating* Xw
    cdef floating eta = <floating> st.lr, c
    cdef double total = 0
    cdef bint finite
    start = 0
    while start < n:
        m = min(<Py_ssize_t> WINDOW, n - start)
        if sequential:
            Xw = X + order[start] * n_in
        else:
            for j in range(m):
                memcpy(XW + j * n_in, X + order[start + j] * n_in, n_in * sizeof(floating))
            Xw = XW
        if not finite_values(Xw, m * n_in):
            rows_finite[0] = False
            break
        gemm(c'N', c'T', <int> m, <int> n1, <int> n_in, 1, Xw, <int> n_in, W, <int> n_in,
             0, P, <int> n1)                                        # P = X_w W^T
        gemm(c'N', c'T', <int> m, <int> m, <int> n_in, 1, Xw, <int> n_in, Xw, <int> n_in,
             0, gram, <int> m)                                      # gram = X_w X_w^T
        finite = True
        for k in range(m * m):
            finite = finite and isfinite(gram[k])
        if not finite:
            # x_i . x_j overflowed (inputs near the dtype's limit): -eta * inf * 0 would make
            # NaN of a step that is 0, so this window steps sample by sample instead
            for j in range(m):
                r = order[start + j]
                total += online_step(net, st, params, NULL, NULL, Xw + j * n_in,
                                     Y + r * n_out, weights[r] if weights != NULL else 1, h,
                                     z_out, delta, score, correct, False, NULL)
            start += m
            continue
        for j in range(m):
            r = order[start + j]
            for k in range(n1):
                z1[k] = P[j * n1 + k] + b[k]
            for i in range(j):
                c = -eta * gram[j * m + i]
                for k in range(n1):
                    z1[k] += c * D1[i * n1 + k]
            total += online_step(net, st, params, NULL, NULL, Xw + j * n_in, Y + r * n_out,
                                 weights[r] if weights != NULL else 1, h, z_out, delta,
                                 score, correct, True, NULL, True)
            memcpy(D1 + j * n1, d1, n1 * sizeof(floating))
        gemm(c'T', c'N', <int> n1, <int> n_in, <int> m, -eta, D1, <int> n1, Xw, <int> n_in,
             1, W, <int> n_in)                                      # W -= eta D1^T X_w
        start += m
    return total


def online_run(const Py_ssize_t[::1] spec, const double[::1] hyper):
    """(samples per run, rows per gemm) of online training with these hyper-parameters:
    (WINDOW, WINDOW) when it updates W^(1) a window at a time through gemm (online_window),
    (SMALL_RUN, 1) for online_small, else (1, 1). The Python layer cuts compiled calls on
    whole runs, so that a run repeats bit for bit however it is cut."""
    cdef Layout net = make_layout(&spec[0])
    if hyper.shape[0] != N_HYPER:
        raise ValueError("online_run: hyper has the wrong length")
    cdef Step st = make_step(&hyper[0], 1)
    if takes_window(&net, &st):
        return WINDOW, WINDOW
    if takes_small(&net, &st):
        return SMALL_RUN, 1
    return 1, 1


cdef enum:
    # The most units per vector at any kernel level (float32, AVX-512). online_two_layer pads
    # its hidden layer to whole vectors of its own build and dtype (CBACKPROP_LANES_*, at most
    # this: the C block below asserts it); workspace_size reserves the padding for this many.
    MAX_LANES = 16


cdef inline Py_ssize_t padded(Py_ssize_t n, Py_ssize_t lanes) noexcept nogil:
    return (n + lanes - 1) // lanes * lanes


cdef inline bint takes_two_layer(const Layout* net, const Step* st) noexcept nogil:
    """Whether online training of this network with this step goes through online_two_layer:
    plain SGD on one hidden layer whose input is narrower than online_window's, and wider than
    4 (narrower rows go to sgd_then_matvec_narrow: 2-8-1 float64 ran 7% slower here)."""
    return (plain_sgd(st) and net.n_layers == 2 and 4 < net.n_in < WINDOW_MIN_INPUTS)


cdef inline Py_ssize_t two_layer_size(const Layout* net, Py_ssize_t lanes) noexcept nogil:
    """Scratch of online_two_layer with its hidden layer padded to whole vectors of `lanes`
    units: W^(1) transposed and W^(2) with padded rows, b^(1), h^(2) and delta^(2) padded."""
    return padded(net.sizes[1], lanes) * (net.n_in + net.n_out + 3)


cdef inline void hold_one_hidden_layer(const Layout* net, const floating* params,
                                       floating* W1T, floating* W2P, floating* b1,
                                       Py_ssize_t P) noexcept nogil:
    """Copy a one-hidden-layer network's W^(1) transposed (n_in rows of P units), W^(2) with
    rows of P units and b^(1) into scratch for online_two_layer and online_small; the
    padding (units nh..P) is left as the caller zeroed it."""
    cdef Py_ssize_t i, j, k, n_in = net.n_in, nh = net.sizes[1]
    cdef const floating* W1 = params + net.w_off[0]
    for i in range(nh):
        for j in range(n_in):
            W1T[j * P + i] = W1[i * n_in + j]
        b1[i] = params[net.b_off[0] + i]
    for k in range(net.n_out):
        memcpy(W2P + k * P, params + net.w_off[1] + k * nh, nh * sizeof(floating))


cdef inline void return_one_hidden_layer(const Layout* net, floating* params,
                                         const floating* W1T, const floating* W2P,
                                         const floating* b1, Py_ssize_t P) noexcept nogil:
    """The copies of hold_one_hidden_layer back into params."""
    cdef Py_ssize_t i, j, k, n_in = net.n_in, nh = net.sizes[1]
    cdef floating* W1 = params + net.w_off[0]
    for i in range(nh):
        for j in range(n_in):
            W1[i * n_in + j] = W1T[j * P + i]
        params[net.b_off[0] + i] = b1[i]
    for k in range(net.n_out):
        memcpy(params + net.w_off[1] + k * nh, W2P + k * P, nh * sizeof(floating))


cdef extern from *:
    """
    /* step_columns_then_matvec (see online_two_layer in _train.pyx): W -= eta d x^T and
       b -= eta d, then z := W x_next + b, for W held transposed (WT: n_in rows of P units, P
       a multiple of the vector length) so that both run along whole vectors of units: for
       each input j, one multiply-add steps column j of W and one adds it, times x_next[j], to
       z. The sums over j stay in registers (GCC vector types: an array accumulator was kept
       in memory, a store and a reload per input), two per vector (even and odd j) to halve
       the chain of dependent additions; no sum across units is needed, unlike the row form.
       CBACKPROP_PLAIN_C forces the plain-C version (to test it with GCC). */
    #include <string.h>
    #if defined(__GNUC__) && !defined(CBACKPROP_PLAIN_C)
    /* the widest vector this build's instruction set has: a wider GCC vector type would be
       split through memory */
    #if defined(__AVX512F__)
    #define CBACKPROP_VBYTES 64
    #elif defined(__AVX__)
    #define CBACKPROP_VBYTES 32
    #else
    #define CBACKPROP_VBYTES 16
    #endif
    /* one block of KK vectors of units (KK a constant, so acc0, acc1 and dl stay in
       registers) */
    #define CBACKPROP_COLUMN_BLOCK(T, VEC, VL, KK, WT, d, eta, x, x_next, b, z, n_in, P, ib)    \
        do {                                                                               \
            VEC acc0[KK], acc1[KK], dl[KK], w0, w1;                                       \
            for (int k = 0; k < KK; k++) {                                                \
                memcpy(&acc0[k], b + ib + k * VL, sizeof w0);                             \
                memcpy(&dl[k], d + ib + k * VL, sizeof w0);                               \
                acc0[k] -= eta * dl[k];                   /* b's step */                   \
                memcpy(b + ib + k * VL, &acc0[k], sizeof w0);                             \
                memset(&acc1[k], 0, sizeof w0);                                            \
            }                                                                              \
            Py_ssize_t j = 0;                                                              \
            for (; j + 2 <= n_in; j += 2) {                                                \
                T s0 = eta * x[j], s1 = eta * x[j + 1], n0 = x_next[j], n1 = x_next[j + 1]; \
                for (int k = 0; k < KK; k++) {                                            \
                    T *w = WT + j * P + ib + k * VL;                                       \
                    memcpy(&w0, w, sizeof w0);                                             \
                    memcpy(&w1, w + P, sizeof w1);                                         \
                    w0 -= s0 * dl[k];                                                      \
                    w1 -= s1 * dl[k];                                                      \
                    memcpy(w, &w0, sizeof w0);                                             \
                    memcpy(w + P, &w1, sizeof w1);                                         \
                    acc0[k] += n0 * w0;                                                    \
                    acc1[k] += n1 * w1;                                                    \
                }                                                                          \
            }                                                                              \
            if (j < n_in) {                                                                \
                T s0 = eta * x[j], n0 = x_next[j];                                         \
                for (int k = 0; k < KK; k++) {                                            \
                    T *w = WT + j * P + ib + k * VL;                                       \
                    memcpy(&w0, w, sizeof w0);                                             \
                    w0 -= s0 * dl[k];                                                      \
                    memcpy(w, &w0, sizeof w0);                                             \
                    acc0[k] += n0 * w0;                                                    \
                }                                                                          \
            }                                                                              \
            for (int k = 0; k < KK; k++) {                                                \
                acc0[k] += acc1[k];                                                        \
                memcpy(z + ib + k * VL, &acc0[k], sizeof w0);                              \
            }                                                                              \
        } while (0)
    /* P, the padded units, is a multiple of the vector length VL: blocks of two vectors,
       then one */
    #define CBACKPROP_COLUMNS(NAME, T)                                                          \
    typedef T NAME##_vec __attribute__((vector_size(CBACKPROP_VBYTES)));                         \
    static inline void NAME(T *WT, const T *d, T eta, const T *x, const T *x_next,         \
                            T *b, T *z, Py_ssize_t n_in, Py_ssize_t P) {                   \
        const Py_ssize_t VL = CBACKPROP_VBYTES / sizeof(T);                                      \
        Py_ssize_t ib = 0;                                                                 \
        for (; ib + 2 * VL <= P; ib += 2 * VL)                                             \
            CBACKPROP_COLUMN_BLOCK(T, NAME##_vec, VL, 2, WT, d, eta, x, x_next, b, z,      \
                                   n_in, P, ib);                                           \
        if (ib < P)                                                                        \
            CBACKPROP_COLUMN_BLOCK(T, NAME##_vec, VL, 1, WT, d, eta, x, x_next, b, z,      \
                                   n_in, P, ib);                                           \
    }
    /* cbp_rows_* (see online_two_layer): d := W^T dout with the old W, then
       W -= eta dout h^T, for W of n_out rows of P units: blocks of units outside, the rows
       inside, so d's sums stay in registers across the rows (summed in row order) */
    #define CBACKPROP_ROW_BLOCK(T, VEC, VL, KK, W, h, dout, eta, d, n_out, P, ib)         \
        do {                                                                               \
            VEC acc[KK], hv[KK], w;                                                        \
            for (int k = 0; k < KK; k++) {                                                \
                memset(&acc[k], 0, sizeof w);                                              \
                memcpy(&hv[k], h + ib + k * VL, sizeof w);                                 \
            }                                                                              \
            for (Py_ssize_t r = 0; r < n_out; r++) {                                       \
                T dr = dout[r], sr = eta * dout[r];                                        \
                for (int k = 0; k < KK; k++) {                                            \
                    T *row = W + r * P + ib + k * VL;                                      \
                    memcpy(&w, row, sizeof w);                                             \
                    acc[k] += w * dr;                                                      \
                    w -= sr * hv[k];                                                       \
                    memcpy(row, &w, sizeof w);                                             \
                }                                                                          \
            }                                                                              \
            for (int k = 0; k < KK; k++)                                                  \
                memcpy(d + ib + k * VL, &acc[k], sizeof w);                                \
        } while (0)
    #define CBACKPROP_ROWS(NAME, T)                                                       \
    typedef T NAME##_vec __attribute__((vector_size(CBACKPROP_VBYTES)));                   \
    static inline void NAME(T *W, const T *h, const T *dout, T eta, T *d,                  \
                            Py_ssize_t n_out, Py_ssize_t P) {                              \
        const Py_ssize_t VL = CBACKPROP_VBYTES / sizeof(T);                                \
        Py_ssize_t ib = 0;                                                                 \
        for (; ib + 2 * VL <= P; ib += 2 * VL)                                             \
            CBACKPROP_ROW_BLOCK(T, NAME##_vec, VL, 2, W, h, dout, eta, d, n_out, P, ib);   \
        if (ib < P)                                                                        \
            CBACKPROP_ROW_BLOCK(T, NAME##_vec, VL, 1, W, h, dout, eta, d, n_out, P, ib);   \
    }
    #define CBACKPROP_LANES_FLOAT (CBACKPROP_VBYTES / 4)
    #define CBACKPROP_LANES_DOUBLE (CBACKPROP_VBYTES / 8)
    _Static_assert(CBACKPROP_VBYTES / 4 <= 16, "MAX_LANES in _train.pyx must cover a vector");
    #else  /* plain C: the same arithmetic in the same order, unit by unit */
    #define CBACKPROP_LANES_FLOAT 4
    #define CBACKPROP_LANES_DOUBLE 2
    #define CBACKPROP_COLUMNS(NAME, T)                                                          \
    static inline void NAME(T *WT, const T *d, T eta, const T *x, const T *x_next,         \
                            T *b, T *z, Py_ssize_t n_in, Py_ssize_t P) {                   \
        for (Py_ssize_t i = 0; i < P; i++) {                                               \
            T acc0 = b[i] - eta * d[i], acc1 = 0, v;                                       \
            b[i] = acc0;                                                                   \
            Py_ssize_t j = 0;                                                              \
            for (; j + 2 <= n_in; j += 2) {                                                \
                v = WT[j * P + i] - (eta * x[j]) * d[i];                                   \
                WT[j * P + i] = v;                                                         \
                acc0 += x_next[j] * v;                                                     \
                v = WT[(j + 1) * P + i] - (eta * x[j + 1]) * d[i];                         \
                WT[(j + 1) * P + i] = v;                                                   \
                acc1 += x_next[j + 1] * v;                                                 \
            }                                                                              \
            if (j < n_in) {                                                                \
                v = WT[j * P + i] - (eta * x[j]) * d[i];                                   \
                WT[j * P + i] = v;                                                         \
                acc0 += x_next[j] * v;                                                     \
            }                                                                              \
            z[i] = acc0 + acc1;                                                            \
        }                                                                                  \
    }
    #define CBACKPROP_ROWS(NAME, T)                                                       \
    static inline void NAME(T *W, const T *h, const T *dout, T eta, T *d,                  \
                            Py_ssize_t n_out, Py_ssize_t P) {                              \
        for (Py_ssize_t i = 0; i < P; i++)                                                 \
            d[i] = 0;                                                                      \
        for (Py_ssize_t r = 0; r < n_out; r++) {                                           \
            T dr = dout[r], sr = eta * dout[r];                                            \
            for (Py_ssize_t i = 0; i < P; i++) {                                           \
                T w = W[r * P + i];                                                        \
                d[i] += w * dr;                                                            \
                W[r * P + i] = w - sr * h[i];                                              \
            }                                                                              \
        }                                                                                  \
    }
    #endif
    CBACKPROP_COLUMNS(cbp_columns_f, float)
    CBACKPROP_COLUMNS(cbp_columns_d, double)
    CBACKPROP_ROWS(cbp_rows_f, float)
    CBACKPROP_ROWS(cbp_rows_d, double)
    """
    const Py_ssize_t CBACKPROP_LANES_FLOAT, CBACKPROP_LANES_DOUBLE
    void cbp_rows_f(float* W, const float* h, const float* dout, float eta, float* d,
                    Py_ssize_t n_out, Py_ssize_t P) noexcept nogil
    void cbp_rows_d(double* W, const double* h, const double* dout, double eta, double* d,
                    Py_ssize_t n_out, Py_ssize_t P) noexcept nogil
    void cbp_columns_f(float* WT, const float* d, float eta, const float* x,
                       const float* x_next, float* b, float* z, Py_ssize_t n_in,
                       Py_ssize_t P) noexcept nogil
    void cbp_columns_d(double* WT, const double* d, double eta, const double* x,
                       const double* x_next, double* b, double* z, Py_ssize_t n_in,
                       Py_ssize_t P) noexcept nogil


cdef inline void step_columns_then_matvec(floating* WT, const floating* d, floating eta,
                                          const floating* x, const floating* x_next,
                                          floating* b, floating* z, Py_ssize_t n_in,
                                          Py_ssize_t P) noexcept nogil:
    """W -= eta d x^T and b -= eta d, then z := W x_next + b, for W held transposed: see the
    C above."""
    if floating is float:
        cbp_columns_f(WT, d, eta, x, x_next, b, z, n_in, P)
    else:
        cbp_columns_d(WT, d, eta, x, x_next, b, z, n_in, P)


cdef inline double online_two_layer(const Layout* net, const Step* st, floating* params,
                                    const floating* X, const floating* Y,
                                    const Py_ssize_t* order, const floating* weights,
                                    Py_ssize_t n, floating* h, floating* z_out,
                                    floating* delta, floating* scratch, int score,
                                    Py_ssize_t* correct, bint* rows_finite) noexcept nogil:
    """Online plain SGD over n samples (rows order[0..n) of X, Y) of a network with one
    hidden layer: the steps of online_step, with the hidden units along the vectors.

    For the call, W^(1) is copied transposed (a row per input, as in step_columns_then_matvec)
    and W^(2) with its rows, b^(1), h^(2) and delta^(2) padded to whole vectors of units,
    the padding zero. Per sample:
        h^(2) = f(z^(2))                          (z^(2) from the previous sample's step)
        z^(3)_k = W^(2)_k . h^(2) + b^(2)_k       (one vector sum per output unit)
        J, delta^(3) as in online_step (the sample weight scales both)
        delta^(2) = sum_k delta^(3)_k W^(2)_k * f'(z^(2)), with the old W^(2);
        W^(2)_k -= eta delta^(3)_k h^(2) in the same pass (cbp_rows_*, in C like
        the next: its sums stay in registers across the rows); b^(2) steps
        W^(1) and b^(1) step and give the next sample's z^(2) (step_columns_then_matvec)
    The padded units stay exactly zero: their weights and bias are 0, so z = 0; h^(2) there
    is set back to 0 after the activation (computed over whole vectors), so W^(2)'s padding
    never steps and delta^(2) there is 0. The
    first sample's z^(2) comes from the same routine with a zero step, so a run's bits do not
    depend on where the Python layer cuts it into calls. Everything is copied back at the end.
    n >= 1. scratch: two_layer_size(net, MAX_LANES) values.
    """
    cdef Py_ssize_t n_in = net.n_in, nh = net.sizes[1], n_out = net.n_out
    # whole vectors of this build's instruction set
    cdef Py_ssize_t lanes = CBACKPROP_LANES_FLOAT if floating is float else CBACKPROP_LANES_DOUBLE
    cdef Py_ssize_t P = padded(nh, lanes)
    cdef Py_ssize_t i, k, s, r
    cdef floating* b2 = params + net.b_off[1]
    cdef floating* W1T = scratch
    cdef floating* W2P = W1T + n_in * P
    cdef floating* b1 = W2P + n_out * P
    cdef floating* h2 = b1 + P
    cdef floating* d2 = h2 + P
    cdef floating* h3 = h + net.unit_off[1]
    cdef floating* d3 = delta + net.unit_off[1]
    cdef int code1 = <int> net.codes[0], code2 = <int> net.codes[1]
    cdef floating eta = <floating> st.lr, a, weight, J
    cdef const floating* x
    cdef const floating* y
    cdef double total = 0
    memset(scratch, 0, two_layer_size(net, lanes) * sizeof(floating))
    hold_one_hidden_layer(net, params, W1T, W2P, b1, P)
    x = X + order[0] * n_in             # (checked by epoch_of: 0 * inf would be NaN)
    step_columns_then_matvec(W1T, d2, 0, x, x, b1, h2, n_in, P)    # d2 is 0: no step
    for s in range(n):
        r = order[s]
        x = X + r * n_in
        y = Y + r * n_out
        if not finite_values(x, n_in):      # (z^(2) from it is not used)
            rows_finite[0] = False
            break
        # over whole vectors (a scalar tail of a polynomial sigmoid was most of this call),
        # the exp chosen by the real width; the padding, f(0), back to 0
        activate(code1, h2, P, nh)
        for i in range(nh, P):
            h2[i] = 0
        for k in range(n_out):
            a = 0
            for i in range(P):
                a += W2P[k * P + i] * h2[i]
            h3[k] = a + b2[k]
        for k in range(n_out):          # (a loop: a few outputs cost less than a call)
            z_out[k] = h3[k]
        activate(code2, h3, n_out)
        J = sample_loss(net.loss, code2, h3, z_out, y, n_out)
        if score != SCORE_NONE:
            correct[0] += is_correct(score, h3, y, n_out)
        output_delta(net.loss, code2, h3, y, d3, n_out)
        if weights != NULL and weights[r] != 1:
            weight = weights[r]
            J *= weight
            for k in range(n_out):
                d3[k] *= weight
        total += J
        # delta^(2) before f' = W^(2)T delta^(3) with the old W^(2), and W^(2)'s step
        if floating is float:
            cbp_rows_f(W2P, h2, d3, eta, d2, n_out, P)
        else:
            cbp_rows_d(W2P, h2, d3, eta, d2, n_out, P)
        for k in range(n_out):
            b2[k] -= eta * d3[k]
        mul_derivative(code1, h2, d2, P)
        # the last sample steps W^(1) against itself: the z^(2) it leaves is not used
        step_columns_then_matvec(W1T, d2, eta, x,
                                 X + order[s + 1] * n_in if s + 1 < n else x, b1, h2, n_in, P)
    return_one_hidden_layer(net, params, W1T, W2P, b1, P)
    return total


cdef enum:
    # Samples per run of online_small: a run's first sample computes z^(2) directly, the others
    # through the previous sample's step (see there); the Python layer cuts calls on whole
    # runs, so that a run's bits do not depend on the cut.
    SMALL_RUN = 64


cdef extern from *:
    """
    /* online_small (see _train.pyx): online plain SGD of one hidden layer of at most two
       vectors of units, 1 to 4 inputs. Such a network's time per sample is the chain of
       dependent operations from one sample's step to the next (two activations deep), so
       its hidden layer stays in whole vectors (GCC vector types) and its sigmoid is a
       vector polynomial evaluated by Estrin's scheme (a shorter chain than Horner's). */
    #if defined(__GNUC__) && !defined(CBACKPROP_PLAIN_C) && \
        (defined(__x86_64__) || defined(__i386__))
    #define CBACKPROP_SMALL 1
    /* at most 32-byte vectors: 2-8-1's step took 51 ns a sample with 64-byte ones (AVX-512)
       and 47 with 32-byte ones */
    #if defined(__AVX__)
    #define CBACKPROP_SMALL_VBYTES 32
    #else
    #define CBACKPROP_SMALL_VBYTES 16
    #endif
    #if defined(__AVX512F__)
    #define CBACKPROP_OPAQUE(v) __asm__("" : "+v"(v))
    #else
    #define CBACKPROP_OPAQUE(v) __asm__("" : "+x"(v))
    #endif
    /* the polynomials of exp_nonpositive (_activations.pxd), Taylor's to degree 7 (float)
       and 13 (double) at r, |r| <= ln2 / 2, evaluated by Estrin's scheme: pairs
       c_2i + c_2i+1 r, joined by r^2, then r^4, then r^8 */
    #define CBACKPROP_ESTRIN_F(r, p)                                                          \
        do {                                                                               \
            __typeof__(r) r2 = r * r, r4 = r2 * r2;                                        \
            p = ((1.0f + r) + r2 * (0.5f + r * (1.0f / 6))) +                              \
                r4 * (((1.0f / 24) + r * (1.0f / 120)) +                                   \
                      r2 * ((1.0f / 720) + r * (1.0f / 5040)));                            \
        } while (0)
    #define CBACKPROP_ESTRIN_D(r, p)                                                          \
        do {                                                                               \
            __typeof__(r) r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;                          \
            p = (((1.0 + r) + r2 * (1.0 / 2 + r * (1.0 / 6))) +                            \
                 r4 * ((1.0 / 24 + r * (1.0 / 120)) + r2 * (1.0 / 720 + r * (1.0 / 5040)))) + \
                r8 * (((1.0 / 40320 + r * (1.0 / 362880)) +                                \
                       r2 * (1.0 / 3628800 + r * (1.0 / 39916800))) +                      \
                      r4 * (1.0 / 479001600 + r * (1.0 / 6227020800.0)));                  \
        } while (0)
    /* e^x for lanes x <= 0 (or NaN): exp_nonpositive's range reduction and two-part scale
       (subnormal results come out right), its roundings done by adding and subtracting
       MAGIC through CBACKPROP_OPAQUE so that reassociation cannot fold them away */
    #define CBACKPROP_SMALL_EXP(NAME, T, IT, MAGIC, LOG2E, LN2_HI, LN2_LO, LOWEST, MANT,   \
                                BIAS, SIGN, ESTRIN)                                        \
    typedef T NAME##_v __attribute__((vector_size(CBACKPROP_SMALL_VBYTES)));                    \
    typedef IT NAME##_iv __attribute__((vector_size(CBACKPROP_SMALL_VBYTES)));                  \
    static inline NAME##_v NAME##_exp(NAME##_v x) {                                        \
        const NAME##_v zero = {0}, magic = zero + MAGIC, lowest = zero + LOWEST;           \
        NAME##_iv low = x < lowest;                                                        \
        x = (NAME##_v) ((low & (NAME##_iv) lowest) | (~low & (NAME##_iv) x));             \
        NAME##_v t = x * LOG2E + magic;                                                    \
        CBACKPROP_OPAQUE(t);                                                               \
        NAME##_v kd = t - magic;                     /* k = x / ln2 rounded */             \
        NAME##_v half = kd * (T) 0.5 + magic;        /* magic + about k / 2 */             \
        CBACKPROP_OPAQUE(half);                                                            \
        NAME##_v r = x - kd * LN2_HI;                                                      \
        CBACKPROP_OPAQUE(r);                                                               \
        r = r - kd * LN2_LO;                                                               \
        NAME##_v p;                                                                        \
        ESTRIN(r, p);                                                                      \
        NAME##_iv s1 = (((NAME##_iv) half - (NAME##_iv) magic) + BIAS) << MANT;            \
        /* k - k1 from the two roundings' bits, in integers (no sum to reassociate) */     \
        NAME##_iv s2 = (((NAME##_iv) t - (NAME##_iv) half) + BIAS) << MANT;                \
        /* 2^k1 * 2^(k-k1) = 2^k is exact down to the smallest subnormal; one step lower     \
           (x within 0.35 of the clamp) it is a tie that rounds to 0, and so does e^x, one  \
           smallest subnormal from its value */                                            \
        return p * ((NAME##_v) s1 * (NAME##_v) s2);                                        \
    }                                                                                      \
    /* b^(1) + sum_j x_j W^(1)T_j over the vector of units at offset u of W^(1) held
       transposed (n_in rows of P units): a vector of W^(1) x + b^(1) */                   \
    static inline NAME##_v NAME##_affine(const T *W1T, const T *b1, const T *x,            \
                                         Py_ssize_t n_in, Py_ssize_t P, Py_ssize_t u) {    \
        NAME##_v acc, w;                                                                   \
        memcpy(&acc, b1 + u, sizeof acc);                                                  \
        for (Py_ssize_t j = 0; j < n_in; j++) {                                            \
            memcpy(&w, W1T + j * P + u, sizeof w);                                         \
            acc += x[j] * w;                                                               \
        }                                                                                  \
        return acc;                                                                        \
    }                                                                                      \
    /* h = f(z) and f'(z) from h for the hidden codes online_small takes (_activations.pxd's
       SIGMOID 0, RELU 2, LINEAR 3); the sigmoid as 1 / (1 + e^-|z|), or e^-|z| / (1 + e^-|z|)
       for z < 0: -|z| by setting the sign bit (SIGN) and one division, which is the
       chain from one sample to the next (sigmoid()'s select and e^-|z| * r cost 2-8-1
       1.4 of 35.5 ns a sample in float32, 1.8 of 44.5 in float64) */                                                            \
    static inline NAME##_v NAME##_activate(int code, NAME##_v z, NAME##_v *fp) {          \
        const NAME##_v zero = {0}, one = zero + 1;                                         \
        if (code == 0) {                                                                   \
            NAME##_iv neg = z < zero, sign = (NAME##_iv) {0} + SIGN;                       \
            NAME##_v e = NAME##_exp((NAME##_v) ((NAME##_iv) z | sign));  /* -|z| */        \
            NAME##_v num = (NAME##_v) ((neg & (NAME##_iv) e) | (~neg & (NAME##_iv) one));  \
            NAME##_v h = num / (one + e);                                                  \
            *fp = h * (one - h);                                                           \
            return h;                                                                      \
        }                                                                                  \
        if (code == 2) {                                                                   \
            NAME##_iv pos = z > zero;                                                      \
            *fp = (NAME##_v) (pos & (NAME##_iv) one);                                      \
            return (NAME##_v) (pos & (NAME##_iv) z);                                       \
        }                                                                                  \
        *fp = one;                                                                         \
        return z;                                                                          \
    }
    CBACKPROP_SMALL_EXP(cbp_small_f, float, int, 12582912.0f, 1.44269504f, 0.693359375f,
                        -2.12194440e-4f, -104.0f, 23, 127, (-2147483647 - 1),
                        CBACKPROP_ESTRIN_F)
    CBACKPROP_SMALL_EXP(cbp_small_d, double, long long, 6755399441055744.0,
                        1.4426950408889634, 6.93147180369123816490e-01,
                        1.90821492927058770002e-10, -750.0, 52, 1023,
                        (-9223372036854775807LL - 1), CBACKPROP_ESTRIN_D)
    /* online_small's loop over n samples (rows order[0..n) of X, Y) for KK vectors of VL
       units (P = KK * VL), the whole step in C so that z^(2), h^(2) and f' stay in
       registers from one sample to the next. Per sample, with x' the next sample's input:
           h^(2) = f(z^(2)), f' from h^(2)            (z^(2) carried from the last step, or
                                                       W^(1) x + b^(1) at a run's start)
           A = W^(1) x' + b^(1),  c = eta (x . x' + 1)        (off the chain, old W^(1))
           z^(3)_o = W^(2)_o . h^(2) + b^(2)_o,  V_o = c f' * W^(2)_o   (old W^(2))
           h^(3), J and delta^(3) as sample_loss and output_delta compute them (the codes
           online_small takes: sigmoid, tanh, relu or linear outputs, the squared error or
           sigmoid's cross-entropy), counted by is_correct's rules, scaled by the weight
           z^(2)' = A - sum_o delta^(3)_o V_o = W^(1)' x' + b^(1)'   (one multiply-add after
                                                                     delta^(3) per output)
           delta^(2) = f' * sum_o delta^(3)_o W^(2)_o; W^(2), b^(2), W^(1), b^(1) step
       Codes: _activations.pxd's SIGMOID 0, TANH 1, RELU 2, LINEAR 3 and MSE 0, and
       _passes.pxd's SCORE_NONE 0, SCORE_ARGMAX 1. A sample after one whose |c| is not below
       c_max (inputs near the dtype's limit, where V could overflow) starts afresh too.
       `mask` is 1 on the real units and 0 on the padding, so W^(2)'s padding never steps
       (h^(2) there is f(0)). V: n_out * P, d3: n_out values of scratch. */
    #define CBACKPROP_SMALL_RUN(NAME, T, KK, ONE_OUT, SUFFIX, EXP, LOG1P, TANH)          \
    static inline double NAME##_run##KK##SUFFIX(int code1, int code2, int loss, int score, \
            T *restrict W1T, T *restrict b1, T *restrict W2, T *restrict b2,               \
            T *restrict V, T *restrict d3, const T *mask, const T *X, const T *Y,          \
            const Py_ssize_t *order, const T *weights, Py_ssize_t n, Py_ssize_t n_in,      \
            Py_ssize_t n_outs, T eta, T c_max, Py_ssize_t run, Py_ssize_t *correct,        \
            int *finite) {                                                                 \
        const Py_ssize_t VL = CBACKPROP_SMALL_VBYTES / sizeof(T), P = KK * VL;             \
        const Py_ssize_t n_out = ONE_OUT ? 1 : n_outs;   /* a constant 1 keeps delta^(3)   \
                                                            in a register */               \
        NAME##_v z[KK], h[KK], f[KK], A[KK], g[KK], hm[KK], m[KK], w, v, acc;              \
        double total = 0;                                                                  \
        Py_ssize_t right = 0;                                                              \
        int afresh = 1;                                                                    \
        Py_ssize_t run_end = run;                         /* where the next run starts */  \
        _Pragma("GCC unroll 2")                                                            \
        for (int k = 0; k < KK; k++)                                                       \
            memcpy(&m[k], mask + k * VL, sizeof w);                                        \
        for (Py_ssize_t s = 0; s < n; s++) {                                               \
            const T *x = X + order[s] * n_in, *y = Y + order[s] * n_out;                   \
            const T *x_next = s + 1 < n ? X + order[s + 1] * n_in : x;                     \
            int ok = 1;                         /* x checked before its step */            \
            for (Py_ssize_t j = 0; j < n_in; j++)                                          \
                ok &= isfinite(x[j]) != 0;                                                 \
            if (!ok) {                                                                     \
                *finite = 0;                                                               \
                break;                                                                     \
            }                                                                              \
            T c = 0, J = 0, hmax = 0, ymax = 0;                                            \
            Py_ssize_t best_h = 0, best_y = 0;                                             \
            int wrong = 0;                                                                 \
            for (Py_ssize_t j = 0; j < n_in; j++)                                          \
                c += x[j] * x_next[j];                                                     \
            c = eta * (c + 1);                                                             \
            _Pragma("GCC unroll 2")                                                        \
            for (int k = 0; k < KK; k++) {                                                 \
                if (afresh)                                                                \
                    z[k] = NAME##_affine(W1T, b1, x, n_in, P, k * VL);                     \
                h[k] = NAME##_activate(code1, z[k], &f[k]);                                \
                hm[k] = h[k] * m[k];                                                       \
                A[k] = NAME##_affine(W1T, b1, x_next, n_in, P, k * VL);                    \
            }                                                                              \
            afresh = !(c < c_max && -c < c_max) || s + 1 == run_end;                       \
            run_end += s + 1 == run_end ? run : 0;                                         \
            for (Py_ssize_t o = 0; o < n_out; o++) {                                       \
                memcpy(&w, W2 + o * P, sizeof w);                                          \
                acc = w * h[0];                                                            \
                v = c * f[0] * w;                                                          \
                memcpy(V + o * P, &v, sizeof w);                                           \
                _Pragma("GCC unroll 2")                                                    \
                for (int k = 1; k < KK; k++) {                                             \
                    memcpy(&w, W2 + o * P + k * VL, sizeof w);                             \
                    acc += w * h[k];                                                       \
                    v = c * f[k] * w;                                                      \
                    memcpy(V + o * P + k * VL, &v, sizeof w);                              \
                }                                                                          \
                T zo = acc[0], ho, d, yo = y[o];                                           \
                for (Py_ssize_t i = 1; i < VL; i++)                                        \
                    zo += acc[i];                                                          \
                zo += b2[o];                                                               \
                if (code2 == 0) {               /* sigmoid_libm: 1 / (1 + e^-|z|) ... */   \
                    T e = EXP(zo >= 0 ? -zo : zo), r = 1 / (1 + e);                        \
                    ho = zo >= 0 ? r : e * r;                                              \
                } else if (code2 == 1) {                                                   \
                    ho = TANH(zo);                                                         \
                } else if (code2 == 2) {                                                   \
                    ho = zo < 0 ? 0 : zo;                                                  \
                } else {                                                                   \
                    ho = zo;                                                               \
                }                                                                          \
                if (loss == 0) {                /* 1/2 (y - h)^2, delta = (h - y) f' */    \
                    d = ho - yo;                                                           \
                    J += d * d;                                                            \
                    d = code2 == 0 ? d * (ho * (1 - ho)) : code2 == 1 ? d * (1 - ho * ho)  \
                        : code2 == 2 ? (ho <= 0 ? 0 : d) : d;                              \
                } else {                        /* sigmoid's cross-entropy, via softplus */ \
                    J += yo * ((-zo > 0 ? -zo : 0) + LOG1P(EXP(-(zo < 0 ? -zo : zo)))) +   \
                         (1 - yo) * ((zo > 0 ? zo : 0) + LOG1P(EXP(-(zo < 0 ? -zo : zo)))); \
                    d = ho - yo;                                                           \
                }                                                                          \
                d3[o] = d;                                                                 \
                int above = ho > hmax || o == 0;                                           \
                hmax = above ? ho : hmax;                                                  \
                best_h = above ? o : best_h;                                               \
                above = yo > ymax || o == 0;                                               \
                ymax = above ? yo : ymax;                                                  \
                best_y = above ? o : best_y;                                               \
                wrong |= (ho > (T) 0.5) != (yo > (T) 0.5);                                 \
            }                                                                              \
            if (loss == 0)                                                                 \
                J *= (T) 0.5;                                                              \
            if (weights != NULL) {                                                         \
                T weight = weights[order[s]];                                              \
                J *= weight;                                                               \
                for (Py_ssize_t o = 0; o < n_out; o++)                                     \
                    d3[o] *= weight;                                                       \
            }                                                                              \
            total += J;                                                                    \
            right += score == 0 ? 0 : score == 1 ? best_h == best_y : !wrong;              \
            _Pragma("GCC unroll 2")                                                        \
            for (int k = 0; k < KK; k++) {                                                 \
                z[k] = A[k];                                                               \
                g[k] = (NAME##_v) {0};                                                     \
            }                                                                              \
            for (Py_ssize_t o = 0; o < n_out; o++) {                                       \
                T d = d3[o], step = eta * d3[o];                                           \
                _Pragma("GCC unroll 2")                                                    \
                for (int k = 0; k < KK; k++) {                                             \
                    memcpy(&v, V + o * P + k * VL, sizeof w);                              \
                    z[k] -= d * v;                                                         \
                    memcpy(&w, W2 + o * P + k * VL, sizeof w);                             \
                    g[k] += d * w;                                                         \
                    w -= step * hm[k];                                                     \
                    memcpy(W2 + o * P + k * VL, &w, sizeof w);                             \
                }                                                                          \
                b2[o] -= step;                                                             \
            }                                                                              \
            _Pragma("GCC unroll 2")                                                        \
            for (int k = 0; k < KK; k++) {                                                 \
                g[k] *= f[k];                                    /* delta^(2) */           \
                memcpy(&w, b1 + k * VL, sizeof w);                                         \
                w -= eta * g[k];                                                           \
                memcpy(b1 + k * VL, &w, sizeof w);                                         \
                for (Py_ssize_t j = 0; j < n_in; j++) {                                    \
                    memcpy(&w, W1T + j * P + k * VL, sizeof w);                            \
                    w -= (eta * x[j]) * g[k];                                              \
                    memcpy(W1T + j * P + k * VL, &w, sizeof w);                            \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
        *correct += right;                                                                 \
        return total;                                                                      \
    }
    CBACKPROP_SMALL_RUN(cbp_small_f, float, 1, 0, , expf, log1pf, tanhf)
    CBACKPROP_SMALL_RUN(cbp_small_f, float, 2, 0, , expf, log1pf, tanhf)
    CBACKPROP_SMALL_RUN(cbp_small_d, double, 1, 0, , exp, log1p, tanh)
    CBACKPROP_SMALL_RUN(cbp_small_d, double, 2, 0, , exp, log1p, tanh)
    CBACKPROP_SMALL_RUN(cbp_small_f, float, 1, 1, _one, expf, log1pf, tanhf)
    CBACKPROP_SMALL_RUN(cbp_small_f, float, 2, 1, _one, expf, log1pf, tanhf)
    CBACKPROP_SMALL_RUN(cbp_small_d, double, 1, 1, _one, exp, log1p, tanh)
    CBACKPROP_SMALL_RUN(cbp_small_d, double, 2, 1, _one, exp, log1p, tanh)
    /* one entry: the variant for KK vectors and n_out outputs (the same every sample) */
    #define CBACKPROP_SMALL_RUN_ANY(NAME, T)                                                \
    static inline double NAME##_run(int KK, int code1, int code2, int loss, int score,     \
            T *W1T, T *b1, T *W2, T *b2, T *V, T *d3, const T *mask, const T *X,           \
            const T *Y, const Py_ssize_t *order, const T *weights, Py_ssize_t n,           \
            Py_ssize_t n_in, Py_ssize_t n_out, T eta, T c_max, Py_ssize_t run,             \
            Py_ssize_t *correct, int *finite) {                                            \
        if (n_out == 1)                                                                    \
            return (KK == 1 ? NAME##_run1_one : NAME##_run2_one)(code1, code2, loss, score, \
                W1T, b1, W2, b2, V, d3, mask, X, Y, order, weights, n, n_in, n_out, eta,   \
                c_max, run, correct, finite);                                              \
        return (KK == 1 ? NAME##_run1 : NAME##_run2)(code1, code2, loss, score, W1T, b1,   \
            W2, b2, V, d3, mask, X, Y, order, weights, n, n_in, n_out, eta, c_max, run,    \
            correct, finite);                                                              \
    }
    CBACKPROP_SMALL_RUN_ANY(cbp_small_f, float)
    CBACKPROP_SMALL_RUN_ANY(cbp_small_d, double)
    /* the activation over whole vectors of an array (the test hook small_activation) */
    #define CBACKPROP_SMALL_ACTIVATE_ALL(NAME, T)                                           \
    static inline void NAME##_activate_all(int code, const T *z, T *h, T *fp,              \
                                           Py_ssize_t n) {                                 \
        NAME##_v v, f;                                                                     \
        for (Py_ssize_t i = 0; i + (Py_ssize_t) (sizeof v / sizeof(T)) <= n;               \
             i += sizeof v / sizeof(T)) {                                                  \
            memcpy(&v, z + i, sizeof v);                                                   \
            v = NAME##_activate(code, v, &f);                                              \
            memcpy(h + i, &v, sizeof v);                                                   \
            memcpy(fp + i, &f, sizeof f);                                                  \
        }                                                                                  \
    }
    CBACKPROP_SMALL_ACTIVATE_ALL(cbp_small_f, float)
    CBACKPROP_SMALL_ACTIVATE_ALL(cbp_small_d, double)
    #define CBACKPROP_SMALL_LANES_FLOAT (CBACKPROP_SMALL_VBYTES / 4)
    #define CBACKPROP_SMALL_LANES_DOUBLE (CBACKPROP_SMALL_VBYTES / 8)
    #else
    #define CBACKPROP_SMALL 0
    #define CBACKPROP_SMALL_LANES_FLOAT 1
    #define CBACKPROP_SMALL_LANES_DOUBLE 1
    /* never called (online_small is not taken without vector types): stubs to link */
    #define CBACKPROP_SMALL_STUBS(NAME, T)                                                  \
    static inline double NAME##_run(int KK, int code1, int code2, int loss, int score,     \
            T *W1T, T *b1, T *W2, T *b2, T *V, T *d3, const T *mask, const T *X,           \
            const T *Y, const Py_ssize_t *order, const T *weights, Py_ssize_t n,           \
            Py_ssize_t n_in, Py_ssize_t n_out, T eta, T c_max, Py_ssize_t run,             \
            Py_ssize_t *correct, int *finite) { return 0; }
    CBACKPROP_SMALL_STUBS(cbp_small_f, float)
    CBACKPROP_SMALL_STUBS(cbp_small_d, double)
    static inline void cbp_small_f_activate_all(int code, const float *z, float *h, float *fp,
                                                Py_ssize_t n) {}
    static inline void cbp_small_d_activate_all(int code, const double *z, double *h,
                                                double *fp, Py_ssize_t n) {}
    #endif
    """
    const bint CBACKPROP_SMALL
    const Py_ssize_t CBACKPROP_SMALL_LANES_FLOAT, CBACKPROP_SMALL_LANES_DOUBLE
    void cbp_small_f_activate_all(int code, const float* z, float* h, float* fp,
                                  Py_ssize_t n) noexcept nogil
    void cbp_small_d_activate_all(int code, const double* z, double* h, double* fp,
                                  Py_ssize_t n) noexcept nogil
    double cbp_small_f_run(int KK, int code1, int code2, int loss, int score,
                           float* W1T, float* b1, float* W2, float* b2, float* V, float* d3,
                           const float* mask, const float* X, const float* Y,
                           const Py_ssize_t* order, const float* weights, Py_ssize_t n,
                           Py_ssize_t n_in, Py_ssize_t n_out, float eta, float c_max,
                           Py_ssize_t run, Py_ssize_t* correct, int* finite) noexcept nogil
    double cbp_small_d_run(int KK, int code1, int code2, int loss, int score,
                           double* W1T, double* b1, double* W2, double* b2, double* V, double* d3,
                           const double* mask, const double* X, const double* Y,
                           const Py_ssize_t* order, const double* weights, Py_ssize_t n,
                           Py_ssize_t n_in, Py_ssize_t n_out, double eta, double c_max,
                           Py_ssize_t run, Py_ssize_t* correct, int* finite) noexcept nogil


def small_activation(int code,
                     const floating[::1] z,     # IN     a multiple of the vector length
                     floating[::1] h,           # OUT    f(z)
                     floating[::1] fp):         # OUT    f'(z), from h
    """Test hook: online_small's vector activation (SIGMOID, RELU or LINEAR) over z.
    Returns the vector length (z's length must be a multiple of it), or 0 where online_small
    is not built (then h and fp are left alone)."""
    cdef Py_ssize_t lanes = (CBACKPROP_SMALL_LANES_FLOAT if floating is float
                             else CBACKPROP_SMALL_LANES_DOUBLE)
    if code != SIGMOID and code != RELU and code != LINEAR:
        raise ValueError("small_activation: code must be SIGMOID, RELU or LINEAR")
    if z.shape[0] % lanes or h.shape[0] != z.shape[0] or fp.shape[0] != z.shape[0]:
        raise ValueError("small_activation: z, h and fp must have one length, a multiple "
                         "of %d" % lanes)
    if not CBACKPROP_SMALL:
        return 0
    if z.shape[0] == 0:
        return lanes                   # (&z[0] of an empty view fails with bounds checks on)
    with nogil:
        if floating is float:
            cbp_small_f_activate_all(code, &z[0], &h[0], &fp[0], z.shape[0])
        else:
            cbp_small_d_activate_all(code, &z[0], &h[0], &fp[0], z.shape[0])
    return lanes


cdef inline bint takes_small(const Layout* net, const Step* st) noexcept nogil:
    """Whether online training of this network with this step goes through online_small:
    plain SGD on one hidden layer of 1 to 4 inputs (wider ones go to online_two_layer) and at
    most two vectors of doubles of units (the same bound in both dtypes), sigmoid, relu or
    linear (the activations online_small computes in vectors), and an output layer of
    element-wise units (not softmax)."""
    return (CBACKPROP_SMALL and plain_sgd(st) and net.n_layers == 2 and net.n_in <= 4
            and net.sizes[1] <= 2 * CBACKPROP_SMALL_LANES_DOUBLE
            and (net.codes[0] == SIGMOID or net.codes[0] == RELU or net.codes[0] == LINEAR)
            and net.codes[1] != SOFTMAX)


cdef inline Py_ssize_t small_size(const Layout* net) noexcept nogil:
    """Scratch of online_small (at most two vectors of units): W^(1) transposed, W^(2) and V
    with padded rows, b^(1) and the mask; delta^(3)."""
    return 2 * MAX_LANES * (net.n_in + 2 * net.n_out + 2) + net.n_out


cdef inline double online_small(const Layout* net, const Step* st, floating* params,
                                const floating* X, const floating* Y,
                                const Py_ssize_t* order, const floating* weights,
                                Py_ssize_t n, floating* scratch, int score,
                                Py_ssize_t* correct, bint* rows_finite) noexcept nogil:
    """Online plain SGD over n samples (rows order[0..n) of X, Y) of a network of one small
    hidden layer (takes_small): the steps of online_step, with the hidden layer in vectors
    (cbp_small_*_run above) and the next sample's z^(2) = A - sum_o delta^(3)_o V_o.

    That form is exact in real arithmetic: W^(1)' = W^(1) - eta delta^(2) x^T and
    b^(1)' = b^(1) - eta delta^(2) give W^(1)' x' + b^(1)' = A - eta (x . x' + 1) delta^(2).
    It shortens the chain of dependent operations from one sample's output delta to the
    next sample's z^(2), which sets a tiny network's speed, to one multiply-add per output.
    The weights themselves step exactly as in online_step. The first sample of every
    SMALL_RUN (counted from the call's start, which the Python layer keeps on whole runs)
    computes z^(2) = W^(1) x + b^(1) directly, so a run's bits do not depend on where calls
    begin. For the call, W^(1) is held transposed (a row per input) and W^(2) with rows of
    whole vectors, the padding zero. scratch: small_size(net) values.
    """
    cdef Py_ssize_t n_in = net.n_in, nh = net.sizes[1], n_out = net.n_out
    cdef Py_ssize_t lanes = (CBACKPROP_SMALL_LANES_FLOAT if floating is float
                             else CBACKPROP_SMALL_LANES_DOUBLE)
    cdef int KK = 1 if nh <= lanes else 2
    cdef Py_ssize_t P = KK * lanes
    cdef Py_ssize_t i
    cdef floating* b2 = params + net.b_off[1]
    cdef floating* W1T = scratch
    cdef floating* W2P = W1T + n_in * P
    cdef floating* V = W2P + n_out * P
    cdef floating* b1 = V + n_out * P
    cdef floating* mask = b1 + P
    cdef floating* d3 = mask + P
    cdef int code1 = <int> net.codes[0], code2 = <int> net.codes[1], loss = <int> net.loss
    cdef floating eta = <floating> st.lr
    # beyond this |eta (x . x' + 1)|, V = c f' W^(2) could overflow where the step is finite
    cdef floating c_max = <floating> (1.8e19 if floating is float else 1.3e154)
    cdef double total
    memset(scratch, 0, ((n_in + 2 * n_out + 2) * P + n_out) * sizeof(floating))
    hold_one_hidden_layer(net, params, W1T, W2P, b1, P)
    for i in range(nh):
        mask[i] = 1
    cdef int finite = 1
    if floating is float:
        total = cbp_small_f_run(KK, code1, code2, loss, score, W1T, b1, W2P, b2, V, d3, mask, X,
                                Y, order, weights, n, n_in, n_out, eta, c_max, SMALL_RUN,
                                correct, &finite)
    else:
        total = cbp_small_d_run(KK, code1, code2, loss, score, W1T, b1, W2P, b2, V, d3, mask, X,
                                Y, order, weights, n, n_in, n_out, eta, c_max, SMALL_RUN,
                                correct, &finite)
    rows_finite[0] = finite != 0
    return_one_hidden_layer(net, params, W1T, W2P, b1, P)
    return total


cdef inline void update_all(const Layout* net, const Step* st, floating* params,
                            const floating* grad, floating* s0, floating* s1) noexcept nogil:
    """Apply one step of the optimizer to every parameter from the gradient grad."""
    cdef Py_ssize_t layer, w_off, b_off, n_w, n_b
    for layer in range(net.n_layers):
        w_off = net.w_off[layer]
        b_off = net.b_off[layer]
        n_b = net.sizes[layer + 1]
        n_w = n_b * net.sizes[layer]
        apply_update(st, params + w_off, grad + w_off, s0 + w_off, s1 + w_off, n_w, True, 1)
        apply_update(st, params + b_off, grad + b_off, s0 + b_off, s1 + b_off, n_b, False, 1)


cdef inline Py_ssize_t _largest_batch(Py_ssize_t batch_size, Py_ssize_t n) noexcept nogil:
    return max(1, min(batch_size, n))


def workspace_size(const Py_ssize_t[::1] spec, Py_ssize_t batch_size, Py_ssize_t n,
                   bint sequential):
    """Length of the scratch buffer train_epoch needs for these arguments.

    Allocate it once per fit and pass it to every train_epoch call: a fresh buffer per epoch
    costs page faults on every call (measured: 5% of a full-batch run in perf).
    """
    return workspace_of(&spec[0], batch_size, n, sequential)


cdef Py_ssize_t workspace_of(const Py_ssize_t* spec, Py_ssize_t batch_size, Py_ssize_t n,
                             bint sequential) noexcept nogil:
    cdef Layout net = make_layout(spec)
    cdef Py_ssize_t B = _largest_batch(batch_size, n)
    cdef Py_ssize_t size = B * (2 * net.n_units + net.n_out)   # h, delta, z of the output
    if batch_size == 1 and net.n_in >= WINDOW_MIN_INPUTS:
        # online_window's P, gram, D1 and gathered rows
        size += WINDOW * (2 * net.sizes[1] + WINDOW + net.n_in)
    elif batch_size == 1 and net.n_layers == 2:
        # online_two_layer's or online_small's copies (if either is taken)
        size += max(two_layer_size(&net, MAX_LANES), small_size(&net))
    if batch_size > 1:
        size += net.n_params + own_gemm_size(&net)            # the batch's gradient, W^(1)T
        if not sequential:
            size += B * (net.n_in + net.n_out + 1)            # gathered rows of X, Y, weights
    return size


cdef inline Py_ssize_t own_gemm_size(const Layout* net) noexcept nogil:
    """Room for the W held transposed where mini-batch plain SGD takes their layers' products
    by own_gemm (_blas.pxd; see epoch_of): forward_block's and backward_block's WT, laid out
    as params."""
    return net.n_params if CBACKPROP_OWN_GEMM else 0


cdef inline void gather_rows(const floating* X, const floating* Y, const floating* weights,
                             const Py_ssize_t* rows, Py_ssize_t s0, Py_ssize_t s1,
                             Py_ssize_t n_in, Py_ssize_t n_out, floating* XB, floating* YB,
                             floating* WB) noexcept nogil:
    """Rows rows[s0:s1] of X, Y (and weights, unless NULL) into rows s0:s1 of a batch's
    contiguous XB, YB, WB."""
    cdef Py_ssize_t s, r
    for s in range(s0, s1):
        r = rows[s]
        memcpy(XB + s * n_in, X + r * n_in, n_in * sizeof(floating))
        memcpy(YB + s * n_out, Y + r * n_out, n_out * sizeof(floating))
        if weights != NULL:
            WB[s] = weights[r]


cdef inline bint folds_into_gemm(const Step* st) noexcept nogil:
    """Plain SGD and classical momentum fold the update into the gradient's gemm (see
    backward_block); every other rule needs the gradient in a buffer first."""
    return st.kind == SGD and not st.nesterov and st.l2 == 0


# ---- mini-batches over a team of threads (see _team.pxd) ----------------------------------
#
# With BLAS's own threads, each of a batch's gemms is split over the cores and the element-wise
# passes between them (activations, deltas, biases) run on one: every gemm's output is then half
# in the other core's cache when the next pass reads it, and every barrier inside BLAS is one
# more trip between the cores. The team splits each layer's units instead: member k owns a
# range of every hidden layer's units (whole cache lines of them) and computes for them, with
# one-thread BLAS (plain SGD's layers within 1 MB a member by own_gemm: see train_by_team),
#   forward   Z[:, own] = H_in W[own, :]^T + b[own], then H[:, own] = f(Z[:, own])
#   backward  P_k = D_out[:, own] W[own, :]        (its part of D_out W, before W changes)
#             W[own, :] += alpha D_out[:, own]^T H_in + ...   (the folded update, own rows)
#             D_in[:, own'] = (sum_k P_k)[:, own'] * f'(H_in[:, own'])   (own' in layer below)
# The output layer, narrow in the networks this pays for, is split by its inputs instead: a
# member owns the columns W[:, own'] that read its own units own' of the last hidden layer,
#   forward   Z_k = H_in[:, own'] W[:, own']^T; member 0 sums b + Z_0 + Z_1 + ..., then
#             the activation, the loss and delta^(nl) (small: batch x outputs)
#   backward  D_in[:, own'] = (D_out W[:, own']) * f'(H_in[:, own']), then W[:, own'] steps
# so a layer's weights, biases and deltas never leave their member's core, and the last hidden
# layer's outputs and deltas neither; what crosses between cores is the other hidden layers'
# outputs, the partial products P_k and Z_k and delta^(nl), and the members meet at
# 2 * n_layers barriers a batch. Summing P and Z over the members changes the order of
# additions against one gemm, so results move by rounding (the tests compare against the
# reference as for every other path).

ctypedef struct Team:
    Layout net
    int size                    # members
    void* params                # floating*: all W and b
    void* target                # params (plain SGD) or s0 (the velocity, momentum)
    double eta, beta            # alpha = -eta / m; beta: 1 for plain SGD, mu for momentum
    bint add_target             # momentum: params += target after the step
    const void* X               # floating*, (x_rows, n_in)
    const void* Y
    const void* weights         # (x_rows,) or NULL for all 1
    const Py_ssize_t* order
    Py_ssize_t n, B
    bint gather                 # batches are copied from rows order[...] into XB, YB, WB
    void* XB
    void* YB
    void* WB
    void* H
    void* D
    void* Z
    void* P                     # 2 * size blocks of p_len (batch x widest layer but the
    Py_ssize_t p_len            # input): the members' P_k or Z_k, of layers 0, 2, ... in the
                                # first size blocks, of 1, 3, ... after
    void* WT                    # NULL, or the hidden layers of own_layers held transposed by
    int own_layers              # members: member k's W[own, :]^T, (inputs, own units), at
                                # w_off + inputs * u0 (as in params), a block of its own for
                                # own_gemm (plain SGD only)
    int score
    cbp_barrier barrier
    bint bad[64]                # member k found a non-finite value in its rows of the batch
    # member 0's results
    double total
    Py_ssize_t correct
    bint rows_finite


cdef enum:
    TEAM_LINE = 16              # units per ownership block: a cache line of float32


cdef inline void owned_units(const Team* tm, Py_ssize_t layer, int k, Py_ssize_t* u0,
                             Py_ssize_t* u1) noexcept nogil:
    """Member k's units [u0, u1) of hidden layer's output (whole blocks of TEAM_LINE)."""
    cdef Py_ssize_t units = tm.net.sizes[layer + 1]
    cdef Py_ssize_t blocks = (units + TEAM_LINE - 1) // TEAM_LINE
    u0[0] = min(units, blocks * k // tm.size * TEAM_LINE)
    u1[0] = min(units, blocks * (k + 1) // tm.size * TEAM_LINE)


cdef inline void hold_member_rows(const Team* tm, int k, floating* params, floating* WT,
                                  bint back) noexcept nogil:
    """Member k's rows W[own, :] of each hidden layer in tm.own_layers into its block of WT,
    transposed (see Team), or with back, from there into params."""
    cdef Py_ssize_t layer, u0, u1, ni
    for layer in range(tm.net.n_layers - 1):
        owned_units(tm, layer, k, &u0, &u1)
        if takes_own(tm.own_layers, layer) and u1 > u0:
            ni = tm.net.sizes[layer]
            if back:
                transpose(WT + tm.net.w_off[layer] + u0 * ni, ni, u1 - u0,
                          params + tm.net.w_off[layer] + u0 * ni)
            else:
                transpose(params + tm.net.w_off[layer] + u0 * ni, u1 - u0, ni,
                          WT + tm.net.w_off[layer] + u0 * ni)


cdef void team_batches(Team* tm, int k, floating* dummy) noexcept nogil:
    """Member k's part of every batch (see above); dummy only selects the float type."""
    cdef Layout* net = &tm.net
    cdef floating* params = <floating*> tm.params
    cdef floating* target = <floating*> tm.target
    cdef const floating* X = <const floating*> tm.X
    cdef const floating* Y = <const floating*> tm.Y
    cdef const floating* weights = <const floating*> tm.weights
    cdef floating* XB = <floating*> tm.XB
    cdef floating* YB = <floating*> tm.YB
    cdef floating* WB = <floating*> tm.WB
    cdef floating* H = <floating*> tm.H
    cdef floating* D = <floating*> tm.D
    cdef floating* P = <floating*> tm.P
    cdef Py_ssize_t n_in = net.n_in, n_out = net.n_out, last = net.n_layers - 1
    cdef Py_ssize_t start = 0, m, r, r0, r1, j, layer, u0, u1, nu, v0, v1, ni, no, w_off
    cdef const floating* Xb
    cdef const floating* Yb
    cdef const floating* Wb
    cdef const floating* H_in
    cdef const floating* src
    cdef floating* H_out
    cdef floating* D_out
    cdef floating* D_in
    cdef floating alpha, beta = <floating> tm.beta
    cdef int code, member
    cdef bint stop = False, owners
    # own rows of the layers own_gemm takes, held transposed in this member's blocks
    cdef floating* WT = <floating*> tm.WT
    cdef bint own
    hold_member_rows(tm, k, params, WT, False)
    while start < tm.n:
        m = min(tm.B, tm.n - start)
        # the batch's rows: each member gathers and checks its share
        r0 = m * k // tm.size
        r1 = m * (k + 1) // tm.size
        Wb = NULL
        if tm.gather:
            gather_rows(X, Y, weights, tm.order + start, r0, r1, n_in, n_out, XB, YB, WB)
            Xb = XB
            Yb = YB
            if weights != NULL:
                Wb = WB
        else:
            Xb = X + tm.order[start] * n_in
            Yb = Y + tm.order[start] * n_out
            if weights != NULL:
                Wb = weights + tm.order[start]
        tm.bad[k] = not finite_values(Xb + r0 * n_in, (r1 - r0) * n_in)
        cbp_barrier_wait(&tm.barrier)
        stop = False
        for member in range(tm.size):
            stop = stop or tm.bad[member]
        if stop:
            if k == 0:
                tm.rows_finite = False
            break           # every member decides alike, before any weight changes
        alpha = <floating> (-tm.eta / m)
        # forward: each hidden layer's own units, then wait for the others' before the next
        # layer reads them; the output layer's partial products from own units only
        H_in = Xb
        for layer in range(net.n_layers):
            ni = net.sizes[layer]
            no = net.sizes[layer + 1]
            w_off = net.w_off[layer]
            H_out = H + m * net.unit_off[layer]
            code = <int> net.codes[layer]
            if layer == last:
                # by its inputs: each member's partial product from its own units of the last
                # hidden layer, summed by member 0
                owned_units(tm, layer - 1, k, &v0, &v1)
                if v1 > v0:
                    gemm(c'N', c'T', <int> m, <int> no, <int> (v1 - v0), 1, H_in + v0, <int> ni,
                         params + w_off + v0, <int> ni, 0,
                         P + (k + tm.size * (layer % 2)) * tm.p_len, <int> no)
                cbp_barrier_wait(&tm.barrier)
                if k == 0:
                    # Z = b + the partial products, in member order; then as forward_block
                    for r in range(m):
                        memcpy(H_out + r * no, params + net.b_off[layer], no * sizeof(floating))
                    for member in range(tm.size):
                        owned_units(tm, layer - 1, member, &v0, &v1)
                        if v1 > v0:
                            src = P + (member + tm.size * (layer % 2)) * tm.p_len
                            for j in range(m * no):
                                H_out[j] += src[j]
                    memcpy(<floating*> tm.Z, H_out, m * no * sizeof(floating))
                    activate_block(code, H_out, m, no)
                    tm.total += loss_and_delta_block(net, H, <const floating*> tm.Z, Yb, Wb,
                                                     <int> m, D, tm.score, &tm.correct)
                cbp_barrier_wait(&tm.barrier)       # delta^(nl) is in D for every member
                break
            owned_units(tm, layer, k, &u0, &u1)
            nu = u1 - u0
            if nu > 0:
                for r in range(m):
                    memcpy(H_out + r * no + u0, params + net.b_off[layer] + u0,
                           nu * sizeof(floating))
                if takes_own(tm.own_layers, layer):
                    own_gemm(m, nu, ni, 1, H_in, ni, 1, WT + w_off + u0 * ni, nu, H_out + u0,
                             no, False)
                else:
                    gemm(c'N', c'T', <int> m, <int> nu, <int> ni, 1, H_in, <int> ni,
                         params + w_off + u0 * ni, <int> ni, 1, H_out + u0, <int> no)
                for r in range(m):
                    activate(code, H_out + r * no + u0, nu, no)
            if layer < last - 1:
                cbp_barrier_wait(&tm.barrier)
            H_in = H_out
        # backward: partial products and steps of own rows, then own deltas of the layer below
        for layer in range(last, -1, -1):
            ni = net.sizes[layer]
            no = net.sizes[layer + 1]
            w_off = net.w_off[layer]
            D_out = D + m * net.unit_off[layer]
            H_in = Xb if layer == 0 else H + m * net.unit_off[layer - 1]
            if layer == last:
                # the output layer by its input columns, own units of the layer below: their
                # deltas (before W's columns change), then the step of those columns
                owned_units(tm, layer - 1, k, &v0, &v1)
                D_in = D + m * net.unit_off[layer - 1]
                if v1 > v0:
                    gemm(c'N', c'N', <int> m, <int> (v1 - v0), <int> no, 1, D_out, <int> no,
                         params + w_off + v0, <int> ni, 0, D_in + v0, <int> ni)
                    code = <int> net.codes[layer - 1]
                    for r in range(m):
                        mul_derivative(code, H_in + r * ni + v0, D_in + r * ni + v0, v1 - v0)
                    gemm(c'T', c'N', <int> no, <int> (v1 - v0), <int> m, alpha, D_out, <int> no,
                         H_in + v0, <int> ni, beta, target + w_off + v0, <int> ni)
                    if tm.add_target:
                        for r in range(no):
                            for j in range(w_off + r * ni + v0, w_off + r * ni + v1):
                                params[j] += target[j]
                if k == 0:
                    step_biases(net, params, target, layer, D_out, m, alpha, beta,
                                tm.add_target, 0, no, False)
                continue
            owned_units(tm, layer, k, &u0, &u1)
            nu = u1 - u0
            own = takes_own(tm.own_layers, layer)
            if nu > 0:
                if layer > 0:
                    # (two sets of blocks: a member may write this layer's while another
                    # still reads the layer above's)
                    if own:
                        gemm(c'N', c'T', <int> m, <int> ni, <int> nu, 1, D_out + u0, <int> no,
                             WT + w_off + u0 * ni, <int> nu, 0,
                             P + (k + tm.size * (layer % 2)) * tm.p_len, <int> ni)
                    else:
                        gemm(c'N', c'N', <int> m, <int> ni, <int> nu, 1, D_out + u0, <int> no,
                             params + w_off + u0 * ni, <int> ni, 0,
                             P + (k + tm.size * (layer % 2)) * tm.p_len, <int> ni)
                if own:
                    own_gemm(ni, nu, m, alpha, H_in, 1, ni, D_out + u0, no,
                             WT + w_off + u0 * ni, nu, True)
                else:
                    gemm(c'T', c'N', <int> nu, <int> ni, <int> m, alpha, D_out + u0, <int> no,
                         H_in, <int> ni, beta, target + w_off + u0 * ni, <int> ni)
                step_biases(net, params, target, layer, D_out, m, alpha, beta, tm.add_target,
                            u0, u1)
            if layer > 0:
                cbp_barrier_wait(&tm.barrier)
                # D_in[:, own'] = sum of the partial products of the members owning units of
                # this layer, in member order, times f'
                owned_units(tm, layer - 1, k, &v0, &v1)
                D_in = D + m * net.unit_off[layer - 1]
                code = <int> net.codes[layer - 1]
                if v1 > v0:
                    owners = False
                    for member in range(tm.size):
                        owned_units(tm, layer, member, &u0, &u1)
                        if u1 == u0:
                            continue
                        src = P + (member + tm.size * (layer % 2)) * tm.p_len
                        for r in range(m):
                            if not owners:
                                for j in range(v0, v1):
                                    D_in[r * ni + j] = src[r * ni + j]
                            else:
                                for j in range(v0, v1):
                                    D_in[r * ni + j] += src[r * ni + j]
                        owners = True
                    for r in range(m):
                        mul_derivative(code, H_in + r * ni + v0, D_in + r * ni + v0, v1 - v0)
        # no member starts the next batch (its gather, its forward pass) while another still
        # reads this one's rows, outputs or partial products
        cbp_barrier_wait(&tm.barrier)
        start += m
    hold_member_rows(tm, k, params, WT, True)


cdef void team_batches_float(void* tm, int k) noexcept nogil:
    team_batches(<Team*> tm, k, <float*> NULL)


cdef void team_batches_double(void* tm, int k) noexcept nogil:
    team_batches(<Team*> tm, k, <double*> NULL)


cdef bint train_by_team(const Layout* net, int size, floating* params, floating* s0,
                        double eta, double mu, const floating* X, const floating* Y,
                        const floating* weights, const Py_ssize_t* order, Py_ssize_t n,
                        Py_ssize_t B, bint gather, floating* XB, floating* YB, floating* WB,
                        floating* H, floating* D, floating* Z, int score, double* total,
                        Py_ssize_t* correct, bint* rows_finite,
                        bint* took_own_gemm) noexcept nogil:
    """Mini-batch plain SGD (mu = 0) or classical momentum of a network with a hidden layer
    over a team of `size` threads (see above), adding to total and correct as epoch_of's loop
    does. False, with nothing done, when the team could not start (no threads, or no memory
    for the partial products or the held W).

    For plain SGD each member takes its own rows of a hidden layer by own_gemm (_blas.pxd),
    as epoch_of does for one thread, if built and its share of the layer's W fits
    OWN_GEMM_MAX_BYTES (took_own_gemm says whether any did): held transposed in a block of
    its own for the call; their delta propagation reads the held rows by BLAS. Against the
    members' one-thread BLAS on the same rows (epochs alternating in one process, 2 members):
    the first layer's ran 784-128-10 at batch 64 1.26x (float32) and 1.20x (float64) as fast,
    784-512-512-10 at batch 128 1.03x (float32; its float64 share, 1.6 MB, is past the
    limit, and ran 4% slower by own_gemm); then the second layer's too, 784-512-512-10 a
    further 1.026x in float32 (15 pairs of 16) and 1.01x in float64 (4 of 8)."""
    cdef Team tm
    cdef Py_ssize_t layer, widest = 0, u0, u1, widest_share
    cdef int ran, k
    for layer in range(1, net.n_layers + 1):
        widest = max(widest, net.sizes[layer])
    tm.net = net[0]
    tm.size = size
    tm.own_layers = 0
    if CBACKPROP_OWN_GEMM and mu == 0:
        for layer in range(min(net.n_layers - 1, OWN_GEMM_MAX_LAYERS)):
            widest_share = 0
            for k in range(size):
                owned_units(&tm, layer, k, &u0, &u1)
                widest_share = max(widest_share, u1 - u0)
            if net.sizes[layer] * widest_share * sizeof(floating) <= OWN_GEMM_MAX_BYTES:
                tm.own_layers |= 1 << layer
    tm.p_len = B * widest
    tm.P = malloc(2 * size * tm.p_len * sizeof(floating))
    if tm.P == NULL:
        return False
    tm.WT = NULL
    if tm.own_layers and posix_memalign(&tm.WT, 64, net.n_params * sizeof(floating)) != 0:
        free(tm.P)
        return False
    tm.params = params
    tm.target = params if mu == 0 else s0
    tm.eta = eta
    tm.beta = 1 if mu == 0 else mu
    tm.add_target = mu != 0
    tm.X = X
    tm.Y = Y
    tm.weights = weights
    tm.order = order
    tm.n = n
    tm.B = B
    tm.gather = gather
    tm.XB = XB
    tm.YB = YB
    tm.WB = WB
    tm.H = H
    tm.D = D
    tm.Z = Z
    tm.score = score
    tm.total = 0
    tm.correct = 0
    tm.rows_finite = True
    cbp_barrier_init(&tm.barrier, size)
    ran = cbp_team_run(size, team_batches_float if floating is float else team_batches_double,
                       &tm)
    free(tm.P)
    free(tm.WT)
    if ran:
        took_own_gemm[0] = tm.own_layers != 0
        total[0] += tm.total
        correct[0] += tm.correct
        rows_finite[0] = tm.rows_finite
    return ran != 0


def train_epoch(cnp.ndarray spec not None,     # IN     network description (see _passes.pxd)
                cnp.ndarray params not None,   # IN/OUT all W and b
                cnp.ndarray state not None,    # IN/OUT (2, n_params) optimizer state s0, s1
                cnp.ndarray X not None,        # IN     (n, n_in)
                cnp.ndarray Y not None,        # IN     (n, n_out)
                cnp.ndarray weights not None,  # IN     (n,) sample weights, or (0,): all 1
                cnp.ndarray order not None,    # IN     rows to visit, in order, each < n
                bint sequential,               # IN     order[s] = order[0] + s: batches are slices
                Py_ssize_t batch_size,
                cnp.ndarray hyper not None,    # IN     (N_HYPER,) optimizer and its settings
                Py_ssize_t steps_done,         # IN     steps taken before this call (Adam's t)
                int score,                     # IN     SCORE_ code: how to count correct outputs
                cnp.ndarray work not None,     # SCRATCH workspace_size(...) elements
                bint blas_one_thread=False,    # IN     BLAS runs one thread (see epoch_of)
                int team_size=1):              # IN     threads for a mini-batch team, 1: none
    """Train on the rows X[order] in batches of batch_size, taking ceil(len(order) /
    batch_size) steps. Returns (sum_s weight_s J_s, number classified correctly, True), each
    sample's loss and output taken before its step.

    Rows of X are checked for NaN and infinity as they are read: a mini-batch's just before
    its gemm reads them, an online sample's just before its step (online_window: a window's
    before its gemms). At one that is not finite training stops and returns False as the
    third value, the steps before it taken (the Python layer undoes the call). A separate
    pass over X first read it from memory once more: 4% of 784-128-10's float64 epoch at
    batch 64 (perf), 5% of 64-30-10's online one.

    The float arrays are all float32 or all float64 (params decides), spec and order intp,
    hyper float64, each C-contiguous: ndarrays checked through NumPy's C API, not
    memoryviews (see _arrays.pxd), with the relations between their shapes."""
    cdef int kind = check_array(params, ANY_FLOAT, 1, True, "params")
    check_array(spec, cnp.NPY_INTP, 1, False, "spec")
    check_array(state, kind, 2, True, "state")
    check_array(X, kind, 2, False, "X")
    check_array(Y, kind, 2, False, "Y")
    check_array(weights, kind, 1, False, "weights")
    check_array(order, cnp.NPY_INTP, 1, False, "order")
    check_array(hyper, cnp.NPY_DOUBLE, 1, False, "hyper")
    check_array(work, kind, 1, True, "work")
    # the shapes' relations, O(1) each (the Python layer made them so; a direct call is
    # checked as well): spec's length for its layer count, then everything against it
    cdef const Py_ssize_t* sp = <const Py_ssize_t*> cnp.PyArray_DATA(spec)
    cdef Py_ssize_t spec_len = cnp.PyArray_DIMS(spec)[0]
    if spec_len < 9 or sp[0] < 1 or spec_len != 4 + 5 * sp[0]:
        raise ValueError("train_epoch: spec is not a network description")
    cdef Layout net = make_layout(sp)
    cdef Py_ssize_t n_params = cnp.PyArray_DIMS(params)[0], x_rows = cnp.PyArray_DIMS(X)[0]
    if n_params != net.n_params:
        raise ValueError("train_epoch: params has the wrong length for spec")
    if cnp.PyArray_DIMS(state)[0] != 2 or cnp.PyArray_DIMS(state)[1] != n_params:
        raise ValueError("train_epoch: state must have shape (2, len(params))")
    if cnp.PyArray_DIMS(X)[1] != net.n_in:
        raise ValueError("train_epoch: X has the wrong number of columns for spec")
    if cnp.PyArray_DIMS(Y)[0] != x_rows or cnp.PyArray_DIMS(Y)[1] != net.n_out:
        raise ValueError("train_epoch: Y must have X's rows and spec's outputs")
    if cnp.PyArray_DIMS(weights)[0] not in (0, x_rows):
        raise ValueError("train_epoch: weights must have X's rows, or none")
    if kind == cnp.NPY_FLOAT:
        return epoch_of(<const Py_ssize_t*> cnp.PyArray_DATA(spec),
                        <float*> cnp.PyArray_DATA(params), <float*> cnp.PyArray_DATA(state),
                        n_params, <const float*> cnp.PyArray_DATA(X), cnp.PyArray_DIMS(X)[0],
                        <const float*> cnp.PyArray_DATA(Y),
                        <const float*> cnp.PyArray_DATA(weights), cnp.PyArray_DIMS(weights)[0],
                        <const Py_ssize_t*> cnp.PyArray_DATA(order), cnp.PyArray_DIMS(order)[0],
                        sequential, batch_size, <const double*> cnp.PyArray_DATA(hyper),
                        cnp.PyArray_DIMS(hyper)[0], steps_done, score,
                        <float*> cnp.PyArray_DATA(work), cnp.PyArray_DIMS(work)[0],
                        blas_one_thread, team_size)
    return epoch_of(<const Py_ssize_t*> cnp.PyArray_DATA(spec),
                    <double*> cnp.PyArray_DATA(params), <double*> cnp.PyArray_DATA(state),
                    n_params, <const double*> cnp.PyArray_DATA(X), cnp.PyArray_DIMS(X)[0],
                    <const double*> cnp.PyArray_DATA(Y),
                    <const double*> cnp.PyArray_DATA(weights), cnp.PyArray_DIMS(weights)[0],
                    <const Py_ssize_t*> cnp.PyArray_DATA(order), cnp.PyArray_DIMS(order)[0],
                    sequential, batch_size, <const double*> cnp.PyArray_DATA(hyper),
                    cnp.PyArray_DIMS(hyper)[0], steps_done, score,
                    <double*> cnp.PyArray_DATA(work), cnp.PyArray_DIMS(work)[0],
                    blas_one_thread, team_size)


# Calls of train_epoch whose mini-batches took own_gemm for some layer (counted under the
# GIL): whether it was taken cannot be told from the results, which may match BLAS's bit for
# bit (they did with OpenBLAS's SkylakeX kernels on a Zen 4 machine, in inference).
cdef Py_ssize_t own_gemm_calls = 0


def own_gemm_call_count():
    """How many train_epoch calls so far took own_gemm for some layer's products."""
    return own_gemm_calls


cdef inline void count_own_gemm():
    global own_gemm_calls
    own_gemm_calls += 1


cdef tuple epoch_of(const Py_ssize_t* spec, floating* params, floating* state,
                    Py_ssize_t n_params, const floating* X, Py_ssize_t x_rows,
                    const floating* Y, const floating* weights, Py_ssize_t n_weights,
                    const Py_ssize_t* order, Py_ssize_t n, bint sequential,
                    Py_ssize_t batch_size, const double* hyper, Py_ssize_t n_hyper,
                    Py_ssize_t steps_done, int score, floating* work, Py_ssize_t work_len,
                    bint blas_one_thread, int team_size):
    """train_epoch on its arrays' data (X and Y row-major, state two rows of n_params).

    Mini-batch plain SGD without momentum takes a layer's forward product and weight step by
    own_gemm (_blas.pxd) where it is built, BLAS runs one thread (blas_one_thread, from the
    Python layer; with more, BLAS's split over them is faster), the layer is the first or a
    hidden one, and its W fits OWN_GEMM_MAX_BYTES (hold_own_layers), as inference does.
    own_gemm reads W transposed, so the call holds those layers so in the workspace (WT) and
    writes them back to params at the end; their delta propagation reads the held W by BLAS. Against BLAS for every layer
    but the first (which was own_gemm's before), epochs alternating in one process, one
    thread: 784-512-512-10 at batch 128 1.016-1.027x in float32 (512x512 taken; isolated,
    own_gemm ran its two products at 110 GFLOP/s against OpenBLAS's 88 and 97).

    With team_size > 1 (from the Python layer, which then holds BLAS at one thread), mini-batch
    plain SGD and momentum of a network with a hidden layer run over a team of that many
    threads (train_by_team), if it starts; there plain SGD's members take their rows of
    hidden layers by own_gemm, without blas_one_thread's say (the team holds BLAS at one
    thread)."""
    cdef Layout net = make_layout(spec)
    cdef Py_ssize_t start, m, r, s, t = steps_done
    cdef Py_ssize_t n_in = net.n_in, n_out = net.n_out
    # B is the largest batch this call forms. batch_size 1 is online training; any larger
    # batch_size takes the batch path even for a call of one sample, so that a run gives the
    # same bits however the Python layer cuts it into calls (workspace_size follows the same
    # rule).
    cdef Py_ssize_t B = _largest_batch(batch_size, n)
    cdef bint online = batch_size == 1
    cdef bint gather = not online and not sequential
    cdef bint weighted = n_weights > 0
    if batch_size < 1:
        raise ValueError("train_epoch: batch_size must be at least 1")
    if team_size < 1 or team_size > CBP_TEAM_MAX:
        raise ValueError(f"train_epoch: team_size must be 1 to {CBP_TEAM_MAX}")
    if work_len < workspace_of(spec, batch_size, n, sequential):
        raise ValueError("train_epoch: work is smaller than workspace_size()")
    if sequential and n > 0:
        # the sequential paths read rows order[0] .. order[0] + n - 1 as one block
        if order[0] < 0 or order[0] + n > x_rows:
            raise ValueError("train_epoch: order runs past the rows of X")
        r = 0
        for s in range(1, n):                   # (no early exit: a vectorised pass)
            r |= order[s] - order[0] - s
        if r != 0:
            raise ValueError("train_epoch: sequential is set but order is not consecutive")
    if not sequential:
        r = 0
        for s in range(n):                      # (no early exit: a vectorised pass)
            r |= (order[s] < 0) | (order[s] >= x_rows)
        if r != 0:
            raise ValueError("train_epoch: order holds a row outside X")
    if n_hyper != N_HYPER or <int> hyper[H_KIND] == RPROP:
        raise ValueError("train_epoch: hyper must describe SGD or Adam")
    cdef floating* H = work
    cdef floating* D = H + B * net.n_units
    cdef floating* Z = D + B * net.n_units
    cdef floating* G = Z + B * n_out
    cdef floating* WT = NULL
    cdef int own = 0
    cdef floating* XB = G + net.n_params + own_gemm_size(&net)
    cdef floating* YB = XB + B * n_in
    cdef floating* WB = YB + B * n_out
    cdef floating* s0 = state
    cdef floating* s1 = state + n_params
    cdef const floating* Xb
    cdef const floating* Yb
    cdef const floating* Wb
    cdef Step st
    cdef floating eta = <floating> hyper[H_LR], mu = <floating> hyper[H_MOMENTUM]
    cdef double total = 0
    cdef Py_ssize_t correct = 0
    cdef bint plain
    cdef const floating* x_next
    cdef bint rows_finite = True
    cdef bint team_own_gemm = False
    if score < SCORE_NONE or score > SCORE_THRESHOLD:
        raise ValueError("train_epoch: unknown score code")
    if n == 0:
        return 0.0, 0, True
    with nogil:
        st = make_step(hyper, t + 1)
        if online and not finite_values(X + order[0] * n_in, n_in):
            # the call's first row, before any online path reads it: online_two_layer and the
            # generic loop take its z^(2) from a zero step on it, and 0 * inf is NaN
            rows_finite = False
        elif online and takes_window(&net, &st):
            total = online_window(&net, &st, params, X, Y, order,
                                  weights if weighted else NULL, n, sequential, H, Z, D,
                                  G, score, &correct, &rows_finite)
        elif online and takes_small(&net, &st):
            total = online_small(&net, &st, params, X, Y, order,
                                 weights if weighted else NULL, n, G, score, &correct,
                                 &rows_finite)
        elif online and takes_two_layer(&net, &st):
            total = online_two_layer(&net, &st, params, X, Y, order,
                                     weights if weighted else NULL, n, H, Z, D, G, score,
                                     &correct, &rows_finite)
        elif online:
            plain = plain_sgd(&st)
            if plain:
                # the first sample's z^(2) through the routine that gives every later one
                # (with a zero step), so a run's bits do not depend on where calls begin
                memset(D + net.unit_off[0], 0, net.sizes[1] * sizeof(floating))
                sgd_then_matvec(params + net.w_off[0], params + net.b_off[0],
                                D + net.unit_off[0], 0, X + order[0] * n_in, X + order[0] * n_in,
                                H + net.unit_off[0], net.sizes[1], n_in)
            for s in range(n):
                r = order[s]
                if not finite_values(X + r * n_in, n_in):
                    rows_finite = False
                    break
                if st.kind == ADAM:
                    t += 1
                    st = make_step(hyper, t)
                x_next = X + order[s + 1] * n_in if plain and s + 1 < n else NULL
                total += online_step(&net, &st, params, s0, s1, X + r * n_in, Y + r * n_out,
                                     weights[r] if weighted else 1, H, Z, D, score,
                                     &correct, plain, x_next)
        elif (team_size > 1 and net.n_layers > 1 and folds_into_gemm(&st)
              and train_by_team(&net, team_size, params, s0, eta, mu, X, Y,
                                weights if weighted else NULL, order, n, B, gather, XB, YB,
                                WB, H, D, Z, score, &total, &correct, &rows_finite,
                                &team_own_gemm)):
            pass
        else:
            if not folds_into_gemm(&st):
                memset(G, 0, net.n_params * sizeof(floating))   # bias rows read G with beta 0
            elif CBACKPROP_OWN_GEMM and blas_one_thread and mu == 0:
                WT = G + net.n_params
                # (not the output layer, unless it is the first: 64-30-10's full batch ran
                # 8% slower with its 30x10 layer by own_gemm, 784-128-10 at batch 64 and
                # 784-512-512-10 at batch 128 the same either way)
                own = hold_own_layers(&net, params, WT, max(1, net.n_layers - 1))
            start = 0
            while start < n:
                m = min(B, n - start)
                Wb = NULL
                if not gather:
                    Xb = X + order[start] * n_in
                    Yb = Y + order[start] * n_out
                    if weighted:
                        Wb = weights + order[start]
                else:
                    gather_rows(X, Y, weights if weighted else NULL, order + start, 0, m,
                                n_in, n_out, XB, YB, WB)
                    Xb = XB
                    Yb = YB
                    if weighted:
                        Wb = WB
                if not finite_values(Xb, m * n_in):
                    rows_finite = False
                    break
                forward_block(&net, params, Xb, <int> m, H, Z, WT, own)
                total += loss_and_delta_block(&net, H, Z, Yb, Wb, <int> m, D, score,
                                              &correct)
                t += 1
                if folds_into_gemm(&st):
                    if mu == 0:
                        backward_block(&net, params, Xb, H, D, <int> m,
                                       params, -eta / m, 1, False, WT, own)
                    else:
                        backward_block(&net, params, Xb, H, D, <int> m,
                                       s0, -eta / m, mu, True)
                else:
                    backward_block(&net, params, Xb, H, D, <int> m,
                                   G, <floating> 1 / m, 0, False)
                    st = make_step(hyper, t)
                    update_all(&net, &st, params, G, s0, s1)
                start += m
            return_own_layers(&net, WT, own, params)
    if own != 0 or team_own_gemm:
        count_own_gemm()
    return total, correct, rows_finite


def apply_step(const Py_ssize_t[::1] spec,     # IN     network description
               floating[::1] params,           # IN/OUT all W and b
               floating[:, ::1] state,         # IN/OUT (2, n_params) optimizer state
               const floating[::1] grad,       # IN     the gradient of the loss (no L2 term)
               const double[::1] hyper,        # IN     (N_HYPER,) optimizer and its settings
               Py_ssize_t step):               # IN     1-based number of this step
    """One optimizer step from a given gradient: how full-batch Rprop trains, and a hook
    for testing each update rule against cbackprop.reference."""
    cdef Layout net = make_layout(&spec[0])
    if hyper.shape[0] != N_HYPER:
        raise ValueError("apply_step: hyper has the wrong length")
    cdef Step st
    with nogil:
        st = make_step(&hyper[0], step)
        update_all(&net, &st, &params[0], &grad[0], &state[0, 0], &state[1, 0])
