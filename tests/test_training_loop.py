"""The training loop around the kernels (cbackprop/train.py): validation, accuracy, early
stopping, divergence, Ctrl-C, callbacks, verbose output, learning-rate schedules, History
and bad settings.

The optimizers' update rules are compared with the reference elsewhere; here each expected
value comes from the public API (forward, loss, get_params, optimizer_state, a replay with
plain SGD) or from numbers worked out in the test.
"""

import _thread
import copy
import itertools
import math
import signal
import sys
import threading
import time

import numpy as np
import pytest

import cbackprop
from cbackprop._dispatch import forward_kernels
from cbackprop.train import SCORE_ARGMAX, SCORE_THRESHOLD, accuracy
from conftest import ONLINE_PATHS


def snapshot(net):
    return {"params": net.get_params(), "optimizer_state": net.optimizer_state}


def assert_same_state(net, before):
    """net's parameters and optimizer state are bit-identical to ``snapshot`` ``before``."""
    np.testing.assert_array_equal(net.get_params(), before["params"])
    state = net.optimizer_state
    assert state.keys() == before["optimizer_state"].keys()
    for key, value in before["optimizer_state"].items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(state[key], value, err_msg=key)
        else:
            assert state[key] == value, key


class Recorder:
    """A callback keeping (epoch, len(history)), a snapshot and ``probe(net)`` per epoch."""

    def __init__(self, net, probe=None):
        self.net, self.probe = net, probe
        self.calls, self.after, self.probed = [], [], []

    def __call__(self, epoch, history):
        self.calls.append((epoch, len(history)))
        self.after.append(snapshot(self.net))
        if self.probe is not None:
            self.probed.append(self.probe(self.net))


def regression_data(n, n_in=3, n_out=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, n_in)), rng.uniform(0.05, 0.95, (n, n_out))


# -- 1. validation ---------------------------------------------------------------------------

def test_validation_data_is_scored_after_every_epoch(dtype):
    X, Y = regression_data(40, seed=1)
    Xv, Yv = regression_data(15, seed=2)
    net = cbackprop.Network([3, 5, 2], "sigmoid", dtype=dtype, seed=0)
    recorder = Recorder(net, probe=lambda n: n.loss(Xv, Yv))
    history = net.train(X, Y, epochs=4, lr=0.5, validation_data=(Xv, Yv),
                        callbacks=[recorder])
    assert len(history.val_loss) == len(history.loss) == 4
    assert history.val_loss[-1] == net.loss(Xv, Yv)
    # every epoch's value is the loss of that epoch's weights (which do change)
    assert history.val_loss == recorder.probed
    assert len(set(history.val_loss)) == 4


def test_validation_split_holds_out_a_random_quarter_rounded_up():
    # n = 10, split 0.25: ceil(2.5) = 3 rows held out, the other 7 trained on.
    X, Y = regression_data(10, seed=3)
    held_out = []
    for seed in range(3):
        net = cbackprop.Network([3, 4, 2], "sigmoid", seed=0)
        start = copy.deepcopy(net)
        history = net.train(X, Y, epochs=2, lr=1e-12, validation_split=0.25, seed=seed)
        assert len(history.loss) == len(history.val_loss) == 2
        # the validation loss is the loss of exactly one subset of the rows (in data order)
        matches = [rows for size in (2, 3, 4) for rows in itertools.combinations(range(10), size)
                   if net.loss(X[list(rows)], Y[list(rows)]) == history.val_loss[-1]]
        assert len(matches) == 1 and len(matches[0]) == 3
        # and training saw the other 7 rows (lr 1e-12: each loss as before training)
        keep = [s for s in range(10) if s not in matches[0]]
        assert history.loss[0] == pytest.approx(start.loss(X[keep], Y[keep]), rel=1e-9)
        held_out.append(matches[0])
    assert len(set(held_out)) > 1             # chosen at random, not the last rows


# -- 2. accuracy -----------------------------------------------------------------------------

def hand_accuracy(out, Y, kind):
    """Fraction correct: the largest output is the target's 1, or every output is on its
    target's side of 1/2."""
    if kind == "argmax":
        return float(np.mean(out.argmax(axis=1) == Y.argmax(axis=1)))
    return float(np.mean(((out > 0.5) == (Y == 1)).all(axis=1)))


