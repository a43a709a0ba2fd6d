# The forward and backward passes shared by _forward.pyx, _backward.pyx and _train.pyx:
# cdef inline, nogil, fused on floating. Directives come from setup.py; restated:
# boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True.
#
# Design: a network is described to the kernels by one flat parameter buffer `params` and one
# integer array `spec` built by cbackprop/_config.py:kernel_spec():
#   spec = [n_layers, loss, sizes[0..n_layers], codes[0..n_layers-1],
#           w_off[0..n_layers-1], b_off[0..n_layers-1], unit_off[0..n_layers]]
# Weight layer `layer` (0-based; the tutorial's W^(layer+1)) maps sizes[layer] inputs to
# sizes[layer+1] outputs. W^(layer) is the (sizes[layer+1], sizes[layer]) C-order block at
# params[w_off[layer]], so W[i, j] = w_ij: i the unit fed (output side), j the unit it leaves.
# b^(layer) is at params[b_off[layer]]. Per sample, the outputs h of every layer but the input
# sit one after another in a scratch vector: layer's outputs at unit_off[layer], n_units =
# unit_off[n_layers] in all; deltas use the same layout. A block of m samples stores each
# layer as an (m, sizes[layer+1]) C-order matrix at m * unit_off[layer].
# The Python layer has validated every shape and the spec, so no index here is checked.
from cython cimport floating
from libc.string cimport memcpy, memset

from _blas cimport (gemm, dot, matvec, own_gemm, transpose, OWN_GEMM_MAX_BYTES,
                   OWN_GEMM_MAX_LAYERS)
from _activations cimport activate, mul_derivative, output_delta, sample_loss, SOFTMAX


ctypedef struct Layout:
    Py_ssize_t n_layers
    int loss
    const Py_ssize_t* sizes
    const Py_ssize_t* codes
    const Py_ssize_t* w_off
    const Py_ssize_t* b_off
    const Py_ssize_t* unit_off
    Py_ssize_t n_in
    Py_ssize_t n_out
    Py_ssize_t n_units
    Py_ssize_t n_params


cdef inline Layout make_layout(const Py_ssize_t* spec) noexcept nogil:
    """Point a Layout at the fields of a spec array (see the header)"""
    cdef Layout net
    cdef Py_ssize_t L = spec[0]
    net.n_layers = L
    net.loss = <int> spec[1]
    net.sizes = spec + 2
    net.codes = net.sizes + L + 1
    net.w_off = net.codes + L
    net.b_off = net.w_off + L
    net.unit_off = net.b_off + L
    net.n_in = net.sizes[0]
    net.n_out = net.sizes[L]
    net.n_units = net.unit_off[L]
    net.n_params = net.b_off[L - 1] + net.n_out
    return net


cdef inline void forward_sample(const Layout* net, const floating* params,
                                const floating* x, floating* h, floating* z_out,
                                bint z1_ready=False) noexcept nogil:
    """Forward pass for one sample: h^(layer+1) = f(W^(layer) h^(layer) + b^(layer)).

    x: IN (n_in,); h: OUT (n_units,) every layer's outputs; z_out: OUT (n_out,) z^(nl).
    z1_ready: h's first layer already holds z^(2) = W^(1) x + b^(1) (online SGD computes it
    while it updates W^(1) for the previous sample), so only f is applied there.
    """
    cdef Py_ssize_t layer, i, n_in, n_out
    cdef const floating* h_in = x
    cdef const floating* W
    cdef const floating* b
    cdef floating* h_out
    for layer in range(net.n_layers):
        n_in = net.sizes[layer]
        n_out = net.sizes[layer + 1]
        W = params + net.w_off[layer]
        b = params + net.b_off[layer]
        h_out = h + net.unit_off[layer]
        # z_i = sum_j w_ij h_j + b_i: one contiguous row of W per unit i
        if layer > 0 or not z1_ready:
            matvec(W, h_in, b, h_out, n_out, n_in)
        if layer == net.n_layers - 1:
            memcpy(z_out, h_out, n_out * sizeof(floating))
        activate(<int> net.codes[layer], h_out, n_out)
        h_in = h_out


