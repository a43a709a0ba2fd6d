"""numba kernels for numba_njit.py (module level so numba's on-disk cache works).

Imported lazily: importing this module imports numba.
"""

import numpy as np
from numba import njit

from contenders.numba_njit import FASTMATH

opts = dict(cache=True, fastmath=FASTMATH, nogil=True)


@njit(**opts)
def epoch_b1(Wf, bf, sizes, woff, boff, H, D, X, Y, lr, one):
    # All weights live in one flat vector (layer l at woff[l], row-major
    # (n_out, n_in)); biases, activations H and deltas D share the offsets
    # boff[l].  No per-sample allocation, no container look-ups.
    L = sizes.shape[0] - 1
    for s in range(X.shape[0]):
        for l in range(L):
            n_in = sizes[l]
            wo = woff[l]
            bo = boff[l]
            po = boff[l - 1] if l > 0 else 0
            for i in range(sizes[l + 1]):
                acc = bf[bo + i]
                row = wo + i * n_in
                if l == 0:
                    for k in range(n_in):
                        acc += Wf[row + k] * X[s, k]
                else:
                    for k in range(n_in):
                        acc += Wf[row + k] * H[po + k]
                H[bo + i] = one / (one + np.exp(-acc))
        bo = boff[L - 1]
        for i in range(sizes[L]):
            h = H[bo + i]
            D[bo + i] = (h - Y[s, i]) * h * (one - h)
        for l in range(L - 1, -1, -1):
            n_in = sizes[l]
            wo = woff[l]
            bo = boff[l]
            if l > 0:
                po = boff[l - 1]
                for k in range(n_in):
                    D[po + k] = 0
                for i in range(sizes[l + 1]):
                    di = D[bo + i]
                    g = lr * di
                    row = wo + i * n_in
                    for k in range(n_in):
                        D[po + k] += Wf[row + k] * di  # old W: propagate, then update
                        Wf[row + k] -= g * H[po + k]
                    bf[bo + i] -= g
                for k in range(n_in):
                    h = H[po + k]
                    D[po + k] *= h * (one - h)
            else:
                for i in range(sizes[l + 1]):
                    g = lr * D[bo + i]
                    row = wo + i * n_in
                    for k in range(n_in):
                        Wf[row + k] -= g * X[s, k]
                    bf[bo + i] -= g


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
