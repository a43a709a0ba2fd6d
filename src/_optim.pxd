# The optimizers' update rules: how one step turns a gradient g into new parameters.
# cdef inline, nogil, fused on floating. Directives come from setup.py; restated:
# boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True.
#
# Design: every optimizer keeps up to two state vectors laid out like the parameters,
# s0 and s1 (rows 0 and 1 of the network's (2, n_params) state array):
#   SGD    s0 = velocity v                         v = mu v - eta g;  w = w + v
#          (nesterov: w = w + mu v - eta g, with the new v)      (mu = 0: w = w - eta g)
#   ADAM   s0 = first moment m, s1 = second moment v (Kingma & Ba, bias-corrected):
#          m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
#          w = w (1 - eta wd) - eta/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
#          (wd: AdamW's decoupled weight decay, on weights only; PyTorch's order of operations)
#   RPROP  s0 = previous gradient, s1 = step size Delta (iRprop-, Igel & Huesken 2000):
#          g_prev g > 0: Delta = min(Delta inc, Delta_max)
#          g_prev g < 0: Delta = max(Delta dec, Delta_min), g = 0
#          w = w - sign(g) Delta;  g_prev = g
# The L2 penalty l2/2 ||W||^2 adds l2 w to the gradient of every weight (never a bias) before
# the rule runs. A Step holds one step's constants in double; loops cast them once.
from libc.math cimport sqrt, sqrtf, pow
from cython cimport floating

cdef enum:
    SGD = 0
    ADAM = 1
    RPROP = 2

# Layout of the `hyper` array the Python layer passes (cbackprop/optimizers.py: HYPER_FIELDS).
cdef enum:
    H_KIND = 0
    H_LR = 1
    H_MOMENTUM = 2
    H_NESTEROV = 3
    H_L2 = 4
    H_BETA1 = 5
    H_BETA2 = 6
    H_EPS = 7
    H_WEIGHT_DECAY = 8
    H_INCREASE = 9
    H_DECREASE = 10
    H_DELTA_MIN = 11
    H_DELTA_MAX = 12
    N_HYPER = 13


ctypedef struct Step:
    int kind
    double lr, momentum, l2
    bint nesterov
    double beta1, beta2, eps
    double decay            # 1 - lr * weight_decay (AdamW), 1 for the others
    double c1, c2           # lr / (1 - b1^t) and 1 / sqrt(1 - b2^t) for step t (Adam)
    double increase, decrease, delta_min, delta_max


cdef inline Step make_step(const double* hyper, Py_ssize_t t) noexcept nogil:
    """The constants of step number t (1-based) from the hyper-parameter array"""
    cdef Step st
    st.kind = <int> hyper[H_KIND]
    st.lr = hyper[H_LR]
    st.momentum = hyper[H_MOMENTUM]
    st.nesterov = hyper[H_NESTEROV] != 0
    st.l2 = hyper[H_L2]
    st.beta1 = hyper[H_BETA1]
    st.beta2 = hyper[H_BETA2]
    st.eps = hyper[H_EPS]
    st.decay = 1.0 - hyper[H_LR] * hyper[H_WEIGHT_DECAY]
    st.c1 = st.lr
    st.c2 = 1.0
    if st.kind == ADAM:
        st.c1 = st.lr / (1.0 - pow(st.beta1, <double> t))
        st.c2 = 1.0 / sqrt(1.0 - pow(st.beta2, <double> t))
    st.increase = hyper[H_INCREASE]
    st.decrease = hyper[H_DECREASE]
    st.delta_min = hyper[H_DELTA_MIN]
    st.delta_max = hyper[H_DELTA_MAX]
    return st


cdef inline floating _sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline void apply_update(const Step* st, floating* w, const floating* g, floating* s0,
                              floating* s1, Py_ssize_t n, bint is_weight,
                              floating scale) noexcept nogil:
    """w := rule(w, scale g + l2 w) elementwise over n parameters (l2 and decay on weights
    only). scale = 1 for a gradient buffer; in online training g is the row's input h and
    scale its delta, so the row's gradient d h is never stored."""
    cdef Py_ssize_t j
    cdef floating eta = <floating> st.lr, mu = <floating> st.momentum
    cdef floating l2 = <floating> st.l2 if is_weight else 0
    cdef floating b1 = <floating> st.beta1, b2 = <floating> st.beta2
    cdef floating one_b1 = <floating> (1.0 - st.beta1), one_b2 = <floating> (1.0 - st.beta2)
    cdef floating c1 = <floating> st.c1, c2 = <floating> st.c2, eps = <floating> st.eps
    cdef floating decay = <floating> st.decay if is_weight else 1
    cdef floating inc = <floating> st.increase, dec = <floating> st.decrease
    cdef floating dmin = <floating> st.delta_min, dmax = <floating> st.delta_max
    cdef floating gj, v, delta
    if st.kind == SGD:
        if mu == 0:
            for j in range(n):
                w[j] = w[j] - eta * (scale * g[j] + l2 * w[j])
        elif st.nesterov:
            for j in range(n):
                gj = scale * g[j] + l2 * w[j]
                v = mu * s0[j] - eta * gj
                s0[j] = v
                w[j] = w[j] + (mu * v - eta * gj)
        else:
            for j in range(n):
                v = mu * s0[j] - eta * (scale * g[j] + l2 * w[j])
                s0[j] = v
                w[j] = w[j] + v
    elif st.kind == ADAM:
        for j in range(n):
            gj = scale * g[j] + l2 * w[j]
            s0[j] = b1 * s0[j] + one_b1 * gj
            s1[j] = b2 * s1[j] + one_b2 * (gj * gj)
            w[j] = w[j] * decay - c1 * s0[j] / (_sqrt(s1[j]) * c2 + eps)
    else:
        for j in range(n):
            gj = scale * g[j] + l2 * w[j]
            delta = s1[j]
            if s0[j] * gj > 0:
                delta = min(delta * inc, dmax)
            elif s0[j] * gj < 0:
                delta = max(delta * dec, dmin)
                gj = 0
            if gj > 0:
                w[j] = w[j] - delta
            elif gj < 0:
                w[j] = w[j] + delta
            s1[j] = delta
            s0[j] = gj


cdef inline void update_row(const Step* st, floating* w, floating* s0, floating* s1,
                            const floating* h, floating d, Py_ssize_t n,
                            floating* d_in) noexcept nogil:
    """One online step on row i of W^(layer), whose gradient is g_j = d h_j (+ l2 w_j).

    d = delta_i^(layer+1), h = h^(layer). When d_in is not NULL, first d_in_j += w_ij d with
    the old w_ij (the back-propagated sum for delta^(layer)), then the rule runs over the row
    while it is in cache. Plain SGD without L2 does not come here: _train.pyx fuses its two
    operations into one pass over the row.
    """
    cdef Py_ssize_t j
    if d_in != NULL:
        for j in range(n):
            d_in[j] += w[j] * d
    apply_update(st, w, h, s0, s1, n, True, d)
