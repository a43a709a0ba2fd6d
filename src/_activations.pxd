# Activations f, their derivatives written in terms of the output h = f(z), and the per-sample
# losses with their output deltas. Scalar/vector cdef inline helpers, nogil, fused on floating.
# Directives come from setup.py; restated: boundscheck=False, wraparound=False, cdivision=True.
#
# Notation (the tutorial's): z = W h + b is a layer's input sum, h = f(z) its output,
# delta = dJ/dz. Codes here must match ACTIVATIONS / LOSSES in cbackprop/_config.py.
from cython cimport floating
from libc.math cimport (exp, expf, log, logf, log1p, log1pf, tanh, tanhf, fabs, fabsf,
                        rint, rintf, fma, fmaf)

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


cdef union _Bits64:
    double d
    long long i


cdef union _Bits32:
    float f
    int i


cdef extern from *:
    """
    /* The polynomial exp below pays where loops over it vectorise (AVX2 and up: every
       operation in it has a packed form there); on plain x86-64 libm's scalar exp is faster. */
    #if defined(__AVX2__)
    #define CBACKPROP_SIMD_EXP 1
    #else
    #define CBACKPROP_SIMD_EXP 0
    #endif
    """
    const bint CBACKPROP_SIMD_EXP


cdef inline floating _scale_bits(floating t, floating magic) noexcept nogil:
    """2^k where t = magic + k for an integer k (|k| small): k sits in t's low mantissa bits"""
    cdef _Bits64 a, m
    cdef _Bits32 af, mf
    if floating is double:
        a.d = t
        m.d = magic
        a.i = (a.i - m.i + 1023) << 52
        return a.d
    else:
        af.f = t
        mf.f = magic
        af.i = (af.i - mf.i + 127) << 23
        return af.f


cdef inline floating exp_nonpositive(floating x) noexcept nogil:
    """e^x for x <= 0 (or NaN), branch-free so that loops over it vectorise.

    Range reduction x = k ln2 + r with |r| <= ln2 / 2 (ln2 split in a high part with trailing
    zero bits, so k * ln2_hi is exact, and a low part), a Taylor polynomial in r (degree 13 for
    double, truncation error below 1e-17; degree 7 for float, below 1e-8), and the scale 2^k
    built from exponent bits in two halves so that subnormal results come out right. rint and
    fma become single packed instructions at the AVX2 level and up, where this is used.
    No table: within 2 ulp of e^x on all of (-inf, 0]; the sigmoid built on it stays within
    3 ulp (tests/test_forward.py checks that at every kernel level). At the baseline level,
    where this would not vectorise, it is libm's exp instead.
    """
    cdef floating kd, half, k1, r, p, magic, log2e, ln2_hi, ln2_lo, lowest
    if not CBACKPROP_SIMD_EXP:
        return _exp(x)
    if floating is double:
        magic, log2e = 6755399441055744.0, 1.4426950408889634
        ln2_hi, ln2_lo, lowest = 6.93147180369123816490e-01, 1.90821492927058770002e-10, -750.0
    else:
        magic, log2e = 12582912.0, 1.44269504
        ln2_hi, ln2_lo, lowest = 0.693359375, -2.12194440e-4, -104.0
    x = lowest if x < lowest else x     # e^x underflows to 0 below; keeps k bounded
    # Written to survive -fassociative-math (setup.py): rounding by rint, not by adding and
    # subtracting a magic number (which reassociation folds away), and the two-part range
    # reduction by fma, whose single rounding no reassociation can merge.
    if floating is double:
        kd = rint(x * log2e)            # k = x / ln2 rounded to nearest
        k1 = rint(kd * 0.5)             # about k / 2
        r = fma(-kd, ln2_lo, fma(-kd, ln2_hi, x))
    else:
        kd = rintf(x * log2e)
        k1 = rintf(kd * <floating> 0.5)
        r = fmaf(-kd, ln2_lo, fmaf(-kd, ln2_hi, x))
    half = k1 + magic                   # magic + k1: the exponent bits of 2^k1
    if floating is double:
        # Horner: 1 + r (1 + r (1/2! + r (1/3! + ... + r / 13!)))
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
    else:
        p = <floating> (1.0 / 5040.0)
        p = p * r + <floating> (1.0 / 720.0)
        p = p * r + <floating> (1.0 / 120.0)
        p = p * r + <floating> (1.0 / 24.0)
        p = p * r + <floating> (1.0 / 6.0)
        p = p * r + <floating> 0.5
        p = p * r + <floating> 1      # cast: a bare 1 is a double in Cython's C
        p = p * r + <floating> 1
    # 2^k = 2^k1 * 2^(k - k1), each factor a normal number even when e^x is subnormal
    return p * _scale_bits(half, magic) * _scale_bits((kd - k1) + magic, magic)