# name: (sizes, activations, loss, scoring)
CLASSIFIERS = {
    "softmax-ce-labels": ([4, 6, 3], ["tanh", "softmax"], "cross_entropy", "argmax"),
    "sigmoid-binary": ([4, 6, 1], "sigmoid", "cross_entropy", "threshold"),
    "sigmoid-mse-onehot": ([4, 6, 3], "sigmoid", "mse", "argmax"),
    "sigmoid-multilabel": ([4, 6, 3], "sigmoid", "mse", "threshold"),
}
MODES = {"argmax": SCORE_ARGMAX, "threshold": SCORE_THRESHOLD}


def classifier_case(name, dtype, n=60, seed=2):
    """(net, X, Y as passed to train, Y as an (n, n_out) 0/1 array, scoring)."""
    sizes, acts, loss, kind = CLASSIFIERS[name]
    net = cbackprop.Network(sizes, acts, loss, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed + 10)
    X = rng.uniform(-1, 1, (n, sizes[0]))
    if name == "softmax-ce-labels":
        Y = rng.integers(0, 3, n)                       # integer labels
        Y01 = np.eye(3)[Y]
    elif name == "sigmoid-binary":
        Y = (rng.uniform(size=n) > 0.5).astype(float)   # (n,) 0/1 targets, one output
        Y01 = Y[:, None]
    elif name == "sigmoid-mse-onehot":
        Y = Y01 = np.eye(3)[rng.integers(0, 3, n)]
    else:
        Y = Y01 = (rng.uniform(size=(n, 3)) > 0.5).astype(float)
        assert (Y.sum(axis=1) > 1).any()               # really multi-label
    return net, X, Y, Y01, kind


@pytest.mark.parametrize("batch_size", [1, 5])
@pytest.mark.parametrize("name", CLASSIFIERS)
def test_training_accuracy_with_a_tiny_lr_is_the_accuracy_before_training(name, batch_size,
                                                                          dtype):
    net, X, Y, Y01, kind = classifier_case(name, dtype)
    before = hand_accuracy(net.forward(X), Y01, kind)
    assert 0 < before < 1
    other = hand_accuracy(net.forward(X), Y01, "threshold" if kind == "argmax" else "argmax")
    assert other != before                     # so the scoring rule is what is tested
    assert accuracy(net, X, Y01, MODES[kind]) == before
    history = net.train(X, Y, epochs=2, lr=1e-12, batch_size=batch_size)
    assert history.accuracy == [before, before]
    assert history.val_accuracy == []


def test_training_accuracy_is_counted_before_each_step(dtype):
    # With lr 1: the accuracy of the weights before the epoch, after it and step by step
    # all differ; history.accuracy is the step-by-step count.
    net, X, y, Y01, kind = classifier_case("softmax-ce-labels", dtype, n=30, seed=2)
    stepper = copy.deepcopy(net)
    before = hand_accuracy(net.forward(X), Y01, kind)
    history = net.train(X, y, epochs=1, lr=1.0, shuffle=False)
    after = hand_accuracy(net.forward(X), Y01, kind)
    correct = 0
    for s in range(30):
        correct += int(stepper.forward(X[s]).argmax() == y[s])
        stepper.train(X[s:s + 1], y[s:s + 1], epochs=1, lr=1.0, shuffle=False)
    np.testing.assert_array_equal(stepper.get_params(), net.get_params())
    during = correct / 30
    assert len({before, after, during}) == 3
    assert history.accuracy == [during]


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_validation_accuracy_is_scored_after_each_epoch(name, dtype):
    net, X, Y, Y01, kind = classifier_case(name, dtype, n=80)
    Xv, Yv = X[60:], Y[60:]
    recorder = Recorder(net, probe=lambda n: hand_accuracy(n.forward(Xv), Y01[60:], kind))
    history = net.train(X[:60], Y[:60], epochs=3, lr=0.5, validation_data=(Xv, Yv),
                        callbacks=[recorder])
    assert len(history.accuracy) == len(history.val_accuracy) == 3
    assert history.val_accuracy == recorder.probed
    assert history.val_accuracy[-1] == hand_accuracy(net.forward(Xv), Y01[60:], kind)


@pytest.mark.parametrize("case, kind", [
    ("onehot", 1),
    ("onehot, last value 2", 0),       # one bad value anywhere makes it a regression target
    ("onehot, a row of two 1s", 2),    # 0/1 but multi-label
    ("onehot, a row 0.5 + 0.5", 0),    # sums to 1, yet not 0/1
    ("binary column", 2),              # one column: never one-hot, always threshold
    ("all zero", 2),
])
def test_target_kind_sorts_targets_for_scoring(case, kind, dtype):
    rng = np.random.default_rng(0)
    Y = np.eye(10)[rng.integers(0, 10, 37)]
    if case == "onehot, last value 2":
        Y[-1, -1] = 2
    elif case == "onehot, a row of two 1s":
        Y[20] = 0
        Y[20, [3, 7]] = 1
    elif case == "onehot, a row 0.5 + 0.5":
        Y[20] = 0
        Y[20, [3, 7]] = 0.5
    elif case == "binary column":
        Y = (rng.uniform(size=(37, 1)) > 0.5).astype(float)
    elif case == "all zero":
        Y = np.zeros((37, 10))
    assert forward_kernels.target_kind(np.ascontiguousarray(Y, dtype)) == kind


