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
    if _K is None:
        from contenders import _numba_kernels as k
        _K = (k.epoch_b1, k.epoch_mb, k.forward)
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
