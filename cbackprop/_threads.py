"""How many threads BLAS may use while cbackprop trains.

Mini-batch training calls BLAS gemm once per layer and direction for every batch. OpenBLAS
splits a gemm over its threads once it has more than about 2^18 multiply-adds, which for the
small matrices of a small network costs more in synchronisation than it gains, and two
trainings running in two Python threads (a grid search with a threading backend, a
ThreadPoolExecutor) would each use BLAS's threads on the same cores.

So when a training's largest gemm per batch is small (below SMALL_GEMM multiply-adds), or
another training is running in this process, BLAS is set to one thread (threadpoolctl) and
left there: it is not raised again when the training ends. Measured on the 2-core machine
(2026-11-23): restoring two threads after each training, then training two networks in two
threads, made each training 50-100 times slower (0.1 s became 8-10 s), because OpenBLAS's
re-woken worker threads spin on the cores the trainings need; held at one thread, the two
trainings ran in 0.11 s together against 0.18 s one after the other. Large networks trained
alone, in a process that has not trained a small one, keep BLAS's own threads (two threads
train the 784-512-512-10 network 1.6 times as fast as one on a quiet machine), except that
plain SGD and momentum (TEAM_GEMM, which is SMALL_GEMM) run over a team of cbackprop's own
threads instead, each calling BLAS with one (see training_threads). Call
``threadpoolctl.threadpool_limits(n)`` to choose another count; cbackprop lowers it only.

Inference and the loss over many rows (``Network.forward``, ``Network.loss``) and the checks
of large inputs split the rows over ``num_threads()`` threads of cbackprop's own (the kernels
release the GIL); BLAS runs one thread while they do and gets its count back afterwards
(see over_rows).
"""

import os
import threading

try:
    from threadpoolctl import ThreadpoolController
except ImportError:    # pragma: no cover - threadpoolctl is a dependency; degrade quietly
    ThreadpoolController = None

# Below this many multiply-adds in the largest gemm of a batch, one BLAS thread is faster.
SMALL_GEMM = 4_000_000
# From this many in a hidden layer's gemm, a team of cbackprop's threads (training_threads)
# beats BLAS's own threads for plain SGD and momentum. Measured on the 2-core machines,
# processes alternating, samples/s of team against BLAS's 2 threads:
# - Zen 5 VM, 2026-11-24: 784-512-512-10 at batch 128 (51M in its first layer's gemm) 3%
#   faster in float32 with the cores 80 ns apart for a round trip, 4-15% (float32) and 6-10%
#   (float64) with them 400 ns apart; 784-128-10 at batch 64 (6.4M) 2-5% slower, when the
#   output layer was member 0's alone.
# - Zen 4 VM, 2026-11-24 (output layer split by its inputs): 784-128-10 at batch 64, float32,
#   with the cores 60-80 ns apart, 338-352k against 332-344k (faster in 8 of 10 pairs, 0.6%
#   and 1.6% slower in two), 340-380 ns apart, 232-234k against 195k (2 pairs); float64
#   139-192k against 108-186k (5 pairs); 512-128-10 at batch 64 (4.2M) 432-498k against
#   434-455k (5 pairs, one 0.5% slower); 256-256-256-10 at batch 64 (4.2M) faster in 6 of 6.
# So it takes every gemm that BLAS's threads would (SMALL_GEMM and up).
TEAM_GEMM = SMALL_GEMM

_lock = threading.Lock()
_active = 0            # trainings running now
_controller = None


def _blas():
    global _controller
    if _controller is None and ThreadpoolController is not None:
        _controller = ThreadpoolController().select(user_api="blas")
    return _controller


_holds = 0             # times a training has held BLAS at one thread for good (see above)
_splits = 0            # over_rows calls now running with BLAS lowered
_lowered = None        # threadpoolctl's record of the counts over_rows lowered, to restore
_holds_then = 0        # _holds when _lowered was taken


def _hold_one_thread():
    global _holds
    _holds += 1
    blas = _blas()
    if blas is not None and any(lib.num_threads > 1 for lib in blas.lib_controllers):
        blas.limit(limits=1)


def _lower_for_split():
    """One BLAS thread while over_rows runs its parts (each part calls BLAS itself)."""
    global _splits, _lowered, _holds_then
    with _lock:
        _splits += 1
        blas = _blas()
        if _splits == 1 and blas is not None and any(
                lib.num_threads > 1 for lib in blas.lib_controllers):
            _lowered = blas.limit(limits=1)
            _holds_then = _holds


def _restore_after_split():
    """Back to the counts before the first of the running over_rows calls, unless a training
    has meanwhile held BLAS at one thread."""
    global _splits, _lowered
    with _lock:
        _splits -= 1
        if _splits == 0 and _lowered is not None:
            if _holds == _holds_then:
                _lowered.restore_original_limits()
            _lowered = None


def blas_threads():
    """The most threads a BLAS library loaded in this process may run now (threadpoolctl,
    about a microsecond); the CPU count if threadpoolctl cannot tell. When this is 1,
    mini-batch training (src/_train.pyx epoch_of) and inference (src/_forward.pyx) take
    products by cbackprop's own single-threaded kernel where it is built."""
    blas = _blas()
    if blas is None or not blas.lib_controllers:
        return os.cpu_count() or 1
    return max(lib.num_threads for lib in blas.lib_controllers)


# A team's partial products take 2 * members * batch * widest layer (but the input) values (see
# src/_train.pyx train_by_team), allocated per call: members are capped to keep them under this.
TEAM_PARTIALS_BYTES = 256 << 20


