"""What the engine promises under failure and at the edges: atomic saves, numerics at
|z| = 1e4, many threads on one network, no hidden copies, bounded memory on big inputs."""

import os
import threading
import tracemalloc
import warnings

import numpy as np
import pytest

import cbackprop
from cbackprop import reference
from cbackprop.train import TrainingDiverged
from conftest import RTOL, assert_close

# -- files -----------------------------------------------------------------------------------


class DiskFull(OSError):
    pass


def _failing_savez(file, **arrays):
    """Write the first bytes of a real model, then fail as a full disk would."""
    file.write(b"PK\x03\x04 half a model")
    raise DiskFull(28, "No space left on device")


def test_a_failed_save_leaves_the_previous_model_intact(tmp_path, monkeypatch):
    good = cbackprop.Network([3, 4, 2], seed=0)
    path = tmp_path / "model.npz"
    good.save(path)
    before = path.read_bytes()
    changed = cbackprop.Network([3, 4, 2], seed=1)
    monkeypatch.setattr(cbackprop.network.np, "savez", _failing_savez)
    with pytest.raises(DiskFull):
        changed.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    np.testing.assert_array_equal(cbackprop.load(path).get_params(), good.get_params())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]   # no temporary left


def test_a_failed_first_save_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(cbackprop.network.np, "savez", _failing_savez)
    with pytest.raises(DiskFull):
        cbackprop.Network([2, 2], seed=0).save(tmp_path / "new.npz")
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_save_leaves_the_previous_model_intact(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    cbackprop.Network([2, 3, 1], seed=0).save(path)
    before = path.read_bytes()

    def interrupted(file, **arrays):
        file.write(b"PK")
        raise KeyboardInterrupt

    monkeypatch.setattr(cbackprop.network.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cbackprop.Network([2, 3, 1], seed=5).save(path)
    assert path.read_bytes() == before and len(list(tmp_path.iterdir())) == 1


def test_saved_files_get_the_usual_permissions(tmp_path):
    path = tmp_path / "model.npz"
    cbackprop.Network([2, 2], seed=0).save(path)
    mask = os.umask(0o022)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
    os.chmod(path, 0o600)                      # a replaced file keeps its mode
    cbackprop.Network([2, 2], seed=1).save(path)
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_pickle_inside_a_model_file_is_never_run(tmp_path):
    """An object array in the .npz (a pickle) is refused, and its code never runs."""
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    net = cbackprop.Network([2, 2], seed=0)
    net.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as f:
        arrays = {k: f[k] for k in f.files}
    arrays["params"] = np.array([Payload()], dtype=object)
    np.savez(tmp_path / "evil.npz", **arrays)
    with pytest.raises(ValueError):
        cbackprop.load(tmp_path / "evil.npz")
    assert not marker.exists()


# -- numerics at the extremes ----------------------------------------------------------------

def _one_layer(activation, n_out, dtype, loss="mse"):
    """A single weight layer with z = x exactly (identity weights, zero biases)."""
    net = cbackprop.Network([n_out, n_out], activation, loss, dtype=dtype, seed=0)
    net.weights = [np.eye(n_out)]
    net.biases = [np.zeros(n_out)]
    return net


EXTREMES = [-1e4, -700.0, -88.0, -30.0, 0.0, 30.0, 88.0, 700.0, 1e4]


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "linear"])
def test_elementwise_activations_are_exact_at_the_extremes(activation, dtype):
    net = _one_layer(activation, len(EXTREMES), dtype)
    z = np.array([EXTREMES], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = net.forward(z)[0]
    expected = reference.ACTIVATIONS[activation](z.astype(np.float64))[0]
    if activation == "sigmoid":
        scipy_special = pytest.importorskip("scipy.special")
        np.testing.assert_allclose(expected, scipy_special.expit(z.astype(np.float64))[0],
                                   rtol=1e-15)
    assert np.isfinite(h).all()
    np.testing.assert_allclose(h, expected.astype(dtype), rtol=RTOL[dtype], atol=0)
    if activation in ("sigmoid", "tanh"):
        assert h[0] == (0 if activation == "sigmoid" else -1) and h[-1] == 1   # saturated


def test_softmax_and_its_cross_entropy_are_stable_at_the_extremes(dtype):
    scipy_special = pytest.importorskip("scipy.special")
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [5e3, 1e4, -1e4]], dtype=dtype)
    Y = np.eye(3, dtype=dtype)[[1, 2, 0]]                      # the unlikeliest classes
    net = _one_layer("softmax", 3, dtype, "cross_entropy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = net.forward(z)
        loss = net.loss(z, Y)
        dW, db = net.gradients(z, Y)
    log_h = scipy_special.log_softmax(z.astype(np.float64), axis=1)
    assert np.isfinite(h).all() and (h >= 0).all() and (h <= 1).all()
    np.testing.assert_allclose(h, np.exp(log_h), rtol=RTOL[dtype], atol=1e-30)
    # J = -log h_k of the target class: 2e4, log 3, 5e3
    np.testing.assert_allclose(loss, np.mean(-np.sum(Y * log_h, axis=1)), rtol=RTOL[dtype])
    assert all(np.isfinite(g).all() for g in dW + db)


@pytest.mark.parametrize("target", [0.0, 1.0])
def test_sigmoid_cross_entropy_is_stable_at_the_extremes(target, dtype):
    z = np.array([EXTREMES], dtype=dtype)
    Y = np.full_like(z, target)
    net = _one_layer("sigmoid", len(EXTREMES), dtype, "cross_entropy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = net.loss(z, Y)
        dW, db = net.gradients(z, Y)
    # J = sum_k softplus(z_k) for y = 0 and softplus(-z_k) for y = 1
    sign = -1 if target else 1
    expected = np.sum(np.logaddexp(0, sign * z.astype(np.float64)))
    np.testing.assert_allclose(loss, expected, rtol=RTOL[dtype])
    assert np.isfinite(db[0]).all()
    # delta = h - y, which float32 rounds to 0 once h rounds to 1 (from z = 17 up)
    np.testing.assert_allclose(db[0], reference.sigmoid(z[0].astype(np.float64)) - target,
                               rtol=RTOL[dtype], atol=np.finfo(dtype).eps)


@pytest.mark.parametrize("activations", ["sigmoid", "relu", ["tanh", "linear"]])
def test_a_learning_rate_of_1e6_ends_finite_or_diverges_cleanly(activations, dtype):
    rng = np.random.default_rng(0)
    X, Y = rng.uniform(-1, 1, (40, 3)), rng.uniform(0, 1, (40, 2))
    net = cbackprop.Network([3, 8, 2], activations, dtype=dtype, seed=0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            net.train(X, Y, epochs=5, lr=1e6)
    except TrainingDiverged as exc:
        assert "epoch" in str(exc)
    assert np.isfinite(net.get_params()).all()
    assert np.isfinite(net.forward(X)).all()


# -- threads ---------------------------------------------------------------------------------

def test_eight_threads_predict_with_one_network_at_once(dtype):
    rng = np.random.default_rng(1)
    net = cbackprop.Network([64, 128, 10], ["relu", "softmax"], "cross_entropy", dtype=dtype,
                            seed=0)
    inputs = [rng.uniform(-1, 1, (3000 + 17 * k, 64)).astype(dtype) for k in range(8)]
    expected = [net.forward(X) for X in inputs]
    losses = [net.loss(X, np.arange(len(X)) % 10) for X in inputs]
    results = [None] * 8
    start = threading.Barrier(8)

    def work(k):
        start.wait()
        for _ in range(5):
            out = net.predict(inputs[k])
            loss = net.loss(inputs[k], np.arange(len(inputs[k])) % 10)
            assert np.array_equal(out, expected[k]) and loss == losses[k]
        results[k] = out

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)


def test_thread_count_comes_from_the_environment(monkeypatch):
    from cbackprop import _threads
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("CBACKPROP_NUM_THREADS", "5")
    assert _threads.num_threads() == 5           # cbackprop's own setting first
    monkeypatch.setenv("CBACKPROP_NUM_THREADS", "zero")
    assert _threads.num_threads() == 3           # unusable values are ignored
    monkeypatch.delenv("CBACKPROP_NUM_THREADS")
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert _threads.num_threads() == len(os.sched_getaffinity(0))


def test_rows_split_over_threads_cover_every_row_once(monkeypatch):
    from cbackprop import _threads
    monkeypatch.setenv("CBACKPROP_NUM_THREADS", "3")
    n = 3 * _threads.MIN_ROWS_PER_THREAD + 5
    seen = []
    parts = _threads.over_rows(lambda a, b: (a, b, threading.get_ident()), n)
    bounds = [p[:2] for p in parts]
    assert bounds[0][0] == 0 and bounds[-1][1] == n and len(bounds) == 3
    assert all(bounds[k][1] == bounds[k + 1][0] for k in range(2))          # no gap, no overlap
    block = _threads.MIN_ROWS_PER_THREAD
    assert all(a % block == 0 for a, _ in bounds)       # parts start on the kernels' blocks
    main = threading.get_ident()
    assert parts[0][2] == main and all(p[2] != main for p in parts[1:])   # the pool ran the rest
    few = _threads.over_rows(lambda a, b: seen.append((a, b)), _threads.MIN_ROWS_PER_THREAD)
    assert seen == [(0, _threads.MIN_ROWS_PER_THREAD)] and few == [None]


def test_forward_and_loss_split_over_threads_equal_one_thread(monkeypatch, dtype):
    from cbackprop import _threads
    rng = np.random.default_rng(2)
    net = cbackprop.Network([20, 16, 4], ["tanh", "softmax"], "cross_entropy", dtype=dtype,
                            seed=0)
    X = rng.uniform(-1, 1, (3 * _threads.MIN_ROWS_PER_THREAD + 11, 20)).astype(dtype)
    labels = np.arange(len(X)) % 4
    X_before = X.copy()
    monkeypatch.setenv("CBACKPROP_NUM_THREADS", "1")
    out1, loss1 = net.forward(X), net.loss(X, labels)
    monkeypatch.setenv("CBACKPROP_NUM_THREADS", "3")
    out3, loss3 = net.forward(X), net.loss(X, labels)
    assert_close(out3, out1, dtype)
    assert loss3 == pytest.approx(loss1, rel=RTOL[dtype])
    W, b, acts = net.weights, net.biases, ["tanh", "softmax"]
    assert_close(out3, reference.forward(W, b, acts, X), dtype)
    np.testing.assert_array_equal(X, X_before)


@pytest.mark.parametrize("where", [0, -1])
def test_input_checks_shared_out_over_threads_find_nan_in_any_part(monkeypatch, where):
    from cbackprop import _config
    monkeypatch.setenv("CBACKPROP_NUM_THREADS", "2")
    net = cbackprop.Network([8, 3, 2], seed=0)
    X = np.random.default_rng(3).uniform(-1, 1, (2 * _config.CHECK_BLOCK // 8 + 3, 8))
    assert net.forward(X).shape == (len(X), 2)
    X[where, 5] = np.nan                      # in the first thread's part, then the last one's
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        net.forward(X)
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        net.train(X, np.zeros((len(X), 2)), epochs=1)


@pytest.mark.parametrize("row", [0, 4095, 4096, 9999])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_forward_finds_a_non_finite_input_in_any_block(monkeypatch, row, value, dtype):
    # forward's kernel checks each block of rows (src/_forward.pyx BLOCK = 4096) just before
    # it reads it, instead of a separate pass: every block, first and last rows included
    monkeypatch.setenv("CBACKPROP_NUM_THREADS", "1")
    net = cbackprop.Network([5, 4, 3], seed=0, dtype=dtype)
    X = np.random.default_rng(0).uniform(-1, 1, (10000, 5)).astype(dtype)
    X[row, row % 5] = value
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        net.forward(X)


def test_forward_names_a_float64_input_too_large_for_float32():
    net = cbackprop.Network([2, 3, 1], seed=0, dtype=np.float32)
    X = np.zeros((5000, 2))
    X[4500, 1] = 1e300
    with pytest.raises(ValueError, match="beyond the range of float32"):
        net.forward(X)


def test_concurrent_and_nested_splits_of_different_sizes(monkeypatch):
    from cbackprop import _threads
    monkeypatch.setenv("CBACKPROP_NUM_THREADS", "8")
    block = _threads.MIN_ROWS_PER_THREAD
    errors, start = [], threading.Barrier(8)

    def nested(a, b):       # a part that splits again
        return sum(_threads.over_rows(lambda c, d: d - c, 2 * block))

    def work(k):
        start.wait()
        try:
            for _ in range(20):
                n = (2 + k % 7) * block
                assert sum(_threads.over_rows(lambda a, b: b - a, n)) == n
                assert _threads.over_rows(nested, 3 * block) == [2 * block] * 3
        except BaseException as exc:     # noqa: BLE001 - collected for the assertion
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_an_exception_in_any_part_reaches_the_caller(monkeypatch):
    from cbackprop import _threads
    monkeypatch.setenv("CBACKPROP_NUM_THREADS", "3")

    def run(a, b):
        if a > 0:
            raise KeyError(a)
        return b - a

    with pytest.raises(KeyError):
        _threads.over_rows(run, 3 * _threads.MIN_ROWS_PER_THREAD)


def test_forward_leaves_blas_threads_as_they_were(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    monkeypatch.setenv("CBACKPROP_NUM_THREADS", "2")
    net = cbackprop.Network([20, 16, 4], seed=0)
    X = np.random.default_rng(0).uniform(-1, 1, (3 * 4096, 20))
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        before = [i["num_threads"] for i in threadpoolctl.threadpool_info()
                  if i["user_api"] == "blas"]
        net.forward(X)
        net.loss(X, np.zeros((len(X), 4)))
        after = [i["num_threads"] for i in threadpoolctl.threadpool_info()
                 if i["user_api"] == "blas"]
    assert after == before


def _loss_in_forked_child(net, X, y):
    return float(net.loss(X, y))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_predicts_after_the_parent_did(monkeypatch):
    import multiprocessing
    monkeypatch.setenv("CBACKPROP_NUM_THREADS", "2")
    net = cbackprop.Network([64, 8, 3], seed=0)
    X = np.random.default_rng(1).uniform(0, 1, (3 * 4096, 64))
    y = np.arange(len(X)) % 3
    expected = net.loss(X, y)                 # the parent splits over threads first
    with multiprocessing.get_context("fork").Pool(2) as pool:
        got = pool.starmap_async(_loss_in_forked_child, [(net, X, y)] * 2).get(timeout=60)
    assert got == pytest.approx([expected] * 2, rel=1e-12)


def test_a_row_has_the_same_output_alone_as_in_a_block(dtype):
    # narrow sigmoid layers take libm's exp, wide ones the polynomial: by layer width, not by
    # how many rows come along (wide layers are left out: BLAS itself may sum a 1-row product
    # in another order than a 200-row one; and the block stays under the 64 rows from which
    # inference may take cbackprop's own product, which sums in another order than BLAS)
    for sizes in ([4, 5, 3], [4, 7, 2]):
        net = cbackprop.Network(sizes, "sigmoid", dtype=dtype, seed=0)
        X = np.random.default_rng(2).uniform(-3, 3, (63, 4)).astype(dtype)
        block = net.forward(X)
        for i in range(0, 63, 3):
            np.testing.assert_array_equal(net.forward(X[i]), block[i])


# -- no hidden copies, bounded memory ---------------------------------------------------------

def test_training_passes_x_to_the_kernels_without_copying(monkeypatch, dtype):
    from cbackprop import train as train_module
    seen = []
    real = train_module._train

    class Spy:
        def __getattr__(self, name):
            return getattr(real, name)

        def train_epoch(self, spec, params, state, X, Y, *rest):
            seen.append(X)
            return real.train_epoch(spec, params, state, X, Y, *rest)

    monkeypatch.setattr(train_module, "_train", Spy())
    X = np.random.default_rng(0).uniform(size=(50, 4)).astype(dtype)
    Y = np.random.default_rng(1).uniform(size=(50, 2)).astype(dtype)
    net = cbackprop.Network([4, 3, 2], dtype=dtype, seed=0)
    net.train(X, Y, epochs=2, batch_size=5)
    assert seen and all(x is X for x in seen)
    # F-ordered or other-dtype data is converted once, never the caller's array modified
    seen.clear()
    other = np.asfortranarray(X.astype(np.float64 if dtype == np.float32 else np.float32))
    copy = other.copy()
    net.train(other, Y, epochs=1)
    assert seen[0] is not other and np.array_equal(other, copy)


def test_forward_and_loss_use_bounded_extra_memory(dtype):
    """Extra memory beyond the output stays a few MiB however many rows come in."""
    n = 400_000
    X = np.random.default_rng(0).uniform(size=(n, 64)).astype(dtype)
    Y = np.zeros((n, 10), dtype)
    Y[:, 0] = 1
    net = cbackprop.Network([64, 30, 10], dtype=dtype, seed=0)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        out = net.forward(X)
        peak_forward = tracemalloc.get_traced_memory()[1] - out.nbytes
        del out
        tracemalloc.reset_peak()
        net.loss(X, Y)
        peak_loss = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    limit = 16 * 2**20                            # X alone is 100-200 MB
    assert peak_forward < limit and peak_loss < limit, (peak_forward, peak_loss)


def test_one_network_trains_in_one_thread_at_a_time():
    X, Y = np.random.default_rng(0).uniform(size=(20, 3)), np.random.default_rng(1).uniform(
        size=(20, 2))
    net = cbackprop.Network([3, 4, 2], seed=0)
    inside, release = threading.Event(), threading.Event()

    def hold(epoch, history):             # keeps the first train() busy after its epoch
        inside.set()
        release.wait(10)

    worker = threading.Thread(target=net.train, args=(X, Y), kwargs={"callbacks": [hold]})
    worker.start()
    assert inside.wait(10)
    before = net.get_params()
    with pytest.raises(RuntimeError, match="already training"):
        net.train(X, Y)
    np.testing.assert_array_equal(net.get_params(), before)
    release.set()
    worker.join()
    net.train(X, Y)                       # free again once the first call has returned
