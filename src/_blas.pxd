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


# cbackprop's own gemm, for inference and the loss (_forward.pyx) and for the first layer of
# mini-batch training (_train.pyx epoch_of), through _passes.pxd forward_block and
# backward_block: C += alpha A B with A read through two strides, so the same kernel computes
# the forward product Z = X W^T (A = X, B = W^T held transposed) and the weight gradient
# W^T += alpha X^T D (A = X^T, read in place from X), neither operand packed. OpenBLAS packs
# both operands of every call; on 784-128-10 with batch 64 its packing took 10% of an epoch
# (perf), and this kernel ran the two products 1.45x (float32) and 1.5x (float64) as fast as
# OpenBLAS with one thread (measured 2026-11-24, side by side in one process, medians of 9
# epochs, 3 runs). AVX-512 only: tiles of 8 rows by 2 vectors hold 16 accumulators of the 32
# registers, the last vector of a row masked; other levels use BLAS.
cdef extern from *:
    """
    #ifdef CBACKPROP_PLAIN_C
    #define CBACKPROP_PLAIN_C_BUILD 1
    #else
    #define CBACKPROP_PLAIN_C_BUILD 0
    #endif
    #if defined(__GNUC__) && defined(__AVX512F__) && !defined(CBACKPROP_PLAIN_C)
    #include <immintrin.h>
    #define CBACKPROP_OWN_GEMM 1
    /* C[i, j] += alpha sum_p A[i ars + p aps] B[p ldb + j] for MR rows i and NV vectors of
       columns j, the last vector's lanes chosen by `last`. The sum over p is accumulated in
       registers from zero, then added to C once. */
    #define CBACKPROP_GEMM_TILE(NAME, T, VT, MT, LOAD, STORE, VW, MR, NV)                     \
    static inline __attribute__((always_inline)) void NAME(                               \
            Py_ssize_t kdim, T alpha, const T *restrict A, Py_ssize_t ars, Py_ssize_t aps, \
            const T *restrict B, Py_ssize_t ldb, T *restrict C, Py_ssize_t ldc, MT last) {  \
        VT acc[MR][NV], b[NV];                                                             \
        _Pragma("GCC unroll 8")                                                            \
        for (int i = 0; i < MR; i++)                                                       \
            _Pragma("GCC unroll 2")                                                        \
            for (int j = 0; j < NV; j++)                                                   \
                acc[i][j] = (VT) {0};                                                      \
        for (Py_ssize_t p = 0; p < kdim; p++) {                                            \
            _Pragma("GCC unroll 2")                                                        \
            for (int j = 0; j < NV; j++)                                                   \
                b[j] = LOAD(j == NV - 1 ? last : (MT) -1, B + p * ldb + j * VW);           \
            _Pragma("GCC unroll 8")                                                        \
            for (int i = 0; i < MR; i++) {                                                 \
                T a = A[i * ars + p * aps];                                                \
                _Pragma("GCC unroll 2")                                                    \
                for (int j = 0; j < NV; j++)                                               \
                    acc[i][j] += a * b[j];                                                 \
            }                                                                              \
        }                                                                                  \
        _Pragma("GCC unroll 8")                                                            \
        for (int i = 0; i < MR; i++)                                                       \
            _Pragma("GCC unroll 2")                                                        \
            for (int j = 0; j < NV; j++) {                                                 \
                MT mask = j == NV - 1 ? last : (MT) -1;                                    \
                VT c = LOAD(mask, C + i * ldc + j * VW);                                   \
                STORE(C + i * ldc + j * VW, mask, c + alpha * acc[i][j]);                  \
            }                                                                              \
    }
    /* The whole product: C (m, n) += alpha A (m, kdim) B (kdim, n), A's element (i, p) at
       A[i ars + p aps]; B and C row-major with strides ldb, ldc. Column blocks of two
       vectors (the last block one or two, masked), in each 8-row tiles, then single rows.
       rows_outer: rows outside columns (each tile of A read once, from L1, for all of a
       row's blocks: the gradient, whose A rows are strided); else columns outside rows
       (a block of B stays in L2 while every row tile passes: the forward product). */
    #define CBACKPROP_GEMM(NAME, T, VT, MT, LOAD, STORE, VW)                                 \
    CBACKPROP_GEMM_TILE(NAME##_8x2, T, VT, MT, LOAD, STORE, VW, 8, 2)                       \
    CBACKPROP_GEMM_TILE(NAME##_8x1, T, VT, MT, LOAD, STORE, VW, 8, 1)                       \
    CBACKPROP_GEMM_TILE(NAME##_1x2, T, VT, MT, LOAD, STORE, VW, 1, 2)                       \
    CBACKPROP_GEMM_TILE(NAME##_1x1, T, VT, MT, LOAD, STORE, VW, 1, 1)                       \
    static inline void NAME##_block(Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t j0,            \
            Py_ssize_t n, Py_ssize_t kdim, T alpha, const T *A, Py_ssize_t ars,              \
            Py_ssize_t aps, const T *B, Py_ssize_t ldb, T *C, Py_ssize_t ldc) {             \
        Py_ssize_t left = n - j0, i = i0;                                                  \
        MT last = left >= 2 * VW ? (MT) -1 : left > VW ? (MT) ((1ull << (left - VW)) - 1)   \
                  : (MT) ((1ull << left) - 1);                                             \
        const T *Bj = B + j0;                                                              \
        T *Cj = C + j0;                                                                    \
        if (left > VW) {                                                                   \
            for (; i + 8 <= i1; i += 8)                                                    \
                NAME##_8x2(kdim, alpha, A + i * ars, ars, aps, Bj, ldb, Cj + i * ldc, ldc, last); \
            for (; i < i1; i++)                                                            \
                NAME##_1x2(kdim, alpha, A + i * ars, ars, aps, Bj, ldb, Cj + i * ldc, ldc, last); \
        } else {                                                                           \
            for (; i + 8 <= i1; i += 8)                                                    \
                NAME##_8x1(kdim, alpha, A + i * ars, ars, aps, Bj, ldb, Cj + i * ldc, ldc, last); \
            for (; i < i1; i++)                                                            \
                NAME##_1x1(kdim, alpha, A + i * ars, ars, aps, Bj, ldb, Cj + i * ldc, ldc, last); \
        }                                                                                  \
    }                                                                                      \
    static void NAME(Py_ssize_t m, Py_ssize_t n, Py_ssize_t kdim, T alpha, const T *A,     \
                     Py_ssize_t ars, Py_ssize_t aps, const T *B, Py_ssize_t ldb, T *C,      \
                     Py_ssize_t ldc, int rows_outer) {                                     \
        if (rows_outer) {                                                                  \
            for (Py_ssize_t i = 0; i < m; i += 8)                                          \
                for (Py_ssize_t j = 0; j < n; j += 2 * VW)                                 \
                    NAME##_block(i, i + 8 <= m ? i + 8 : m, j, n, kdim, alpha, A, ars, aps, \
                                 B, ldb, C, ldc);                                          \
        } else {                                                                           \
            for (Py_ssize_t j = 0; j < n; j += 2 * VW)                                     \
                NAME##_block(0, m, j, n, kdim, alpha, A, ars, aps, B, ldb, C, ldc);         \
        }                                                                                  \
    }
    CBACKPROP_GEMM(cbp_own_gemm_f, float, __m512, __mmask16, _mm512_maskz_loadu_ps,
                   _mm512_mask_storeu_ps, 16)
    CBACKPROP_GEMM(cbp_own_gemm_d, double, __m512d, __mmask8, _mm512_maskz_loadu_pd,
                   _mm512_mask_storeu_pd, 8)
    #else
    #define CBACKPROP_OWN_GEMM 0
    /* never called where CBACKPROP_OWN_GEMM is 0: stubs to link */
    static void cbp_own_gemm_f(Py_ssize_t m, Py_ssize_t n, Py_ssize_t kdim, float alpha,
                               const float *A, Py_ssize_t ars, Py_ssize_t aps, const float *B,
                               Py_ssize_t ldb, float *C, Py_ssize_t ldc, int rows_outer) {}
    static void cbp_own_gemm_d(Py_ssize_t m, Py_ssize_t n, Py_ssize_t kdim, double alpha,
                               const double *A, Py_ssize_t ars, Py_ssize_t aps,
                               const double *B, Py_ssize_t ldb, double *C, Py_ssize_t ldc,
                               int rows_outer) {}
    #endif
    """
    const bint CBACKPROP_OWN_GEMM
    const bint CBACKPROP_PLAIN_C_BUILD
    void cbp_own_gemm_f(Py_ssize_t m, Py_ssize_t n, Py_ssize_t kdim, float alpha,
                        const float* A, Py_ssize_t ars, Py_ssize_t aps, const float* B,
                        Py_ssize_t ldb, float* C, Py_ssize_t ldc, int rows_outer) noexcept nogil
    void cbp_own_gemm_d(Py_ssize_t m, Py_ssize_t n, Py_ssize_t kdim, double alpha,
                        const double* A, Py_ssize_t ars, Py_ssize_t aps, const double* B,
                        Py_ssize_t ldb, double* C, Py_ssize_t ldc, int rows_outer) noexcept nogil


