# Activations f, their derivatives written in terms of the output h = f(z), and the per-sample
# losses with their output deltas. Scalar/vector cdef inline helpers, nogil, fused on floating.
# Directives come from setup.py; restated: boundscheck=False, wraparound=False, cdivision=True.
#
# Notation (the tutorial's): z = W h + b is a layer's input sum, h = f(z) its output,
# delta = dJ/dz. Codes here must match ACTIVATIONS / LOSSES in cbackprop/_config.py.
from cython cimport floating
from libc.math cimport exp, expf, log, logf, log1p, log1pf, tanh, tanhf, fabs, fabsf

cdef enum:
    SIGMOID = 0
    TANH = 1
    RELU = 2
    LINEAR = 3
    SOFTMAX = 4

cdef enum:
    MSE = 0
    CROSS_ENTROPY = 1


cdef inline floating _exp(floating x) noexcept nogil:
    """e^x in the precision of x (no silent upcast for float32)"""
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline floating _log(floating x) noexcept nogil:
    """ln x in the precision of x"""
    if floating is float:
        return logf(x)
    else:
        return log(x)


cdef inline floating softplus(floating t) noexcept nogil:
    """log(1 + e^t), stable for any t: max(t, 0) + log1p(e^-|t|)"""
    if floating is float:
        return (t if t > 0 else 0) + log1pf(expf(-fabsf(t)))
    else:
        return (t if t > 0 else 0) + log1p(exp(-fabs(t)))


cdef inline floating sigmoid(floating z) noexcept nogil:
    """1 / (1 + e^-z), computed from e^-|z| so neither branch overflows"""
    cdef floating e
    if floating is float:
        e = expf(-fabsf(z))
    else:
        e = exp(-fabs(z))
    if z >= 0:
        return 1 / (1 + e)
    return e / (1 + e)


cdef inline void activate(int code, floating* z, Py_ssize_t n) noexcept nogil:
    """h := f(z) in place for one sample's layer of n units"""
    cdef Py_ssize_t j
    cdef floating zmax, total
    if code == SIGMOID:
        for j in range(n):
            z[j] = sigmoid(z[j])
    elif code == TANH:
        for j in range(n):
            if floating is float:
                z[j] = tanhf(z[j])
            else:
                z[j] = tanh(z[j])
    elif code == RELU:
        for j in range(n):
            if z[j] < 0:
                z[j] = 0
    elif code == SOFTMAX:
        # h_j = e^(z_j - max z) / sum_k e^(z_k - max z): the shift keeps every exponent <= 0
        zmax = z[0]
        for j in range(1, n):
            if z[j] > zmax:
                zmax = z[j]
        total = 0
        for j in range(n):
            z[j] = _exp(z[j] - zmax)
            total += z[j]
        for j in range(n):
            z[j] = z[j] / total
    # LINEAR: h = z, nothing to do


cdef inline void mul_derivative(int code, const floating* h, floating* delta,
                                Py_ssize_t n) noexcept nogil:
    """delta := delta * f'(z), with f'(z) written from h = f(z) (hidden layers; never softmax)"""
    cdef Py_ssize_t j
    if code == SIGMOID:
        for j in range(n):
            delta[j] = delta[j] * (h[j] * (1 - h[j]))
    elif code == TANH:
        for j in range(n):
            delta[j] = delta[j] * (1 - h[j] * h[j])
    elif code == RELU:
        for j in range(n):
            if h[j] <= 0:
                delta[j] = 0
    # LINEAR: f' = 1


cdef inline floating sample_loss(int loss, int code, const floating* h, const floating* z,
                                 const floating* y, Py_ssize_t n) noexcept nogil:
    """J for one sample: mse 1/2 sum (y - h)^2; cross-entropy from z so it never takes log 0"""
    cdef Py_ssize_t j
    cdef floating total = 0, zmax, lse, diff
    if loss == MSE:
        for j in range(n):
            diff = y[j] - h[j]
            total += diff * diff
        return total / 2
    if code == SOFTMAX:
        # -sum_k y_k log softmax(z)_k = sum_k y_k (logsumexp(z) - z_k)
        zmax = z[0]
        for j in range(1, n):
            if z[j] > zmax:
                zmax = z[j]
        lse = 0
        for j in range(n):
            lse += _exp(z[j] - zmax)
        lse = zmax + _log(lse)
        for j in range(n):
            if y[j] != 0:
                total += y[j] * (lse - z[j])
        return total
    # sigmoid outputs, binary cross-entropy per unit:
    # -y log h - (1 - y) log(1 - h) = y softplus(-z) + (1 - y) softplus(z)
    for j in range(n):
        total += y[j] * softplus(-z[j]) + (1 - y[j]) * softplus(z[j])
    return total


cdef inline void output_delta(int loss, int code, const floating* h, const floating* y,
                              floating* delta, Py_ssize_t n) noexcept nogil:
    """delta^(nl) = dJ/dz^(nl) for one sample"""
    cdef Py_ssize_t j
    cdef floating s = 0
    if loss == MSE:
        # delta^(nl) = -(y - h) * f'(z)
        for j in range(n):
            delta[j] = h[j] - y[j]
        if code == SOFTMAX:
            # the softmax Jacobian couples units: dh_k/dz_i = h_k (1[k = i] - h_i)
            for j in range(n):
                s += delta[j] * h[j]
            for j in range(n):
                delta[j] = h[j] * (delta[j] - s)
        else:
            mul_derivative(code, h, delta, n)
    elif code == SOFTMAX:
        # d/dz_i of sum_k y_k (logsumexp(z) - z_k) = h_i sum_k y_k - y_i
        for j in range(n):
            s += y[j]
        for j in range(n):
            delta[j] = h[j] * s - y[j]
    else:
        # sigmoid with binary cross-entropy: f'(z) cancels, delta = h - y
        for j in range(n):
            delta[j] = h[j] - y[j]