def team_size(sizes, batch_size=1, blas=None):
    """Threads for a mini-batch team (src/_train.pyx train_by_team) on a network of these
    layer sizes: ``num_threads()``, but no more than the CPUs this process may run on, than
    ``blas`` (the BLAS threads it replaces, when given), than one per 16 units of its widest
    hidden layer (what a member owns at the least), than 64, or than keep its partial
    products (float64) under TEAM_PARTIALS_BYTES; 1 when it has no hidden layer."""
    hidden = sizes[1:-1]
    if not hidden:
        return 1
    blocks = max(-(-units // 16) for units in hidden)
    partials = TEAM_PARTIALS_BYTES // (2 * batch_size * max(sizes[1:]) * 8)
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:          # pragma: no cover - not on Linux
        cpus = os.cpu_count() or 1
    limits = [num_threads(), cpus, blocks, 64, partials]
    if blas is not None:
        limits.append(blas)
    return max(1, min(limits))


class training_threads:
    """Context manager around one train() call: one BLAS thread when that pays (see above).

    A large network's mini-batch plain SGD or momentum (``folds``; a hidden layer's gemm of
    TEAM_GEMM multiply-adds or more a batch) runs over a team of ``team`` threads of
    cbackprop's own, each calling BLAS with one thread (plain SGD's hidden layers: own_gemm,
    where built), when this is the only training running and BLAS and cbackprop may both run
    several threads (team_size): BLAS goes to one thread for the call and gets its count back
    afterwards, as in over_rows. If BLAS cannot be lowered (threadpoolctl lets only the
    thread that first changed OpenBLAS's count change it again), there is no team. ``team``
    is 1 otherwise.
    """

    def __init__(self, sizes, rows_per_gemm, folds=False):
        # rows_per_gemm = 1: online training, matrix-vector loops of our own, no BLAS at all
        self.uses_blas = rows_per_gemm > 1
        products = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
        self.small = self.uses_blas and rows_per_gemm * max(products) < SMALL_GEMM
        # (the hidden layers' products: a network whose only large product is its output
        # layer's, 784-64-784 at batch 512, ran slower on the team when member 0 had the
        # output layer alone; not measured since the team splits it by its inputs)
        self.wants_team = (self.uses_blas and folds and len(products) > 1
                           and rows_per_gemm * max(products[:-1]) >= TEAM_GEMM)
        self.sizes = sizes
        self.rows = rows_per_gemm
        self.team = 1

    def __enter__(self):
        global _active
        if not self.uses_blas:
            return self
        with _lock:
            _active += 1
            if self.small or _active > 1:
                _hold_one_thread()
            elif self.wants_team:
                self.team = team_size(self.sizes, self.rows, blas_threads())
        if self.team > 1:
            try:
                _lower_for_split()
            except BaseException:
                self.team = 1
                self.__exit__()
                raise
            if blas_threads() != 1:
                # another thread owns OpenBLAS's count: members would each run its threads
                _restore_after_split()
                self.team = 1
        return self

    def __exit__(self, *exc):
        global _active
        if self.team > 1:
            _restore_after_split()
        if self.uses_blas:
            with _lock:
                _active -= 1
        return False


# Rows below which a forward pass is not split over threads: the kernels' own block
# (src/_forward.pyx BLOCK); a thread handed fewer rows costs more to wake than it saves.
MIN_ROWS_PER_THREAD = 4096


def num_threads():
    """Threads cbackprop may run: ``CBACKPROP_NUM_THREADS``, else ``OMP_NUM_THREADS``, else
    the number of CPUs this process may run on."""
    for name in ("CBACKPROP_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) >= 1:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:          # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def over_rows(run, n_rows, min_rows=MIN_ROWS_PER_THREAD, uses_blas=False):
    """Call ``run(start, stop)`` on consecutive slices covering ``range(n_rows)``, in parallel
    when there are at least ``min_rows`` for each of several threads; returns the results in
    order, or raises the first part's exception once every part has ended.

    Slices start on multiples of ``min_rows`` (the kernels' block), so each row is computed
    in the same block as in one thread. Threads are started per call (a few tens of
    microseconds against the milliseconds of work that a split needs): no pool outlives a
    call, so nothing is shared between concurrent or nested calls or inherited by a fork.
    With ``uses_blas`` (the parts call BLAS), BLAS runs one thread while the parts run and
    gets its thread counts back afterwards: two parts each running two BLAS threads on two
    cores took D-inf from 10.3M to 6.0M rows/s. ``run`` must release the GIL for the threads
    to overlap (the compiled kernels and NumPy's ufunc loops do).
    """
    if n_rows < 2 * min_rows:        # (before num_threads, which reads the environment)
        return [run(0, n_rows)]
    parts = min(num_threads(), n_rows // min_rows)
    if parts <= 1:
        return [run(0, n_rows)]
    blocks = -(-n_rows // min_rows)
    bounds = [min(n_rows, blocks * k // parts * min_rows) for k in range(parts + 1)]
    results = [None] * parts
    errors = [None] * parts

    def part(k):
        try:
            results[k] = run(bounds[k], bounds[k + 1])
        except BaseException as exc:     # noqa: BLE001 - handed to the caller below
            errors[k] = exc

    threads = [threading.Thread(target=part, args=(k,), name=f"cbackprop-{k}", daemon=True)
               for k in range(1, parts)]
    if uses_blas:
        _lower_for_split()
    try:
        for t in threads:
            t.start()
        part(0)
        for t in threads:
            t.join()
    finally:
        if uses_blas:
            _restore_after_split()
    for exc in errors:
        if exc is not None:
            raise exc
    return results