cdef inline void own_gemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t kdim, floating alpha,
                          const floating* a, Py_ssize_t a_row_stride, Py_ssize_t a_col_stride,
                          const floating* b, Py_ssize_t ldb, floating* c, Py_ssize_t ldc,
                          bint rows_outer) noexcept nogil:
    """C (m, n) += alpha * A (m, kdim) @ B (kdim, n), A[i, p] at a[i * a_row_stride +
    p * a_col_stride], B and C row-major; only where CBACKPROP_OWN_GEMM (see above)."""
    if floating is float:
        cbp_own_gemm_f(m, n, kdim, alpha, a, a_row_stride, a_col_stride, b, ldb, c, ldc,
                       rows_outer)
    else:
        cbp_own_gemm_d(m, n, kdim, alpha, a, a_row_stride, a_col_stride, b, ldb, c, ldc,
                       rows_outer)


cdef enum:
    # The largest W^T own_gemm is given (_passes.pxd forward_block, _train.pyx epoch_of): it
    # reads W^T unpacked, so the products run at its pace while W^T stays in L2 (1 MB on the
    # AVX-512 processors of 2017-2024 but Sapphire Rapids', 2 MB). Measured on the 2-core
    # machine (Zen5-class, 1 MB L2), one thread, own against BLAS, training: 784-128 1.33
    # (float32, 401 KB) and 1.22 (float64, 803 KB); 784-512 0.98 and 0.89 (1.6 and 3.2 MB).
    # On the Zen 4 machine (1 MB L2) 784-512 ran 1.00-1.05 (float32) and 0.94 (float64), and
    # in a team's block 784x512 1.06 (float32) and 0.90 (float64).
    OWN_GEMM_MAX_BYTES = 1 << 20
    # Layers forward_block can be told to take by own_gemm: bits of an int (a shift by 32 or
    # more is undefined in C, and on x86 wraps to bit 0)
    OWN_GEMM_MAX_LAYERS = 30
    # Rows below which inference keeps BLAS: holding every W transposed costs about as much
    # as a row's product (a one-row predict() would pay it several times over)
    OWN_GEMM_MIN_ROWS = 64


cdef inline void transpose(const floating* a, Py_ssize_t rows, Py_ssize_t cols,
                           floating* out) noexcept nogil:
    """out (cols, rows) := a (rows, cols) transposed, both row-major, in tiles of 16 by 16 so
    that the strided side touches 16 cache lines at a time (element by element it was 2.6%
    of a 784-128-10 batch-64 epoch, which transposes W^(1) twice in each of its six calls)"""
    cdef Py_ssize_t i0, j0, i, j
    for i0 in range(0, rows, 16):
        for j0 in range(0, cols, 16):
            for i in range(i0, min(i0 + 16, rows)):
                for j in range(j0, min(j0 + 16, cols)):
                    out[j * rows + i] = a[i * cols + j]
