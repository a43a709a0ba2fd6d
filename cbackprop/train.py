"""The training loop: Python loops over epochs and short chunks of them; each chunk is one
call into compiled code with the GIL released.

Chunks last about ``CHUNK_SECONDS`` each, so Ctrl-C, progress and divergence checks are
seen within a fraction of a second even in an epoch of millions of samples, and every chunk
ends on a step boundary: the weights are never seen half-updated.
"""

import functools
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ._dispatch import (backward_kernels as _backward, forward_kernels as _forward,
                        train_kernels as _train)
from ._threads import blas_threads, training_threads
from ._config import all_finite, check_int, check_positive_finite, raise_not_finite_X
from .optimizers import SGD, Rprop, make_optimizer, make_schedule, _in_range

# How long one compiled call may run before Python looks at signals and progress again.
CHUNK_SECONDS = 0.1
# Score codes of the kernels (SCORE_ in src/_passes.pxd).
SCORE_NONE, SCORE_ARGMAX, SCORE_THRESHOLD = 0, 1, 2


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped :meth:`Network.train` between two steps.

    The network holds the weights and optimizer state after the last completed step.

    Attributes
    ----------
    history : History
        The epochs completed before the interruption.
    """

    def __init__(self, message, history):
        super().__init__(message)
        self.history = history


class TrainingDiverged(FloatingPointError):
    """The training loss became NaN or infinite.

    The network was restored to its state at the start of the epoch named in the message.

    Attributes
    ----------
    history : History
        The epochs completed before the one that diverged.
    epoch : int
        The epoch (1-based, counted within the call) that diverged.
    """

    def __init__(self, message, history, epoch):
        super().__init__(message)
        self.history = history
        self.epoch = epoch


@dataclass
class History:
    """What happened during :meth:`Network.train`, one entry per completed epoch.

    Attributes
    ----------
    loss : list of float
        Mean training loss of each epoch, each sample's loss taken before its step, plus
        the L2 penalty ``l2/2 ||W||^2`` at the epoch's start.
    val_loss : list of float
        Mean loss on the validation data after each epoch (empty without validation).
    accuracy, val_accuracy : list of float
        Fraction of samples classified correctly (classifiers only: softmax or sigmoid
        outputs with 0/1 targets), on the training data as it was seen during the epoch and
        on the validation data after it.
    lr : list of float
        The learning rate of each epoch (empty for Rprop, which has none).
    epoch_time : list of float
        Wall time of each epoch's training in seconds (validation not included).
    samples_per_second : list of float
        Training samples per second in each epoch.
    best_epoch : int or None
        With early stopping, the 1-based epoch whose weights the network holds at the end.
    stop_reason : str
        ``"completed"``, ``"early_stopping"`` or ``"callback"``.
    """

    loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    epoch_time: list = field(default_factory=list)
    samples_per_second: list = field(default_factory=list)
    best_epoch: int = None
    stop_reason: str = "completed"

    def __len__(self):
        return len(self.loss)

    def _columns(self):
        names = ["loss", "val_loss", "accuracy", "val_accuracy", "lr"]
        return [n for n in names if len(getattr(self, n)) == len(self)]

    def epoch_line(self, epoch, n_epochs=None):
        """One line describing epoch ``epoch`` (0-based index into the lists)."""
        total = f"/{n_epochs}" if n_epochs else ""
        parts = [f"epoch {epoch + 1}{total}"]
        for name in self._columns():
            value = getattr(self, name)[epoch]
            parts.append(f"{name} {value:.4g}" if name != "lr" else f"lr {value:.3g}")
        parts.append(f"{self.samples_per_second[epoch]:,.0f} samples/s")
        return "  ".join(parts)

    def __str__(self):
        lines = [self.epoch_line(e, len(self)) for e in range(len(self))]
        if self.best_epoch is not None:
            lines.append(f"best epoch: {self.best_epoch}")
        if self.stop_reason != "completed":
            lines.append(f"stopped: {self.stop_reason}")
        return "\n".join(lines)

    def plot(self, path=None, ax=None):
        """Draw the loss curves (and accuracy, on a second axis) with matplotlib.

        Parameters
        ----------
        path : str or path-like, optional
            Save the figure there (PNG, or any format matplotlib knows by the extension).
        ax : matplotlib Axes, optional
            Draw into it instead of a new figure.

        Returns
        -------
        matplotlib.figure.Figure

        Raises
        ------
        ImportError
            matplotlib is not installed (``pip install cbackprop[plot]``).
        """
        try:
            import matplotlib
            if ax is None and path is not None and "matplotlib.pyplot" not in sys.modules:
                matplotlib.use("Agg")        # drawing to a file needs no window
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ImportError("History.plot needs matplotlib: pip install "
                              "'cbackprop[plot]' (or pip install matplotlib)") from exc
        if ax is None:
            fig, ax = plt.subplots(figsize=(6, 4))
        else:
            fig = ax.figure
        epochs = np.arange(1, len(self) + 1)
        ax.plot(epochs, self.loss, label="training loss")
        if self.val_loss:
            ax.plot(epochs, self.val_loss, label="validation loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        if min(self.loss + self.val_loss, default=1) > 0:
            ax.set_yscale("log")
        handles, labels = ax.get_legend_handles_labels()
        if self.accuracy or self.val_accuracy:
            ax2 = ax.twinx()
            if self.accuracy:
                ax2.plot(epochs, self.accuracy, "--", color="C2", label="training accuracy")
            if self.val_accuracy:
                ax2.plot(epochs, self.val_accuracy, "--", color="C3",
                         label="validation accuracy")
            ax2.set_ylabel("accuracy")
            ax2.set_ylim(0, 1.02)
            h2, l2 = ax2.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
        if self.best_epoch is not None:
            ax.axvline(self.best_epoch, color="grey", lw=0.8, ls=":")
        ax.legend(handles, labels, loc="best")
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=100)
        return fig


def score_mode(net, Y):
    """How the kernels count correct outputs for targets Y, or SCORE_NONE for regressors.

    A classifier has a softmax or sigmoid output and targets of only 0 and 1: with one 1
    per row (and more than one output) the class is the largest output; otherwise (binary
    or multi-label sigmoid outputs) every output must be on the target's side of 1/2.
    """
    out = net.activations[-1]
    if out not in ("softmax", "sigmoid"):
        return SCORE_NONE
    kind = _forward.target_kind(Y)            # 0: not all 0/1, 1: one-hot rows, 2: other 0/1
    if kind == 0:
        return SCORE_NONE
    if kind == 1:                             # (only with more than one column)
        return SCORE_ARGMAX
    return SCORE_THRESHOLD if out == "sigmoid" else SCORE_NONE


def accuracy(net, X, Y, mode, sample_weight=None):
    """Fraction (weighted by ``sample_weight`` if given) of the rows of X that ``net``
    classifies as Y says (see score_mode)."""
    h = net.forward(X)
    if mode == SCORE_ARGMAX:
        right = h.argmax(axis=1) == Y.argmax(axis=1)
    else:
        right = ((h > 0.5) == (Y > 0.5)).all(axis=1)
    return float(np.average(right, weights=sample_weight))


class _Progress:
    """A progress bar over the samples of a run: tqdm when installed, else one stderr line.

    With ``show=None`` it appears only when stderr is a terminal and the run has lasted two
    seconds; ``show=True`` shows it from the start (on a terminal); False never.
    """

    def __init__(self, total, show):
        self.total, self.done, self.bar, self.last = total, 0, None, 0.0
        self.start = time.perf_counter()
        self.enabled = show is not False        # until stderr turns out not to be a terminal
        self.delay = 2.0 if show is None else 0.0

    def update(self, count):
        self.done += count
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.start < self.delay:
            return
        if self.bar is None and not _is_terminal(sys.stderr):
            self.enabled = False                # (asked once, and only for a long run)
            return
        if self.bar is None:
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=self.total, unit="sample", unit_scale=True,
                                file=sys.stderr, leave=False)
                self.bar.update(self.done)
                return
            except ImportError:
                self.bar = False
        if self.bar:
            self.bar.update(count)
        elif now - self.last > 0.2 or self.done == self.total:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            sys.stderr.write(f"\r{self.done:,}/{self.total:,} samples "
                             f"({100 * self.done / self.total:.0f}%) {rate:,.0f} samples/s")
            sys.stderr.flush()

    def close(self):
        if self.bar:
            self.bar.close()
        elif self.bar is False:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _is_terminal(stream):
    """Whether stream is a terminal; False for one that cannot say (closed, replaced): asked
    in the middle of training, where an exception would stop it."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class _Interrupts:
    """Turns Ctrl-C into a flag checked between compiled chunks (main thread only), so the
    loop stops on a step boundary with its bookkeeping complete."""

    def __init__(self):
        self.requested = False
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            previous = _signal.getsignal(_SIGINT)
            if previous is signal.default_int_handler:
                self.previous = previous
                _signal.signal(_SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        if self.previous is not None:
            _signal.signal(_SIGINT, self.previous)
        return False


# The C module under signal: signal.signal and getsignal convert their arguments and results
# to and from enums, by exceptions for a handler; at every train() call that cost 20 us
# after the process had been idle (2-8-1's epoch: 0.7 ms)
try:
    import _signal
except ImportError:            # pragma: no cover - not CPython
    _signal = signal
_SIGINT = int(signal.SIGINT)


def _check_sample_weight(sample_weight, n, dtype):
    arr = np.asarray(sample_weight)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must hold real numbers, got dtype {arr.dtype}")
    if arr.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},), one weight per sample, got "
                         f"{arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError("sample_weight must be finite and >= 0")
    return arr


