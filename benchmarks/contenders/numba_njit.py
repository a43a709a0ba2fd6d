"""numba @njit loops, written the way a performance-minded user would.

Batch 1: one fused per-sample kernel -- forward as row dot products, then
for each layer from the top, a single pass over W that both propagates
delta (with the old W) and applies the SGD update; preallocated buffers.
Mini-batch and inference: np.dot inside njit (numba calls the BLAS that
SciPy ships), elementwise sigmoid / delta work fused in explicit loops.
fastmath=True (lets LLVM vectorise the dot-product reductions).
Threads: the loops are serial; the np.dot calls follow the BLAS limit.
"""

NAME = "numba"
FASTMATH = True
_K = None


def available():
    try:
        import numba  # noqa: F401
        import scipy  # noqa: F401  (numba's np.dot needs SciPy's BLAS)
        return True
    except Exception as exc:  # noqa: BLE001
        return "import numba failed: %s (pip install numba)" % exc


def version():
    import numba
    return numba.__version__


def supports(kind, batch_size, threads):
    return None


def _kernels():
    global _K
    if _K is not None:
        return _K
    import numpy as np
    from numba import njit

    opts = dict(cache=True, fastmath=FASTMATH, nogil=True)

    @njit(**opts)
    def epoch_b1(Ws, bs, hs, ds, X, Y, lr, one):
        L = len(Ws)
        for s in range(X.shape[0]):
            x = X[s]
            for l in range(L):
                W = Ws[l]
                b = bs[l]
                hin = x if l == 0 else hs[l - 1]
                hout = hs[l]
                for i in range(W.shape[0]):
                    acc = b[i]
                    for k in range(W.shape[1]):
                        acc += W[i, k] * hin[k]
                    hout[i] = one / (one + np.exp(-acc))
            h = hs[L - 1]
            d = ds[L - 1]
            y = Y[s]
            for i in range(h.shape[0]):
                d[i] = (h[i] - y[i]) * h[i] * (one - h[i])
            for l in range(L - 1, -1, -1):
                W = Ws[l]
                b = bs[l]
                d = ds[l]
                hin = x if l == 0 else hs[l - 1]
                n_in = W.shape[1]
                if l > 0:
                    dp = ds[l - 1]
                    dp[:] = 0
                    for i in range(W.shape[0]):
                        di = d[i]
                        g = lr * di
                        for k in range(n_in):
                            dp[k] += W[i, k] * di
                            W[i, k] -= g * hin[k]
                        b[i] -= g
                    for k in range(n_in):
                        dp[k] *= hin[k] * (one - hin[k])
                else:
                    for i in range(W.shape[0]):
                        g = lr * d[i]
                        for k in range(n_in):
                            W[i, k] -= g * hin[k]
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

    _K = (epoch_b1, epoch_mb, forward)
    return _K


class _Trainer:
    def __init__(self, sizes, weights, biases, dtype, batch_size, lr):
        import numpy as np
        from numba.typed import List
        self.np = np
        self.k = _kernels()
        self.Ws = List([np.array(w, dtype=dtype, order="C", copy=True) for w in weights])
        self.bs = List([np.array(b, dtype=dtype, copy=True) for b in biases])
        self.hs = List([np.zeros(n, dtype=dtype) for n in sizes[1:]])
        self.ds = List([np.zeros(n, dtype=dtype) for n in sizes[1:]])
        self.lr = np.dtype(dtype).type(lr)
        self.one = np.dtype(dtype).type(1)  # keeps float32 kernels in float32
        self.batch_size = batch_size

    def epoch(self, X, Y):
        if self.batch_size == 1:
            self.k[0](self.Ws, self.bs, self.hs, self.ds, X, Y, self.lr, self.one)
        else:
            B = self.batch_size
            last = X.shape[0] % B or B
            t = self.lr.dtype.type
            self.k[1](self.Ws, self.bs, X, Y, t(self.lr / t(B)), t(self.lr / t(last)), B, self.one)

    def params(self):
        return [w.copy() for w in self.Ws], [b.copy() for b in self.bs]

    def forward(self, X):
        return self.k[2](self.Ws, self.bs, X, self.one)


def make_trainer(sizes, weights, biases, dtype, batch_size, lr, threads):
    return _Trainer(sizes, weights, biases, dtype, batch_size, lr)