cdef inline void activate_block(int code, floating* H, Py_ssize_t m,
                                Py_ssize_t n_units) noexcept nogil:
    """H := f(H) for a block of m rows of n_units: softmax row by row, any element-wise
    activation over the block as one long vector, so the loop has one tail instead of one per
    row (a 10-unit row is all tail for a 16-lane float32 vector)."""
    cdef Py_ssize_t r
    if code == SOFTMAX:
        for r in range(m):
            activate(code, H + r * n_units, n_units)
    else:
        activate(code, H, m * n_units, n_units)


cdef inline void step_biases(const Layout* net, floating* params, floating* target,
                             Py_ssize_t layer, const floating* D_out, Py_ssize_t m,
                             floating alpha, floating beta, bint add_target, Py_ssize_t u0,
                             Py_ssize_t u1, bint add_rows=True) noexcept nogil:
    """Units [u0, u1) of layer's output, after the gemm that steps target's W rows:
    target_b := alpha * sum_rows D_out + beta * target_b (D_out is (m, n_out)), then with
    add_target params' b of those units (and, with add_rows, their W rows) += target's
    (momentum)."""
    cdef Py_ssize_t i, j, r, n_in = net.sizes[layer], n_out = net.sizes[layer + 1]
    cdef Py_ssize_t w_off = net.w_off[layer], b_off = net.b_off[layer]
    cdef floating* tb = target + b_off
    # row by row so the inner loop is contiguous and vectorises (beta = 0 never reads
    # target_b, which may be uninitialised)
    for i in range(u0, u1):
        tb[i] = 0 if beta == 0 else beta * tb[i]
    for r in range(m):
        for i in range(u0, u1):
            tb[i] += alpha * D_out[r * n_out + i]
    if add_target:
        if add_rows:
            for j in range(u0 * n_in, u1 * n_in):
                params[w_off + j] += target[w_off + j]
        for i in range(u0, u1):
            params[b_off + i] += target[b_off + i]


cdef inline bint takes_own(int own_layers, Py_ssize_t layer) noexcept nogil:
    """Whether own_layers' bits (hold_own_layers) say own_gemm takes this layer: only the
    first OWN_GEMM_MAX_LAYERS have a bit (a shift by 32 or more is undefined in C)."""
    return layer < OWN_GEMM_MAX_LAYERS and (own_layers >> layer) & 1


cdef inline int hold_own_layers(const Layout* net, const floating* params, floating* WT,
                                Py_ssize_t layers) noexcept nogil:
    """W^(layer)T, (sizes[layer], sizes[layer+1]), into WT + w_off[layer] for each layer
    own_gemm (_blas.pxd) may take among the first `layers`, each W within
    OWN_GEMM_MAX_BYTES and among the first OWN_GEMM_MAX_LAYERS; returns their bits for
    forward_block and backward_block. The caller decides whether own_gemm is built and
    allowed."""
    cdef Py_ssize_t layer, n_in, n_out
    cdef int own = 0
    for layer in range(min(layers, net.n_layers, OWN_GEMM_MAX_LAYERS)):
        n_in = net.sizes[layer]
        n_out = net.sizes[layer + 1]
        if n_in * n_out * sizeof(floating) <= OWN_GEMM_MAX_BYTES:
            transpose(params + net.w_off[layer], n_out, n_in, WT + net.w_off[layer])
            own |= 1 << layer
    return own


cdef inline void return_own_layers(const Layout* net, const floating* WT, int own_layers,
                                   floating* params) noexcept nogil:
    """The layers hold_own_layers held (own_layers' bits) back from WT into params."""
    cdef Py_ssize_t layer
    for layer in range(net.n_layers):
        if takes_own(own_layers, layer):
            transpose(WT + net.w_off[layer], net.sizes[layer], net.sizes[layer + 1],
                      params + net.w_off[layer])


