"""numba kernels for numba_njit.py (module level so numba's on-disk cache works).

Imported lazily: importing this module imports numba.
"""

import numpy as np
from numba import njit

from contenders.numba_njit import FASTMATH

opts = dict(cache=True, fastmath=FASTMATH, nogil=True, error_model="numpy",
            boundscheck=False)


@njit(**opts)
def epoch_b1(Ws, bs, Hs, Ds, X, Y, lr, one):
    # Ws: tuple of per-layer C-contiguous (n_out, n_in) weight arrays; bs,
    # Hs (activations), Ds (deltas): tuples of 1-D buffers, preallocated.
    # All inner loops run over a range() index on contiguous rows, so the
    # index is provably non-negative (no wraparound select) and unit-stride:
    # LLVM vectorises the dot products (fastmath lets it reassociate the
    # reduction) and the fused propagate+update loop.
    L = len(Ws)
    zero = one - one
    for s in range(X.shape[0]):
        x = X[s]
        y = Y[s]
        # forward: one dot product per unit, input row read contiguously
        hin = x
        for l in range(L):
            W = Ws[l]
            b = bs[l]
            h = Hs[l]
            n_in = W.shape[1]
            for i in range(W.shape[0]):
                acc = zero
                for k in range(n_in):
                    acc += W[i, k] * hin[k]
                h[i] = one / (one + np.exp(-(acc + b[i])))
            hin = h
        # output delta of J = 1/2 ||y - h||^2 through the sigmoid
        h = Hs[L - 1]
        d = Ds[L - 1]
        for i in range(h.shape[0]):
            hv = h[i]
            d[i] = (hv - y[i]) * hv * (one - hv)
        # backward, top layer first: each weight row is read once, used to
        # propagate delta with the old W and updated in the same pass
        for l in range(L - 1, 0, -1):
            W = Ws[l]
            b = bs[l]
            d = Ds[l]
            hin = Hs[l - 1]
            dp = Ds[l - 1]
            n_in = W.shape[1]
            for k in range(n_in):
                dp[k] = zero
            for i in range(W.shape[0]):
                di = d[i]
                g = lr * di
                for k in range(n_in):
                    dp[k] += W[i, k] * di
                    W[i, k] -= g * hin[k]
                b[i] -= g
            for k in range(n_in):
                hv = hin[k]
                dp[k] *= hv * (one - hv)
        W = Ws[0]
        b = bs[0]
        d = Ds[0]
        n_in = W.shape[1]
        for i in range(W.shape[0]):
            g = lr * d[i]
            for k in range(n_in):
                W[i, k] -= g * x[k]
            b[i] -= g


@njit(**opts)
def sigmoid_bias(Z, b, one):
    for r in range(Z.shape[0]):
        for i in range(Z.shape[1]):
            Z[r, i] = one / (one + np.exp(-(Z[r, i] + b[i])))


@njit(**opts)
def epoch_mb(Ws, bs, X, Y, scale_full, scale_last, B, one):
    L = len(Ws)
    n = X.shape[0]
    for s in range(0, n, B):
        e = min(s + B, n)
        m = e - s
        xb = np.ascontiguousarray(X[s:e])
        acts = [xb]
        for l in range(L):
            Z = np.dot(acts[l], Ws[l].T)
            sigmoid_bias(Z, bs[l], one)
            acts.append(Z)
        h = acts[L]
        D = np.empty_like(h)
        for r in range(m):
            for i in range(h.shape[1]):
                hv = h[r, i]
                D[r, i] = (hv - Y[s + r, i]) * hv * (one - hv)
        scale = scale_full if m == B else scale_last  # lr / m in the dtype
        for l in range(L - 1, -1, -1):
            W = Ws[l]
            b = bs[l]
            hin = acts[l]
            G = np.dot(D.T, hin)
            if l > 0:
                Dp = np.dot(D, W)
                for r in range(m):
                    for k in range(Dp.shape[1]):
                        hv = hin[r, k]
                        Dp[r, k] *= hv * (one - hv)
            for i in range(W.shape[0]):
                gb = b[i] - b[i]
                for r in range(m):
                    gb += D[r, i]
                b[i] -= scale * gb
                for k in range(W.shape[1]):
                    W[i, k] -= scale * G[i, k]
            if l > 0:
                D = Dp


@njit(**opts)
def forward(Ws, bs, X, one):
    h = np.ascontiguousarray(X)
    for l in range(len(Ws)):
        Z = np.dot(h, Ws[l].T)
        sigmoid_bias(Z, bs[l], one)
        h = Z
    return h
