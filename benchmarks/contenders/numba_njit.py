"""numba @njit loops, written the way a performance-minded user would.

Batch 1: one fused per-sample kernel over a single flat parameter vector --
forward as row dot products, then for each layer from the top a single pass
over W that both propagates delta (with the old W) and applies the SGD
update; preallocated buffers, no allocation or container access per sample.
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

    _K = (epoch_b1, epoch_mb, forward)
    return _K


class _Trainer:
    def __init__(self, sizes, weights, biases, dtype, batch_size, lr):
        import numpy as np
        from numba.typed import List
        self.np = np
        self.k = _kernels()
        dt = np.dtype(dtype)
        nw = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.woff = np.concatenate([[0], np.cumsum(nw)[:-1]]).astype(np.int64)
        self.boff = np.concatenate([[0], np.cumsum(sizes[1:])[:-1]]).astype(np.int64)
        self.Wf = np.concatenate([np.asarray(w, dtype=dt).ravel() for w in weights])
        self.bf = np.concatenate([np.asarray(b, dtype=dt) for b in biases])
        self.H = np.zeros_like(self.bf)
        self.D = np.zeros_like(self.bf)
        # per-layer views of the same memory, for the mini-batch / forward kernels
        self.Ws = List([self.Wf[o:o + n].reshape(b, a) for o, n, a, b in
                        zip(self.woff, nw, sizes[:-1], sizes[1:])])
        self.bs = List([self.bf[o:o + n] for o, n in zip(self.boff, sizes[1:])])
        self.lr = dt.type(lr)
        self.one = dt.type(1)  # keeps float32 kernels in float32
        self.batch_size = batch_size

    def epoch(self, X, Y):
        if self.batch_size == 1:
            self.k[0](self.Wf, self.bf, self.sizes, self.woff, self.boff, self.H, self.D,
                      X, Y, self.lr, self.one)
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
