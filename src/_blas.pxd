# Row-major BLAS wrappers over scipy.linalg.cython_blas, fused on float32/float64.
# Directives come from setup.py (cythonize compiler_directives); restated here as a reminder:
#   boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
#
# Design: BLAS is column-major. A row-major matrix is the transpose of a column-major one,
# so the row-major product C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T:
# swap A with B and M with N, keep the trans flags (sklearn/utils/_cython_blas.pyx does the same).
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm


cdef inline void gemm(char trans_a, char trans_b, int m, int n, int k,
                      floating alpha, const floating* a, int lda,
                      const floating* b, int ldb,
                      floating beta, floating* c, int ldc) noexcept nogil:
    """C := alpha * op(A) @ op(B) + beta * C, row-major; C is (m, n), op(A) (m, k), op(B) (k, n)"""
    if floating is float:
        sgemm(&trans_b, &trans_a, &n, &m, &k, &alpha, <float*> b, &ldb,
              <float*> a, &lda, &beta, c, &ldc)
    else:
        dgemm(&trans_b, &trans_a, &n, &m, &k, &alpha, <double*> b, &ldb,
              <double*> a, &lda, &beta, c, &ldc)


cdef inline floating dot(const floating* x, const floating* y, Py_ssize_t n) noexcept nogil:
    """sum_j x[j] * y[j].

    Accumulates in 64 bytes of independent lanes (8 doubles or 16 floats) that gcc packs
    into SIMD registers: one AVX-512 register, two AVX2 or four SSE2 registers. Plain
    running sums would be a serial dependency that the compiler may not reorder.
    """
    cdef double acc_d[8]
    cdef float acc_f[16]
    cdef Py_ssize_t j = 0, k
    cdef floating total = 0
    if n < 8:
        # too short for a lane: zeroing and summing 8 or 16 lanes would cost more than it saves
        for j in range(n):
            total += x[j] * y[j]
        return total
    if floating is double:
        for k in range(8):
            acc_d[k] = 0
        while j + 8 <= n:
            for k in range(8):
                acc_d[k] += x[j + k] * y[j + k]
            j += 8
        for k in range(8):
            total += acc_d[k]
    else:
        for k in range(16):
            acc_f[k] = 0
        while j + 16 <= n:
            for k in range(16):
                acc_f[k] += x[j + k] * y[j + k]
            j += 16
        # a 4-lane stage shortens the scalar tail (n = 30: 16 + 3 x 4 + 2); measured to pay
        # for float32 (D 64-30-10: +12%) but not for float64, where it is left out
        while j + 4 <= n:
            for k in range(4):
                acc_f[k] += x[j + k] * y[j + k]
            j += 4
        for k in range(16):
            total += acc_f[k]
    while j < n:
        total += x[j] * y[j]
        j += 1
    return total