cdef inline void forward_block(const Layout* net, const floating* params, const floating* X,
                               int m, floating* H, floating* Z_out,
                               const floating* WT=NULL, int own_layers=0) noexcept nogil:
    """Forward pass for m samples at once: Z = H_in W^T + b by gemm, then H = f(Z).

    X: IN (m, n_in); H: OUT (m * n_units,) each layer an (m, size) block;
    Z_out: OUT (m, n_out) the output layer's z.
    WT, own_layers: the layers whose bit is set in own_layers (1 << layer, layer below
    OWN_GEMM_MAX_LAYERS; later layers take BLAS whatever own_layers says) take their product
    by own_gemm (_blas.pxd) from W^(layer)T, held transposed, (sizes[layer], sizes[layer+1]),
    at WT + w_off[layer]; params' W of those layers is not read.
    """
    cdef Py_ssize_t layer, r, n_in, n_out
    cdef const floating* H_in = X
    cdef const floating* b
    cdef floating* H_out
    cdef int code
    for layer in range(net.n_layers):
        n_in = net.sizes[layer]
        n_out = net.sizes[layer + 1]
        b = params + net.b_off[layer]
        H_out = H + m * net.unit_off[layer]
        for r in range(m):
            memcpy(H_out + r * n_out, b, n_out * sizeof(floating))
        if takes_own(own_layers, layer):
            own_gemm(m, n_out, n_in, 1, H_in, n_in, 1, WT + net.w_off[layer], n_out, H_out,
                     n_out, False)
        else:
            gemm(c'N', c'T', m, <int> n_out, <int> n_in, 1, H_in, <int> n_in,
                 params + net.w_off[layer], <int> n_in, 1, H_out, <int> n_out)
        if layer == net.n_layers - 1:
            memcpy(Z_out, H_out, m * n_out * sizeof(floating))
        activate_block(<int> net.codes[layer], H_out, m, n_out)
        H_in = H_out


cdef enum:
    SCORE_NONE = 0
    SCORE_ARGMAX = 1        # one class per sample: the largest output names it
    SCORE_THRESHOLD = 2     # binary or multi-label: every output on the target's side of 1/2


cdef inline bint is_correct(int score, const floating* h, const floating* y,
                            Py_ssize_t n_out) noexcept nogil:
    """Whether output h classifies target y correctly (see the SCORE_ codes)"""
    cdef Py_ssize_t k, best_h = 0, best_y = 0
    cdef floating max_h = h[0], max_y = y[0]
    cdef bint above
    if score == SCORE_ARGMAX:
        # the first largest of each, by selects rather than branches: which unit is largest
        # is data, and mispredicted branches here cost 30 ns a sample on 10 outputs (a tenth
        # of an online step of 64-30-10)
        for k in range(1, n_out):
            above = h[k] > max_h
            max_h = h[k] if above else max_h
            best_h = k if above else best_h
            above = y[k] > max_y
            max_y = y[k] if above else max_y
            best_y = k if above else best_y
        return best_h == best_y
    # every output on its target's side of 1/2, without branches (which side is data; one
    # mispredicted branch a sample cost 2-8-1 a tenth of its step)
    cdef floating half = <floating> 0.5
    cdef bint wrong = False
    for k in range(n_out):
        wrong = wrong | ((h[k] > half) != (y[k] > half))
    return not wrong