def _validation(net, X, Y, weights, validation_data, split, rng):
    """(training X, Y, weights, validation X, Y) from train's validation arguments (split
    validated)."""
    if validation_data is not None:
        if split:
            raise ValueError("pass validation_data or validation_split, not both")
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise TypeError("validation_data must be a pair (X_val, Y_val)")
        Xv, Yv = validation_data
        Xv, Yv = net._check_data(Xv, Yv)
        return X, Y, weights, Xv, Yv
    if not split:
        return X, Y, weights, None, None
    n = X.shape[0]
    n_val = int(math.ceil(split * n))
    if n_val >= n:
        raise ValueError(f"validation_split={split} leaves no training samples "
                         f"out of {n}")
    # a random subset (from the network's generator, or seed), kept in the data's order
    held = np.zeros(n, dtype=bool)
    held[rng.permutation(n)[:n_val]] = True
    keep = ~held
    w = None if weights is None else np.ascontiguousarray(weights[keep])
    return (np.ascontiguousarray(X[keep]), np.ascontiguousarray(Y[keep]), w,
            np.ascontiguousarray(X[held]), np.ascontiguousarray(Y[held]))


def _l2_penalty(net, l2):
    """l2/2 * sum of every squared weight (biases are not penalised)."""
    if not l2:
        return 0.0
    return 0.5 * l2 * sum(float(np.dot(w.ravel(), w.ravel())) for w in net._weight_views)


