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
    """sum_j x[j] * y[j], four partial sums so the loop pipelines and vectorises"""
    cdef floating s0 = 0, s1 = 0, s2 = 0, s3 = 0
    cdef Py_ssize_t j = 0
    while j + 4 <= n:
        s0 += x[j] * y[j]
        s1 += x[j + 1] * y[j + 1]
        s2 += x[j + 2] * y[j + 2]
        s3 += x[j + 3] * y[j + 3]
        j += 4
    while j < n:
        s0 += x[j] * y[j]
        j += 1
    return (s0 + s1) + (s2 + s3)
