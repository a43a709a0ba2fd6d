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

    A plain loop: setup.py compiles with -fassociative-math, which lets gcc split the sum
    into SIMD lanes and several accumulators as it sees fit (hand-written lane arrays were
    measured slower: D 64-30-10 float32 2.0M against 2.4-2.8M samples/s).
    """
    cdef Py_ssize_t j
    cdef floating total = 0
    for j in range(n):
        total += x[j] * y[j]
    return total


cdef inline void matvec(const floating* W, const floating* x, const floating* b,
                        floating* z, Py_ssize_t n_out, Py_ssize_t n_in) noexcept nogil:
    """z := W x + b for a row-major (n_out, n_in) W.

    Four rows at a time, each with its own sum: one sum per row is a chain of dependent
    additions that runs at the adder's latency, four independent ones keep it busy (gcc does
    not split a reduction into several accumulators by itself). x is read once per four rows.
    """
    cdef Py_ssize_t i = 0, j
    cdef floating a0, a1, a2, a3
    cdef const floating* w0
    while i + 4 <= n_out:
        w0 = W + i * n_in
        a0 = 0
        a1 = 0
        a2 = 0
        a3 = 0
        for j in range(n_in):
            a0 += w0[j] * x[j]
            a1 += w0[n_in + j] * x[j]
            a2 += w0[2 * n_in + j] * x[j]
            a3 += w0[3 * n_in + j] * x[j]
        z[i] = a0 + b[i]
        z[i + 1] = a1 + b[i + 1]
        z[i + 2] = a2 + b[i + 2]
        z[i + 3] = a3 + b[i + 3]
        i += 4
    while i < n_out:
        z[i] = dot(W + i * n_in, x, n_in) + b[i]
        i += 1