cdef inline floating loss_and_delta_block(const Layout* net, const floating* H,
                                          const floating* Z_out, const floating* Y,
                                          const floating* weights, int m,
                                          floating* D, int score,
                                          Py_ssize_t* correct) noexcept nogil:
    """Sum over m samples of weight_s J_s, and delta^(nl) of weight_s J_s for each into D
    (skipped when D is NULL); with a score code, counts the correctly classified samples
    into correct[0].

    H, Z_out: IN from forward_block; Y: IN (m, n_out); weights: IN (m,) sample weights, or
    NULL for all 1; D: OUT (m * n_units,) like H.
    """
    cdef Py_ssize_t r, k, n_out = net.n_out, last = net.n_layers - 1
    cdef int code = <int> net.codes[last]
    cdef const floating* H_last = H + m * net.unit_off[last]
    cdef floating* D_r
    cdef floating total = 0, J
    if weights == NULL and code != SOFTMAX:
        # every loss here but softmax's is a sum of per-unit terms and its delta per-unit:
        # the block as one vector (see forward_block)
        total = sample_loss(net.loss, code, H_last, Z_out, Y, m * n_out)
        if score != SCORE_NONE:
            for r in range(m):
                correct[0] += is_correct(score, H_last + r * n_out, Y + r * n_out, n_out)
        if D != NULL:
            output_delta(net.loss, code, H_last, Y, D + m * net.unit_off[last], m * n_out)
        return total
    for r in range(m):
        J = sample_loss(net.loss, code, H_last + r * n_out, Z_out + r * n_out,
                        Y + r * n_out, n_out)
        if weights != NULL:
            J *= weights[r]
        total += J
        if score != SCORE_NONE:
            correct[0] += is_correct(score, H_last + r * n_out, Y + r * n_out, n_out)
        if D != NULL:
            D_r = D + m * net.unit_off[last] + r * n_out
            output_delta(net.loss, code, H_last + r * n_out, Y + r * n_out, D_r, n_out)
            if weights != NULL:
                for k in range(n_out):
                    D_r[k] *= weights[r]
    return total


cdef inline void backward_block(const Layout* net, floating* params, const floating* X,
                                const floating* H, floating* D, int m,
                                floating* target, floating alpha, floating beta,
                                bint add_target, floating* WT=NULL,
                                int own_layers=0) noexcept nogil:
    """Back-propagate deltas through m samples and fold the gradient into `target`.

    For layer = n_layers-1 .. 0, with H^(layer) the block of inputs to the layer
    (X for layer 0) and D^(layer+1) its deltas (m, n_out):
      D^(layer) = (D^(layer+1) W^(layer)) * f'(H^(layer))      (not for the input layer)
      target_W := alpha * D^(layer+1)^T H^(layer) + beta * target_W
      target_b := alpha * sum_rows D^(layer+1)            + beta * target_b
    and, when add_target, params += target for that layer (momentum: target is the velocity).
    The delta of a layer is computed before that layer's weights change, so training with
    target = params (alpha = -lr/m, beta = 1) is exact SGD.
    D: IN/OUT, on entry the output deltas (from loss_and_delta_block).
    WT, own_layers: as forward_block takes them; a layer whose bit is set takes its step
    W^(layer)T += alpha H^(layer)T D^(layer+1) by own_gemm (_blas.pxd) on its W held
    transposed, in place of target's W (for plain SGD: target = params, beta = 1, add_target
    False), and its delta propagation from the held W.
    """
    cdef Py_ssize_t layer, n_in, n_out, w_off
    cdef const floating* H_in
    cdef const floating* D_out
    cdef floating* D_in
    cdef bint own
    for layer in range(net.n_layers - 1, -1, -1):
        n_in = net.sizes[layer]
        n_out = net.sizes[layer + 1]
        w_off = net.w_off[layer]
        own = takes_own(own_layers, layer)
        D_out = D + m * net.unit_off[layer]
        if layer == 0:
            H_in = X
        else:
            H_in = H + m * net.unit_off[layer - 1]
            D_in = D + m * net.unit_off[layer - 1]
            if own:
                gemm(c'N', c'T', m, <int> n_in, <int> n_out, 1, D_out, <int> n_out,
                     WT + w_off, <int> n_out, 0, D_in, <int> n_in)
            else:
                gemm(c'N', c'N', m, <int> n_in, <int> n_out, 1, D_out, <int> n_out,
                     params + w_off, <int> n_in, 0, D_in, <int> n_in)
            mul_derivative(<int> net.codes[layer - 1], H_in, D_in, m * n_in)   # element-wise
        if own:
            own_gemm(n_in, n_out, m, alpha, H_in, 1, n_in, D_out, n_out, WT + w_off, n_out,
                     True)
        else:
            gemm(c'T', c'N', <int> n_out, <int> n_in, m, alpha, D_out, <int> n_out,
                 H_in, <int> n_in, beta, target + w_off, <int> n_in)
        step_biases(net, params, target, layer, D_out, m, alpha, beta, add_target, 0, n_out)