def _snapshot(net):
    return (net._params.copy(), net._state.copy(), net._optimizer_name, net._steps,
            net._epochs, dict(net._schedule_state))


def _restore(net, snap):
    params, state, name, steps, epochs, schedule = snap
    net._params[...] = params
    net._state[...] = state
    net._optimizer_name, net._steps, net._epochs = name, steps, epochs
    net._schedule_state = dict(schedule)


def train(net, X, Y, epochs=1, lr=None, batch_size=None, momentum=0.0, shuffle=True,
          seed=None, *, optimizer="sgd", nesterov=False, l2=0.0, lr_schedule="constant",
          sample_weight=None, validation_data=None, validation_split=0.0,
          early_stopping=False, patience=10, min_delta=0.0, callbacks=(), verbose=None):
    """Train ``net`` on (X, Y) by backpropagation.

    Each step moves every parameter by its optimizer's rule from the mean gradient ``g`` of
    its batch (plus ``l2 * W`` for weights). Plain SGD is ``W = W - lr * g``; with momentum
    ``v = momentum * v - lr * g; W = W + v``. ``batch_size=1`` is online training
    (matrix-vector kernels, one weight row read once per sample for both delta propagation
    and update); larger batches use BLAS gemm; Rprop uses the whole data set per step.

    The optimizer's state (velocities, moments, step sizes, step and epoch counts) stays in
    the network: calling ``train`` again continues exactly where the last call stopped, as
    long as the optimizer is the same kind; another kind starts afresh.

    Parameters
    ----------
    net : Network
    X : array-like of shape (n, n_in)
    Y : array-like of shape (n, n_out), or (n,) integer labels (n_out > 1) or targets (n_out == 1)
    epochs : int, default=1
        Passes over the data (0 trains nothing).
    lr : float, optional
        Learning rate, finite and > 0: the base of ``lr_schedule``. Default 0.1 for SGD and
        0.001 for Adam/AdamW; Rprop takes none.
    batch_size : int, optional
        Samples per step, >= 1 (default 1; the last batch of an epoch may be smaller).
        Rprop always uses the whole data set.
    momentum : float, default=0.0
        SGD's momentum, in [0, 1). 0 also clears the stored velocities.
    shuffle : bool, default=True
        Visit the samples in a new random order each epoch.
    seed : int or None, default=None
        Seeds shuffling and ``validation_split``; None uses the network's own generator.
    optimizer : {"sgd", "adam", "adamw", "rprop"} or optimizer object, default="sgd"
        ``cbackprop.SGD(momentum, nesterov)``, ``cbackprop.Adam(beta1, beta2, eps)``,
        ``cbackprop.AdamW(..., weight_decay)``, ``cbackprop.Rprop(increase, decrease,
        delta_min, delta_max, delta_zero)``; a name uses the defaults.
    nesterov : bool, default=False
        Nesterov momentum for ``optimizer="sgd"`` (needs ``momentum > 0``).
    l2 : float, default=0.0
        L2 penalty: ``l2/2 * ||W||^2`` summed over all weights (not biases) joins the loss,
        ``l2 * W`` its gradient.
    lr_schedule : str, schedule object or callable, default="constant"
        ``"constant"``, ``"step"`` (:class:`~cbackprop.StepDecay`), ``"inverse_scaling"``
        (:class:`~cbackprop.InverseScaling`), ``"plateau"`` (:class:`~cbackprop.ReduceOnPlateau`),
        an object of those classes, or a function ``epoch -> lr`` (epoch from 0, counted
        since the optimizer state began, so a resumed run continues its schedule).
    sample_weight : array-like of shape (n,), optional
        Non-negative weights: sample s contributes ``weight_s * J_s`` to the loss and its
        gradient (a batch's step follows the mean of its weighted gradients).
    validation_data : pair (X_val, Y_val), optional
        Scored after every epoch (loss, and accuracy for classifiers).
    validation_split : float, default=0.0
        In [0, 1): hold out this fraction of (X, Y), chosen at random, as validation data.
    early_stopping : bool, default=False
        Stop when the monitored loss (validation loss if there is validation data, else
        training loss) has not improved by more than ``min_delta`` for ``patience`` epochs,
        and restore the network (weights and optimizer state) of the best epoch.
    patience : int, default=10
    min_delta : float, default=0.0
    callbacks : sequence of callables, default=()
        Each is called as ``callback(epoch, history)`` after every epoch (``epoch`` 1-based);
        one that returns True stops training.
    verbose : bool or None, default=None
        True prints a line per epoch on stderr; None shows only a progress bar, and only for
        runs longer than two seconds on a terminal; False prints nothing.

    Returns
    -------
    History

    Raises
    ------
    ValueError, TypeError
        Invalid data or settings, before anything changes.
    TrainingDiverged (a FloatingPointError)
        The loss became NaN or infinite; the network is restored to its state at the start
        of that epoch. Its ``history`` holds the epochs before.
    TrainingInterrupted (a KeyboardInterrupt)
        Ctrl-C. Training stops within about ``CHUNK_SECONDS`` after the last completed
        step; the network keeps every completed step. Its ``history`` holds the completed
        epochs.
    """
    # -- everything is validated before anything changes ----------------------------------
    dtype = net.dtype
    settings = (epochs, lr, batch_size, momentum, shuffle, seed, optimizer, nesterov, l2,
                lr_schedule, early_stopping, patience, min_delta, verbose, validation_split)
    check = _check_plain_settings if _PLAIN.issuperset(map(type, settings)) else _check_settings
    (epochs, opt, rprop, base_lr, batch_size, l2, schedule, patience, min_delta, seed,
     validation_split) = check(dtype, *settings)
    if callable(callbacks):
        callbacks = [callbacks]
    callbacks = list(callbacks)
    for cb in callbacks:
        if not callable(cb):
            raise TypeError(f"callbacks must be callables (epoch, history), got {cb!r}")
    given_X = X
    X, Y = net._check_data(X, Y, finite_X=False)
    # SGD and Adam check rows of X as they read them (src/_train.pyx train_epoch), all of
    # them in the first epoch; Rprop (and a held-out split, scored by loss(), and a call of
    # no epochs) reads X checked here
    if rprop or not epochs or validation_split:
        if not all_finite(X):
            raise_not_finite_X(given_X, net.n_inputs, dtype)
        given_X = None
    weights = None
    if sample_weight is not None:
        weights = _check_sample_weight(sample_weight, X.shape[0], dtype)
    net._check_params_finite()
    rng = net._rng if seed is None else np.random.default_rng(seed)
    Xv = Yv = None
    if validation_data is not None or validation_split:
        X, Y, weights, Xv, Yv = _validation(net, X, Y, weights, validation_data,
                                            validation_split, rng)

    # one train() at a time per network: two would interleave their steps in one buffer
    lock = net.__dict__.get("_training") or net.__dict__.setdefault("_training",
                                                                    threading.Lock())
    if not lock.acquire(blocking=False):
        raise RuntimeError("this network is already training (in another thread); train a "
                           "copy (copy.deepcopy(net)) to train in parallel")
    # samples per step of SGD/Adam: the batch, or for online plain SGD the run of samples a
    # kernel treats as one: a wide first layer's window, in which W^(1) is updated through
    # gemm (src/_train.pyx online_window), or a small network's run (online_small). Compiled
    # calls come in whole steps, so that a run repeats bit for bit however it is cut into
    # calls. rows: the rows of each BLAS gemm (Rprop's: its gradient blocks,
    # src/_backward.pyx BLOCK), 1 where there is no gemm
    try:
        step = None if rprop else min(batch_size, X.shape[0])
        rows = min(X.shape[0], 256) if rprop else step
        if step == 1:
            step, rows = _online_run(net, opt, l2)
        # plain SGD and momentum fold the step into the gemms, which a team of threads can
        # split by units (src/_train.pyx train_by_team)
        folds = isinstance(opt, SGD) and not opt.nesterov and not l2
        with training_threads(net._sizes, rows, folds) as threads:
            return _train_validated(net, X, Y, weights, Xv, Yv, rng, opt, rprop, base_lr,
                                    batch_size, step, epochs, l2, schedule, lr_schedule,
                                    shuffle, early_stopping, patience, min_delta, callbacks,
                                    verbose, given_X, threads.team)
    finally:
        lock.release()