cdef inline floating _sigmoid_from(floating z, floating e) noexcept nogil:
    """1 / (1 + e^-z) given e = e^-|z|: neither branch overflows"""
    cdef floating one = 1   # typed: a literal 1 / ... would be a double division (float32!)
    cdef floating r = one / (one + e)
    return r if z >= 0 else e * r


cdef inline floating sigmoid(floating z) noexcept nogil:
    """1 / (1 + e^-z) with the polynomial exp, for loops that vectorise"""
    return _sigmoid_from(z, exp_nonpositive(-z if z >= 0 else z))


cdef inline floating _max(const floating* z, Py_ssize_t n) noexcept nogil:
    """max_j z[j], n >= 1"""
    cdef Py_ssize_t j
    cdef floating zmax = z[0]
    for j in range(1, n):
        if z[j] > zmax:
            zmax = z[j]
    return zmax


cdef inline floating sigmoid_libm(floating z) noexcept nogil:
    """1 / (1 + e^-z) with libm's exp: the faster choice for a scalar, one unit at a time"""
    return _sigmoid_from(z, _exp(-z if z >= 0 else z))


cdef inline void activate(int code, floating* z, Py_ssize_t n,
                          Py_ssize_t width=0) noexcept nogil:
    """h := f(z) in place for n values: one sample's layer, or a block of samples' layers of
    `width` units each (element-wise codes only). The sigmoid's exp is chosen by the layer's
    width, not by n, so a unit's output has the same bits in a block as alone."""
    cdef Py_ssize_t j
    cdef floating zmax, total
    if code == SIGMOID:
        if (width if width > 0 else n) >= 8:
            for j in range(n):
                z[j] = sigmoid(z[j])
        else:
            # too few units for a SIMD register: the scalar polynomial would be slower than libm
            for j in range(n):
                z[j] = sigmoid_libm(z[j])
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
        zmax = _max(z, n)
        total = 0
        for j in range(n):
            z[j] = exp_nonpositive(z[j] - zmax)     # vectorised: every exponent is <= 0
            total += z[j]
        for j in range(n):
            z[j] = z[j] / total
    # LINEAR: h = z, nothing to do


cdef inline void mul_derivative(int code, const floating* h, floating* delta,
                                Py_ssize_t n) noexcept nogil:
    """delta := delta * f'(z), with f'(z) written from h = f(z) (hidden layers; never softmax)"""
    cdef Py_ssize_t j
    cdef floating one = 1   # typed: Cython writes a literal 1 as 1.0, a double (float32!)
    if code == SIGMOID:
        for j in range(n):
            delta[j] = delta[j] * (h[j] * (one - h[j]))
    elif code == TANH:
        for j in range(n):
            delta[j] = delta[j] * (one - h[j] * h[j])
    elif code == RELU:
        for j in range(n):
            if h[j] <= 0:
                delta[j] = 0
    # LINEAR: f' = 1


cdef inline floating sample_loss(int loss, int code, const floating* h, const floating* z,
                                 const floating* y, Py_ssize_t n) noexcept nogil:
    """J for one sample: mse 1/2 sum (y - h)^2; cross-entropy from z so it never takes log 0"""
    cdef Py_ssize_t j
    cdef floating total = 0, zmax, lse, diff, one = 1
    if loss == MSE:
        for j in range(n):
            diff = y[j] - h[j]
            total += diff * diff
        return total * <floating> 0.5
    if code == SOFTMAX:
        # -sum_k y_k log softmax(z)_k = sum_k y_k (logsumexp(z) - z_k)
        zmax = _max(z, n)
        lse = 0
        for j in range(n):
            lse += exp_nonpositive(z[j] - zmax)
        lse = zmax + _log(lse)
        for j in range(n):
            if y[j] != 0:
                total += y[j] * (lse - z[j])
        return total
    # sigmoid outputs, binary cross-entropy per unit:
    # -y log h - (1 - y) log(1 - h) = y softplus(-z) + (1 - y) softplus(z)
    for j in range(n):
        total += y[j] * softplus(-z[j]) + (one - y[j]) * softplus(z[j])
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
