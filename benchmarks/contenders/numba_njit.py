"""numba @njit loops, written the way a performance-minded user would.

Batch 1: one fused per-sample kernel over tuples of per-layer C-contiguous
(n_out, n_in) weight arrays and preallocated 1-D activation / delta buffers.
Forward: one dot product per unit over contiguous rows (fastmath=True lets
LLVM vectorise the reduction); backward, top layer first: a single pass over
each weight row both propagates delta (with the old W) and applies the SGD
update.  Every inner loop indexes with its range() variable only -- flat
offsets such as Wf[row + k] keep numba's negative-index wraparound in the
loop and turn it into gathers/scatters (that was 5-6x slower on M1).
error_model="numpy", boundscheck=False, cache=True.
Mini-batch and inference: np.dot inside njit (numba calls the BLAS that
SciPy ships), elementwise sigmoid / delta work fused in explicit loops.
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
        self.k = _kernels()
        dt = np.dtype(dtype)
        # one C-contiguous (n_out, n_in) array per layer, passed as tuples
        # (numba indexes a homogeneous tuple with a runtime layer number
        # without any container call or allocation)
        self.Ws = tuple(np.array(w, dtype=dt, order="C") for w in weights)
        self.bs = tuple(np.array(b, dtype=dt) for b in biases)
        self.Hs = tuple(np.zeros(n, dtype=dt) for n in sizes[1:])
        self.Ds = tuple(np.zeros(n, dtype=dt) for n in sizes[1:])
        self.lr = dt.type(lr)
        self.one = dt.type(1)  # keeps float32 kernels in float32
        self.batch_size = batch_size

    def epoch(self, X, Y):
        if self.batch_size == 1:
            self.k[0](self.Ws, self.bs, self.Hs, self.Ds, X, Y, self.lr, self.one)
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