def _check_settings(dtype, epochs, lr, batch_size, momentum, shuffle, seed, optimizer,
                    nesterov, l2, lr_schedule, early_stopping, patience, min_delta, verbose,
                    validation_split):
    """train()'s settings, validated for a network of dtype: (epochs, optimizer object,
    whether it is Rprop, base lr, batch size, l2, schedule object, patience, min_delta,
    seed, validation_split). Raises ValueError or TypeError naming the bad setting."""
    epochs = check_int(epochs, "epochs", 0)
    opt = make_optimizer(optimizer, momentum, nesterov, dtype)
    rprop = isinstance(opt, Rprop)
    if rprop:
        if lr is not None:
            raise ValueError("Rprop has no learning rate: its steps adapt by sign "
                             "(set Rprop(delta_zero=..., delta_max=...) instead)")
        if batch_size is not None:
            raise ValueError("Rprop trains on the whole data set per step; leave batch_size "
                             "unset")
        base_lr = None
    else:
        base_lr = check_positive_finite(opt.default_lr if lr is None else lr, "lr", dtype)
        batch_size = 1 if batch_size is None else check_int(batch_size, "batch_size", 1)
    l2 = _in_range(l2, "l2", 0, math.inf, dtype=dtype)
    schedule = make_schedule(lr_schedule)
    if rprop and not (isinstance(lr_schedule, str) and lr_schedule == "constant"):
        raise ValueError("Rprop has no learning rate to schedule")
    for name, flag in (("shuffle", shuffle), ("early_stopping", early_stopping)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    if verbose is not None and not isinstance(verbose, (bool, np.bool_, int)):
        raise TypeError(f"verbose must be True, False or None, got {verbose!r}")
    patience = check_int(patience, "patience", 0)
    min_delta = _in_range(min_delta, "min_delta", 0, math.inf)
    if seed is not None:
        seed = check_int(seed, "seed", 0)
    validation_split = _in_range(validation_split, "validation_split", 0, 1)
    return (epochs, opt, rprop, base_lr, batch_size, l2, schedule, patience, min_delta, seed,
            validation_split)


# Settings of these types cannot change after the call, so their validation is kept for the
# next call with equal settings of the same types (typed: momentum=False is refused even
# after momentum=0 was accepted). The optimizer and schedule objects made for them hold no
# training state (that lives in the network) and are shared by those calls. Other settings
# (optimizer or schedule objects, NumPy scalars) are validated every time.
_PLAIN = frozenset((bool, int, float, str, type(None)))
_check_plain_settings = functools.lru_cache(maxsize=64, typed=True)(_check_settings)


def _online_run(net, opt, l2):
    """(samples per run, rows per gemm) of online training of net with opt and l2 (see
    src/_train.pyx online_run)."""
    hyper = opt.hyper(1.0, l2)                          # (lr plays no part)
    return _kept(net, ("online_run", hyper.tobytes()), _train.online_run, net._spec, hyper)


def _kept(net, key, compute, *args):
    """compute(*args), a fact about net's kernels that its shape decides, kept on the network
    for its next train() call under key (which must say everything else it depends on).
    Each compiled call costs 20 us after an idle spell: a tenth of 2-8-1's Python."""
    kept = net.__dict__.get("_kept")
    if kept is None:
        kept = net.__dict__.setdefault("_kept", {})
    value = kept.get(key)
    if value is None:
        if len(kept) > 64:
            kept.clear()
        value = kept[key] = compute(*args)
    return value


_SEQUENTIAL = [np.arange(0, dtype=np.intp)]


def _sequential(n):
    """0, 1, ..., n - 1 as a read-only intp array (the last one is kept)."""
    order = _SEQUENTIAL[0]
    if order.shape[0] != n:
        order = np.arange(n, dtype=np.intp)
        order.flags.writeable = False
        _SEQUENTIAL[0] = order
    return order


def _train_validated(net, X, Y, weights, Xv, Yv, rng, opt, rprop, base_lr, batch_size,
                     step, epochs, l2, schedule, lr_schedule, shuffle, early_stopping, patience,
                     min_delta, callbacks, verbose, given_X, team):
    """train() after validation, holding the network's training lock. given_X: train()'s X
    when the kernels check it for NaN and infinity as they read it, else None. team: threads
    for the kernels' mini-batch team (_threads.training_threads), 1 for none."""
    dtype = net.dtype
    n = X.shape[0]
    batch_size = n if rprop else min(batch_size, n)   # a batch larger than the data is all
    mode = score_mode(net, Y)
    # the call's start, to return to if a later epoch's lr turns out bad (only a schedule can
    # change it: lr_schedule="constant", whose object no one else holds, keeps the lr checked
    # below once and for all) or the kernels find NaN or infinity in X
    at_call = None if (isinstance(lr_schedule, str) and lr_schedule == "constant"
                       and given_X is None) else _snapshot(net)
    # the network's generator, if this call can draw from it (see the late lr error below)
    rng_at_call = (net._rng.bit_generator.state
                   if at_call is not None and shuffle and rng is net._rng else None)
    fresh = net._optimizer_name != opt.name
    hyper = hyper_lr = None                # the kernels' settings, and the lr they hold
    if epochs and not rprop:
        # the first epoch's lr, checked before the network changes (later ones as they come)
        state = dict(schedule.initial_state(), **({} if fresh else net._schedule_state))
        hyper_lr = schedule.lr(base_lr, 0 if fresh else net._epochs, state)
        if not (type(hyper_lr) is float and hyper_lr == base_lr):
            # (base_lr was checked with the settings: checking it again cost 16 us a call)
            hyper_lr = check_positive_finite(hyper_lr, "the scheduled lr", dtype)
        hyper = opt.hyper(hyper_lr, l2)
    # -- the optimizer's state: continued if it is this optimizer's, else started afresh --
    if fresh:
        net.reset_optimizer()
        opt.initial_state(net._state)
        net._optimizer_name = opt.name
    if opt.kind == "sgd" and opt.momentum == 0:
        net._state[0].fill(0)              # momentum 0: no velocity carries over
    for key, value in schedule.initial_state().items():
        net._schedule_state.setdefault(key, value)

    history = History()
    sequential_order = _sequential(n)
    no_weights = np.empty(0, dtype)
    w_arg = no_weights if weights is None else weights
    if not rprop:
        work = np.empty(_kept(net, ("workspace", batch_size, n, not shuffle),
                              _train.workspace_size, net._spec, batch_size, n, not shuffle),
                        dtype)
    else:
        grad = np.empty_like(net._params)
    progress = _Progress(epochs * n, None if verbose is None else bool(verbose))
    best = (math.inf, None, None)          # (monitored loss, epoch, snapshot)
    wait = 0
    chunk = _first_chunk(net, 1 if rprop else step)            # samples in the first call
    # mini-batches' first layer by cbackprop's own gemm rather than BLAS's, when BLAS runs
    # one thread (src/_train.pyx epoch_of)
    blas_one_thread = (not rprop and batch_size > 1 and _train.OWN_GEMM
                       and blas_threads() == 1)

    def undo_call():
        """Back to the call's start: a later epoch's lr is bad, or X is not finite."""
        _restore(net, at_call)
        if rng_at_call is not None:
            net._rng.bit_generator.state = rng_at_call
        progress.close()

    def refuse_x():
        """X, found not finite by the kernels (or below)."""
        undo_call()
        raise_not_finite_X(given_X, net.n_inputs, dtype)

    def diverged(epoch, value, snap):
        if given_X is not None and not all_finite(X):
            refuse_x()          # (the rows the kernels had not read yet: X, not the lr)
        _restore(net, snap)
        progress.close()
        raise TrainingDiverged(
            f"training diverged in epoch {epoch + 1}: the loss became {value}; the network "
            f"was restored to its state before that epoch (try a smaller lr)", history,
            epoch + 1)

    with _Interrupts() as interrupts:
        for epoch in range(epochs):
            epoch_lr = None
            if not rprop:
                try:
                    epoch_lr = schedule.lr(base_lr, net._epochs, net._schedule_state)
                    if epoch_lr == hyper_lr:       # (most schedules keep it for many epochs)
                        epoch_lr = hyper_lr
                    else:
                        epoch_lr = check_positive_finite(epoch_lr, "the scheduled lr", dtype)
                        hyper, hyper_lr = opt.hyper(epoch_lr, l2), epoch_lr
                except (ValueError, TypeError) as exc:
                    # a bad setting found late still changes nothing: back to the call's start
                    undo_call()
                    raise type(exc)(f"{exc} (epoch {epoch + 1}); the network was restored to "
                                    f"its state before this call") from exc
            snap = _snapshot(net)
            penalty = _l2_penalty(net, l2)
            order = sequential_order
            if shuffle and not rprop:           # a full-batch gradient needs no order
                order = rng.permutation(n).astype(np.intp)
            total, correct, seconds, start = 0.0, 0, 0.0, 0
            if rprop:
                while start < n and not interrupts.requested:
                    stop = min(start + max(chunk, 1), n)
                    t0 = time.perf_counter()
                    total += _backward.gradients(
                        net._spec, net._params, X[start:stop], Y[start:stop], grad,
                        None if weights is None else weights[start:stop], 1.0 / n, start > 0)
                    dt = time.perf_counter() - t0
                    seconds += dt
                    chunk = _next_chunk(chunk, stop - start, dt, 1)
                    progress.update(stop - start)
                    start = stop
                if interrupts.requested:
                    break
                if not (math.isfinite(total) and all_finite(grad)):
                    diverged(epoch, total / n, snap)
                if mode != SCORE_NONE:
                    correct = round(accuracy(net, X, Y, mode) * n)
                t0 = time.perf_counter()
                _train.apply_step(net._spec, net._params, net._state, grad,
                                  opt.hyper(0.0, l2), net._steps + 1)
                seconds += time.perf_counter() - t0
                net._steps += 1
            else:
                while start < n:
                    stop = min(start + chunk, n)
                    t0 = time.perf_counter()
                    part, right, rows_finite = _train.train_epoch(
                        net._spec, net._params, net._state, X, Y, w_arg, order[start:stop],
                        not shuffle, batch_size, hyper, net._steps, mode, work,
                        blas_one_thread, team)
                    dt = time.perf_counter() - t0
                    if not rows_finite:
                        refuse_x()
                    seconds += dt
                    net._steps += -(-(stop - start) // batch_size)
                    total += part
                    correct += right
                    progress.update(stop - start)
                    if not math.isfinite(part):
                        diverged(epoch, total / n, snap)
                    if chunk < n:
                        chunk = _next_chunk(chunk, stop - start, dt, step)
                    start = stop
                    if interrupts.requested:
                        break
                if interrupts.requested:
                    break
            mean_loss = total / n + penalty
            if not (math.isfinite(mean_loss) and all_finite(net._params)):
                diverged(epoch, mean_loss, snap)
            monitored, val_accuracy = mean_loss, None
            if Xv is not None:
                try:
                    monitored = net.loss(Xv, Yv)
                    if mode != SCORE_NONE:
                        val_accuracy = accuracy(net, Xv, Yv, mode)
                except FloatingPointError:           # finite weights, overflowing outputs
                    diverged(epoch, "infinite on the validation data", snap)
            net._epochs += 1
            history.loss.append(mean_loss)
            if mode != SCORE_NONE:
                history.accuracy.append(correct / n)
            if epoch_lr is not None:
                history.lr.append(epoch_lr)
            history.epoch_time.append(seconds)
            history.samples_per_second.append(n / seconds if seconds > 0 else math.inf)
            if Xv is not None:
                history.val_loss.append(monitored)
                if val_accuracy is not None:
                    history.val_accuracy.append(val_accuracy)
            schedule.observe(net._schedule_state, monitored)
            if verbose:
                progress_line = history.epoch_line(epoch, epochs)
                sys.stderr.write(("\r\033[K" if progress.bar is False else "") +
                                 progress_line + "\n")
            if early_stopping:
                if monitored < best[0] - min_delta:
                    best, wait = (monitored, epoch + 1, _snapshot(net)), 0
                else:
                    wait += 1
            stop_now = False
            for cb in callbacks:
                answer = cb(epoch + 1, history)
                if isinstance(answer, (bool, np.bool_)) and answer:
                    history.stop_reason, stop_now = "callback", True
            # patience p: stop at the p-th epoch in a row without improvement (p = 0: the first)
            if early_stopping and wait >= max(patience, 1) and not stop_now:
                history.stop_reason, stop_now = "early_stopping", True
            if stop_now or interrupts.requested:
                break
    progress.close()
    if interrupts.requested:
        raise TrainingInterrupted(
            f"training interrupted after {len(history)} complete epochs; the network keeps "
            f"every completed step", history)
    if early_stopping and best[1] is not None:
        history.best_epoch = best[1]
        if best[1] != len(history):
            _restore(net, best[2])
    return history


# Multiply-adds per second that the kernels beat on any machine, in the units of
# _first_chunk (three per parameter and SAMPLE_OVERHEAD_MACS per sample): what sizes the first
# compiled call of a train(), before there is a measured speed. Measured here (2026-11-24):
# 2-8-1 online trains 10M samples/s through train(), 2e9 in these units, and 784-128-10 online
# 280k samples/s, 9e10; the margin covers the baseline kernels and slower machines.
SAFE_MACS_PER_SECOND = 1e8
# Multiply-adds charged per sample on top of the three per parameter (forward, backward,
# update): the fixed cost of a sample in a tiny network.
SAMPLE_OVERHEAD_MACS = 100


def _first_chunk(net, step):
    """Samples (rows, for Rprop's gradient) in the first compiled call: about CHUNK_SECONDS
    at SAFE_MACS_PER_SECOND, whole steps. A tiny network's epoch is then one call instead of
    eight growing ones (each call costs a few microseconds of Python, more after the process
    has slept); later calls follow the measured speed (_next_chunk)."""
    per_sample = 3 * net._params.size + SAMPLE_OVERHEAD_MACS
    samples = int(CHUNK_SECONDS * SAFE_MACS_PER_SECOND / per_sample)
    return max(step, samples // step * step)


def _next_chunk(chunk, done, seconds, batch_size):
    """Samples for the next compiled call: about CHUNK_SECONDS of work, whole batches,
    growing at most 4-fold per call so one fast measurement cannot overshoot."""
    if seconds <= 0:
        target = chunk * 4
    else:
        target = min(chunk * 4, done / seconds * CHUNK_SECONDS)
    return max(batch_size, int(target) // batch_size * batch_size)
