"""How many threads BLAS may use while cbackprop trains.

Mini-batch training calls BLAS gemm once per layer and direction for every batch. OpenBLAS
splits a gemm over its threads once it has more than about 2^18 multiply-adds, which for the
small matrices of a small network costs more in synchronisation than it gains, and two
trainings running in two Python threads (a grid search with a threading backend, a
ThreadPoolExecutor) would each start their own BLAS threads on the same cores.

So while a training runs, BLAS keeps one thread if the network's largest gemm per batch is
small (below SMALL_GEMM multiply-adds) or if another training is running in this process;
the previous setting comes back when the last training ends. Large networks trained alone
keep BLAS's own threads (2 threads train the 784-512-512-10 network 1.6 times as fast as 1).
"""

import threading

try:
    from threadpoolctl import ThreadpoolController
except ImportError:    # pragma: no cover - threadpoolctl is a dependency; degrade quietly
    ThreadpoolController = None

# Below this many multiply-adds in the largest gemm of a batch, one BLAS thread is faster.
SMALL_GEMM = 4_000_000

_lock = threading.Lock()
_active = 0            # trainings running now
_limited = None        # threadpoolctl's restore handle while BLAS is held at one thread
_controller = None


def _blas():
    global _controller
    if _controller is None and ThreadpoolController is not None:
        _controller = ThreadpoolController().select(user_api="blas")
    return _controller


class training_threads:
    """Context manager around one train() call: one BLAS thread when that pays (see above)."""

    def __init__(self, sizes, rows_per_gemm):
        # rows_per_gemm = 1: online training, matrix-vector loops of our own, no BLAS at all
        self.uses_blas = rows_per_gemm > 1
        macs = max(rows_per_gemm * a * b for a, b in zip(sizes[:-1], sizes[1:]))
        self.small = macs < SMALL_GEMM

    def __enter__(self):
        global _active, _limited
        if not self.uses_blas:
            return self
        with _lock:
            _active += 1
            if (self.small or _active > 1) and _limited is None and _blas() is not None:
                _limited = _blas().limit(limits=1)
        return self

    def __exit__(self, *exc):
        global _active, _limited
        if not self.uses_blas:
            return False
        with _lock:
            _active -= 1
            if _active == 0 and _limited is not None:
                _limited.restore_original_limits()
                _limited = None
        return False