@pytest.mark.parametrize("acts, targets", [
    ("linear", "onehot"),          # class-like targets, but a linear output
    ("tanh", "onehot"),
    ("sigmoid", "fractions"),      # a sigmoid output with targets other than 0 and 1
], ids=["linear-onehot", "tanh-onehot", "sigmoid-fractions"])
def test_regressors_record_no_accuracy(acts, targets):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (30, 4))
    Y = np.eye(3)[rng.integers(0, 3, 30)] if targets == "onehot" else rng.uniform(0, 1, (30, 3))
    net = cbackprop.Network([4, 5, 3], acts, seed=0)
    history = net.train(X[:20], Y[:20], epochs=2, lr=0.05, validation_data=(X[20:], Y[20:]))
    assert len(history.loss) == len(history.val_loss) == 2
    assert history.accuracy == [] and history.val_accuracy == []


# -- 3. early stopping -----------------------------------------------------------------------

def early_stopping_case(dtype):
    """A sigmoid MSE net whose losses improve for 3 epochs at lr 0.5, then get worse at lr
    30 (sigmoid outputs saturate instead of overflowing)."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (40, 3))
    Y = (rng.uniform(size=(40, 2)) > 0.5).astype(float)
    Xv = rng.uniform(-1, 1, (20, 3))
    Yv = (rng.uniform(size=(20, 2)) > 0.5).astype(float)
    net = cbackprop.Network([3, 5, 2], "sigmoid", "mse", dtype=dtype, seed=0)
    schedule = lambda epoch: 0.5 if epoch < 3 else 30.0  # noqa: E731
    return net, X, Y, Xv, Yv, schedule


@pytest.mark.parametrize("monitor", ["val_loss", "loss"])
def test_early_stopping_restores_the_best_epoch(monitor, dtype):
    net, X, Y, Xv, Yv, schedule = early_stopping_case(dtype)
    recorder = Recorder(net)
    validation = (Xv, Yv) if monitor == "val_loss" else None
    history = net.train(X, Y, epochs=20, momentum=0.5, shuffle=False, lr_schedule=schedule,
                        validation_data=validation, early_stopping=True, patience=2,
                        callbacks=[recorder])
    monitored = getattr(history, monitor)
    assert monitored[0] > monitored[1] > monitored[2] < min(monitored[3:])   # the scenario
    assert history.stop_reason == "early_stopping"
    assert history.best_epoch == int(np.argmin(monitored)) + 1 == 3
    assert len(history) == len(monitored) == history.best_epoch + 2          # patience 2
    # weights and optimizer state (velocities, step and epoch counts) of the best epoch
    assert_same_state(net, recorder.after[history.best_epoch - 1])
    assert net.optimizer_state["epochs"] == 3 and net.optimizer_state["steps"] == 3 * 40
    assert net.optimizer_state["state"].any()
    assert "best epoch: 3" in str(history) and "stopped: early_stopping" in str(history)


def test_early_stopping_without_running_out_of_patience_still_ends_on_the_best_epoch():
    net, X, Y, Xv, Yv, schedule = early_stopping_case(np.float64)
    recorder = Recorder(net)
    history = net.train(X, Y, epochs=6, shuffle=False, lr_schedule=schedule,
                        validation_data=(Xv, Yv), early_stopping=True, patience=10,
                        callbacks=[recorder])
    assert history.stop_reason == "completed" and len(history) == 6
    assert history.best_epoch == int(np.argmin(history.val_loss)) + 1 == 3
    assert_same_state(net, recorder.after[2])


def test_min_delta_counts_only_larger_improvements():
    # No improvement is larger than 1e9, so epoch 1 stays the best and 2 more epochs run.
    net, X, Y, Xv, Yv, _ = early_stopping_case(np.float64)
    recorder = Recorder(net)
    history = net.train(X, Y, epochs=20, lr=0.5, shuffle=False, validation_data=(Xv, Yv),
                        early_stopping=True, patience=2, min_delta=1e9, callbacks=[recorder])
    assert history.val_loss[2] < history.val_loss[1] < history.val_loss[0]
    assert history.stop_reason == "early_stopping"
    assert history.best_epoch == 1 and len(history) == 3
    assert_same_state(net, recorder.after[0])


# -- 4. divergence ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["first-epoch", "third-epoch", "after-an-earlier-call"])
def test_divergence_raises_and_restores_the_start_of_the_epoch(case, dtype):
    rng = np.random.default_rng(0)
    X, Y = rng.uniform(-1, 1, (30, 3)), rng.uniform(-1, 1, (30, 2))
    net = cbackprop.Network([3, 8, 2], ["relu", "linear"], "mse", dtype=dtype, seed=0)
    lr = {"lr": 1e6}
    if case == "after-an-earlier-call":
        net.train(X, Y, epochs=2, lr=0.01)
    if case == "third-epoch":
        lr = {"lr_schedule": lambda epoch: 0.01 if epoch < 2 else 1e6}
    expected = 3 if case == "third-epoch" else 1     # counted within this call
    start = snapshot(net)
    recorder = Recorder(net)
    handler = signal.getsignal(signal.SIGINT)   # (SIG_IGN under nohup, say)
    with pytest.raises(cbackprop.TrainingDiverged, match=rf"\bepoch {expected}\b") as info:
        net.train(X, Y, epochs=5, callbacks=[recorder], **lr)
    assert isinstance(info.value, FloatingPointError)
    assert info.value.epoch == expected
    assert len(info.value.history) == len(recorder.after) == expected - 1
    assert all(math.isfinite(v) for v in info.value.history.loss)
    # restored: weights and optimizer state as at the start of the diverging epoch
    if expected == 1:
        # the call adopts SGD (its empty state) before epoch 1 starts; the rest is as before
        start["optimizer_state"]["optimizer"] = "sgd"
    assert_same_state(net, recorder.after[-1] if expected > 1 else start)
    assert np.isfinite(net.get_params()).all()
    assert signal.getsignal(signal.SIGINT) is handler     # Ctrl-C handling given back
    history = net.train(X, Y, epochs=1, lr=0.01)          # and it trains on
    assert math.isfinite(history.loss[0])


# -- 5. Ctrl-C -------------------------------------------------------------------------------

def test_ctrl_c_stops_between_steps_and_keeps_every_completed_step():
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("SIGINT reaches only the main thread")
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("another SIGINT handler is installed")
    # About 3,000 samples/s with batch_size=1 (2 cores, avx512 kernels): the epoch of 30,000
    # would take ~10 s, so the interrupt at 0.3 s lands inside it. Wide layers make each
    # sample slow, so the data stay small (15 MB); 784 inputs would need ~1 GB for as long.
    sizes, n, lr = [64, 1024, 1024, 10], 30_000, 0.01
    rng = np.random.default_rng(0)
    X, y = rng.uniform(-1, 1, (n, sizes[0])), rng.integers(0, 10, n)
    net = cbackprop.Network(sizes, ["tanh", "tanh", "softmax"], "cross_entropy", seed=0)
    replay = copy.deepcopy(net)
    fired = []

    def interrupt():
        fired.append(time.perf_counter())
        _thread.interrupt_main()

    timer = threading.Timer(0.3, interrupt)
    timer.start()
    try:
        with pytest.raises(cbackprop.TrainingInterrupted) as info:
            net.train(X, y, epochs=1, lr=lr, batch_size=1, shuffle=False)
        caught = time.perf_counter()
    finally:
        timer.cancel()
        timer.join()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert isinstance(info.value, KeyboardInterrupt)
    assert caught - fired[0] < 1.5
    assert len(info.value.history) == 0
    assert np.isfinite(net.get_params()).all()
    k = net.optimizer_state["steps"]
    assert 0 < k < n
    assert net.optimizer_state["epochs"] == 0
    # exactly k whole steps: the same as one epoch on the first k samples, bit for bit
    replay.train(X[:k], y[:k], epochs=1, lr=lr, batch_size=1, shuffle=False)
    np.testing.assert_array_equal(net.get_params(), replay.get_params())


# -- 6. callbacks ----------------------------------------------------------------------------

def test_callbacks_are_called_once_per_epoch_with_the_history_so_far():
    X, Y = regression_data(20)
    net = cbackprop.Network([3, 4, 2], seed=0)
    first, second, seen = Recorder(net), [], []

    def keep(epoch, history):
        second.append((epoch, len(history), history.loss[-1]))
        seen.append(history)

    history = net.train(X, Y, epochs=3, callbacks=[first, keep])
    assert first.calls == [(1, 1), (2, 2), (3, 3)]
    assert second == [(e, e, history.loss[e - 1]) for e in (1, 2, 3)]
    assert all(h is history for h in seen)
    single = Recorder(net)                              # one callable, not in a list
    net.train(X, Y, epochs=2, callbacks=single)
    assert single.calls == [(1, 1), (2, 2)]


def test_a_callback_returning_true_stops_after_that_epoch():
    X, Y = regression_data(20)
    net = cbackprop.Network([3, 4, 2], seed=0)
    recorder = Recorder(net)
    history = net.train(X, Y, epochs=10, callbacks=[recorder, lambda epoch, h: epoch == 2])
    assert history.stop_reason == "callback" and "stopped: callback" in str(history)
    assert len(history) == 2 and recorder.calls == [(1, 1), (2, 2)]
    assert net.optimizer_state["epochs"] == 2
    assert_same_state(net, recorder.after[-1])


def test_a_callback_returning_numpy_true_stops():
    X, Y = regression_data(20)
    net = cbackprop.Network([3, 4, 2], seed=0)
    history = net.train(X, Y, epochs=5, callbacks=[lambda epoch, h: np.int64(epoch) >= 2])
    assert len(history) == 2 and history.stop_reason == "callback"


# -- 7. verbose ------------------------------------------------------------------------------

def test_verbose_prints_one_line_per_epoch(capsys):
    X, Y = regression_data(20)
    net = cbackprop.Network([3, 4, 2], seed=0)
    net.train(X, Y, epochs=3, verbose=True, validation_data=(X[:5], Y[:5]))
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.split("\n")
    assert lines[-1] == "" and len(lines) == 4
    for epoch, line in enumerate(lines[:3], 1):
        assert line.startswith(f"epoch {epoch}/3 ")
        assert " loss " in line and " val_loss " in line


@pytest.mark.parametrize("verbose", [False, None], ids=["False", "default"])
def test_not_verbose_prints_nothing(verbose, capsys):
    # capsys's stderr is not a terminal, so the default shows no progress bar either
    X, Y = regression_data(20)
    net = cbackprop.Network([3, 4, 2], seed=0)
    kwargs = {} if verbose is None else {"verbose": verbose}
    net.train(X, Y, epochs=3, **kwargs)
    assert capsys.readouterr() == ("", "")


# -- 8. learning-rate schedules --------------------------------------------------------------

BASE_LR = 0.2
# name: (lr_schedule, expected lr of epochs 1..5)
SCHEDULES = {
    "constant": ("constant", [0.2] * 5),
    "step-default": ("step", [0.2] * 5),                 # halves every 10 epochs
    "StepDecay": (cbackprop.StepDecay(step_size=2, gamma=0.5), [0.2, 0.2, 0.1, 0.1, 0.05]),
    "inverse_scaling": ("inverse_scaling", [0.2 / math.sqrt(e) for e in range(1, 6)]),
    "InverseScaling": (cbackprop.InverseScaling(power=1.0), [0.2 / e for e in range(1, 6)]),
    "callable": (lambda epoch: 0.05 * (epoch + 1), [0.05, 0.1, 0.15, 0.2, 0.25]),
    # min_delta 1e9: only epoch 1 improves (on infinity). patience 0: the lr halves after
    # each later epoch; patience 1: after every second one; min_lr is a floor.
    "plateau-patience0": (cbackprop.ReduceOnPlateau(factor=0.5, patience=0, min_delta=1e9),
                          [0.2, 0.2, 0.1, 0.05, 0.025]),
    "plateau-patience1": (cbackprop.ReduceOnPlateau(factor=0.5, patience=1, min_delta=1e9),
                          [0.2, 0.2, 0.2, 0.1, 0.1]),
    "plateau-min_lr": (cbackprop.ReduceOnPlateau(factor=0.5, patience=0, min_delta=1e9,
                                                 min_lr=0.06), [0.2, 0.2, 0.1, 0.06, 0.06]),
}


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedule_sets_each_epochs_lr(name, dtype):
    schedule, expected = SCHEDULES[name]
    X, Y = regression_data(12)
    net = cbackprop.Network([3, 4, 2], dtype=dtype, seed=0)
    replay = copy.deepcopy(net)
    history = net.train(X, Y, epochs=5, lr=BASE_LR, lr_schedule=schedule, shuffle=False)
    assert history.lr == pytest.approx(expected, rel=1e-15, abs=0)
    # the recorded lr is the one used: epoch by epoch at a constant lr gives the same weights
    for lr in history.lr:
        replay.train(X, Y, epochs=1, lr=lr, shuffle=False)
    np.testing.assert_array_equal(net.get_params(), replay.get_params())


def test_schedule_continues_across_calls_until_the_optimizer_is_reset():
    X, Y = regression_data(12)
    net = cbackprop.Network([3, 4, 2], seed=0)
    halving = cbackprop.StepDecay(step_size=1, gamma=0.5)
    assert net.train(X, Y, epochs=2, lr=0.4, lr_schedule=halving).lr == [0.4, 0.2]
    assert net.optimizer_state["epochs"] == 2
    assert net.train(X, Y, epochs=2, lr=0.4, lr_schedule=halving).lr == [0.1, 0.05]
    assert net.optimizer_state["epochs"] == 4
    net.reset_optimizer()
    assert net.optimizer_state["epochs"] == 0
    assert net.train(X, Y, epochs=2, lr=0.4, lr_schedule=halving).lr == [0.4, 0.2]
    # another kind of optimizer starts afresh, schedule included
    assert net.train(X, Y, epochs=2, lr=0.4, lr_schedule=halving, optimizer="adam").lr == [
        0.4, 0.2]


@pytest.mark.parametrize("value, error", [
    (0, ValueError), (0.0, ValueError), (-0.1, ValueError), (float("nan"), ValueError),
    (float("inf"), ValueError), ("0.1", TypeError), (None, TypeError), (True, TypeError),
], ids=["0", "0.0", "negative", "nan", "inf", "text", "None", "bool"])
def test_a_schedule_function_returning_a_bad_lr_raises(value, error):
    X, Y = regression_data(12)
    net = cbackprop.Network([3, 4, 2], seed=0)
    before = net.get_params()
    with pytest.raises(error, match=r"lr_schedule\(0\)"):
        net.train(X, Y, epochs=2, lr_schedule=lambda epoch: value)
    np.testing.assert_array_equal(net.get_params(), before)
    # checked every epoch: epoch 1 trains, epoch 2's lr is refused
    with pytest.raises(error, match=r"lr_schedule\(1\)"):
        net.train(X, Y, epochs=2, lr_schedule=lambda epoch: 0.1 if epoch == 0 else value)


def test_a_schedule_function_refused_in_epoch_one_changes_no_optimizer_state():
    X, Y = regression_data(12)
    net = cbackprop.Network([3, 4, 2], seed=0)
    net.train(X, Y, epochs=1, optimizer="adam")
    before = snapshot(net)
    with pytest.raises(ValueError, match=r"lr_schedule\(0\)"):
        net.train(X, Y, lr_schedule=lambda epoch: 0.0)
    assert_same_state(net, before)


# -- 9. History ------------------------------------------------------------------------------

def test_history_str_has_one_line_per_epoch():
    X, Y = regression_data(12)
    net = cbackprop.Network([3, 4, 2], seed=0)
    history = net.train(X, Y, epochs=3, validation_data=(X, Y))
    lines = str(history).split("\n")
    assert len(lines) == 3
    for epoch, line in enumerate(lines, 1):
        assert line.startswith(f"epoch {epoch}/3 ") and "val_loss" in line


def test_history_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    net, X, y, _, _ = classifier_case("softmax-ce-labels", np.float64)
    history = net.train(X, y, epochs=3, validation_split=0.25, early_stopping=True)
    assert history.val_accuracy and history.best_epoch is not None   # every curve drawn
    path = tmp_path / "history.png"
    fig = history.plot(path)
    import matplotlib.pyplot as plt      # after plot(), which picks Agg if pyplot is unused
    plt.close(fig)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_history_plot_without_matplotlib_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # import matplotlib fails
    X, Y = regression_data(12)
    history = cbackprop.Network([3, 4, 2], seed=0).train(X, Y, epochs=1)
    with pytest.raises(ImportError, match=r"cbackprop\[plot\]"):
        history.plot(tmp_path / "history.png")
    assert not (tmp_path / "history.png").exists()


# -- 10. bad settings ------------------------------------------------------------------------

BAD_X, BAD_Y = regression_data(10, seed=5)
BAD_XV, BAD_YV = regression_data(5, seed=6)
WEIGHTS = np.ones(10)

BAD_SETTINGS = {
    "unknown optimizer": (dict(optimizer="nadam"), ValueError, "unknown optimizer 'nadam'"),
    "optimizer not a name": (dict(optimizer=3), TypeError, "optimizer must be"),
    "momentum with adam": (dict(optimizer="adam", momentum=0.9), ValueError, "momentum"),
    "momentum beside an SGD object": (dict(optimizer=cbackprop.SGD(), momentum=0.9),
                                      ValueError, "inside the optimizer"),
    "nesterov without momentum": (dict(nesterov=True), ValueError, "nesterov"),
    "lr with rprop": (dict(optimizer="rprop", lr=0.1), ValueError, "no learning rate"),
    "batch_size with rprop": (dict(optimizer="rprop", batch_size=4), ValueError, "batch_size"),
    "lr_schedule with rprop": (dict(optimizer="rprop", lr_schedule="step"), ValueError,
                               "schedule"),
    "l2 negative": (dict(l2=-0.1), ValueError, "l2"),
    "l2 nan": (dict(l2=float("nan")), ValueError, "l2"),
    "l2 text": (dict(l2="0.1"), TypeError, "l2"),
    "sample_weight too short": (dict(sample_weight=WEIGHTS[:9]), ValueError, r"\(10,\)"),
    "sample_weight 2-D": (dict(sample_weight=WEIGHTS[:, None]), ValueError, r"\(10,\)"),
    "sample_weight negative": (dict(sample_weight=np.r_[WEIGHTS[:9], -1.0]), ValueError,
                               ">= 0"),
    "sample_weight nan": (dict(sample_weight=np.r_[np.nan, WEIGHTS[1:]]), ValueError,
                          "finite"),
    "sample_weight text": (dict(sample_weight=WEIGHTS.astype(str)), TypeError,
                           "real numbers"),
    "patience negative": (dict(early_stopping=True, patience=-1), ValueError, "patience"),
    "min_delta negative": (dict(early_stopping=True, min_delta=-1.0), ValueError,
                           "min_delta"),
    "unknown lr_schedule": (dict(lr_schedule="cosine"), ValueError,
                            "unknown lr_schedule 'cosine'"),
    "lr_schedule a number": (dict(lr_schedule=0.5), TypeError, "lr_schedule"),
    "validation_data an array": (dict(validation_data=BAD_XV), TypeError, "pair"),
    "validation_data one item": (dict(validation_data=(BAD_XV,)), TypeError, "pair"),
    "validation_data a 2-row array": (dict(validation_data=BAD_XV[:2]), TypeError, "pair"),
    "validation_data three items": (dict(validation_data=(BAD_XV, BAD_YV, BAD_YV)),
                                    TypeError, "pair"),
    "validation_data feature count": (dict(validation_data=(BAD_XV[:, :2], BAD_YV)),
                                      ValueError, "2 features"),
    "validation_data sample count": (dict(validation_data=(BAD_XV, BAD_YV[:4])), ValueError,
                                     "5 samples but Y has 4"),
    "validation_data and split": (dict(validation_data=(BAD_XV, BAD_YV),
                                       validation_split=0.2), ValueError, "not both"),
    "validation_split 1": (dict(validation_split=1.0), ValueError, "validation_split"),
    "validation_split negative": (dict(validation_split=-0.1), ValueError,
                                  "validation_split"),
    # ceil(0.95 * 10) = 10 rows held out of 10
    "validation_split leaves nothing": (dict(validation_split=0.95), ValueError,
                                        "no training samples"),
    "callback not callable": (dict(callbacks=[print, None]), TypeError, "callbacks"),
    "early_stopping not a bool": (dict(early_stopping="yes"), TypeError, "early_stopping"),
    "shuffle not a bool": (dict(shuffle=1), TypeError, "shuffle"),
    "verbose text": (dict(verbose="loud"), TypeError, "verbose"),
}


@pytest.mark.parametrize("name", BAD_SETTINGS, ids=[k.replace(" ", "-") for k in BAD_SETTINGS])
def test_bad_settings_raise_before_anything_changes(name):
    kwargs, error, match = BAD_SETTINGS[name]
    net = cbackprop.Network([3, 4, 2], seed=0)
    net.train(BAD_X, BAD_Y, epochs=2, momentum=0.9, lr_schedule="plateau")   # some state
    before, twin = snapshot(net), copy.deepcopy(net)
    with pytest.raises(error, match=match):
        net.train(BAD_X, BAD_Y, epochs=2, **kwargs)
    assert_same_state(net, before)
    # nothing hidden changed either (shuffling generator, schedule state): training on
    # gives what the untouched twin gives
    for n in (net, twin):
        n.train(BAD_X, BAD_Y, epochs=1, momentum=0.9, lr_schedule="plateau")
    np.testing.assert_array_equal(net.get_params(), twin.get_params())


def test_patience_zero_stops_at_the_first_epoch_without_improvement():
    X, Y = regression_data(20, seed=8)
    net = cbackprop.Network([X.shape[1], 5, Y.shape[1]], "sigmoid", seed=0)
    plain = copy.deepcopy(net).train(X, Y, epochs=6, lr=0.5, shuffle=False)
    improving = sum(1 for a, b in zip(plain.loss, plain.loss[1:]) if b < a)
    assert improving == 5                        # the loss improves in every epoch here
    history = net.train(X, Y, epochs=6, lr=0.5, shuffle=False, early_stopping=True,
                        patience=0)
    assert len(history) == 6 and history.stop_reason == "completed"


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("row", [0, 37, 99])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_minibatch_training_refuses_non_finite_x_and_changes_nothing(shuffle, row, value,
                                                                     dtype):
    # mini-batches check their rows of X in the kernel, just before their gemm reads them
    # (src/_train.pyx train_epoch): the batches before the bad row have stepped by then, so
    # train() must put everything back, the optimizer it switched from and the generator
    rng = np.random.default_rng(0)
    X, Y = rng.uniform(-1, 1, (100, 3)).astype(dtype), rng.uniform(0, 1, (100, 2))
    net = cbackprop.Network([3, 5, 2], dtype=dtype, seed=0)
    net.train(X, Y, epochs=1, optimizer="adam", batch_size=10)
    start, generator = snapshot(net), net._rng.bit_generator.state
    handler = signal.getsignal(signal.SIGINT)
    bad = X.copy()
    bad[row, 1] = value
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        net.train(bad, Y, epochs=3, batch_size=8, momentum=0.9, shuffle=shuffle)
    assert_same_state(net, start)
    assert net._rng.bit_generator.state == generator
    assert signal.getsignal(signal.SIGINT) is handler
    net.train(X, Y, epochs=1, batch_size=8, shuffle=shuffle)    # and it trains on


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("row", [0, 37, 99])
@pytest.mark.parametrize("path", sorted(ONLINE_PATHS))
def test_online_training_refuses_non_finite_x_and_changes_nothing(path, row, momentum, dtype):
    # online training checks X in the kernels too: the samples before the bad row have
    # stepped by then, so train() puts everything back, the optimizer it switched from
    # included (momentum 0.9 takes the generic loop on every network)
    sizes, _ = ONLINE_PATHS[path]
    rng = np.random.default_rng(0)
    X, Y = rng.uniform(-1, 1, (100, sizes[0])).astype(dtype), rng.uniform(0, 1, (100, sizes[-1]))
    net = cbackprop.Network(sizes, dtype=dtype, seed=0)
    net.train(X, Y, epochs=1, optimizer="adam", batch_size=10)
    start, generator = snapshot(net), net._rng.bit_generator.state
    bad = X.copy()
    bad[row, -1] = np.nan
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        net.train(bad, Y, epochs=2, batch_size=1, momentum=momentum, shuffle=True)
    assert_same_state(net, start)
    assert net._rng.bit_generator.state == generator
    net.train(X, Y, epochs=1, batch_size=1, momentum=momentum)     # and it trains on


def test_minibatch_training_names_a_float64_input_too_large_for_float32():
    net = cbackprop.Network([2, 3, 1], seed=0, dtype=np.float32)
    X, Y = np.zeros((50, 2)), np.zeros((50, 1))
    X[45, 0] = -1e300
    before = net.get_params()
    with pytest.raises(ValueError, match="beyond the range of float32"):
        net.train(X, Y, batch_size=16)
    np.testing.assert_array_equal(net.get_params(), before)


@pytest.mark.parametrize("case", ["no epochs", "diverges before the bad row"])
def test_minibatch_training_refuses_non_finite_x_it_has_not_read(monkeypatch, case):
    # the kernels check X as they read it: a call that reads none of it, or one that diverges
    # in a compiled call before the one with the bad row, still refuses X, as a check before
    # training would have
    from cbackprop import train as train_module
    monkeypatch.setattr(train_module, "_first_chunk", lambda net, step: step)
    monkeypatch.setattr(train_module, "_next_chunk", lambda chunk, *rest: chunk)
    rng = np.random.default_rng(1)
    X, Y = rng.uniform(-1, 1, (200, 3)), rng.uniform(-1, 1, (200, 2))
    X[-1, 0] = np.nan
    net = cbackprop.Network([3, 8, 2], ["relu", "linear"], "mse", seed=0)
    start = snapshot(net)
    kw = dict(epochs=0) if case == "no epochs" else dict(epochs=2, lr=1e6)
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        net.train(X, Y, batch_size=4, shuffle=False, **kw)
    assert_same_state(net, start)
