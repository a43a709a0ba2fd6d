"""Training: whole epochs compiled vs the NumPy reference, learning, determinism."""

import copy

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import cbackprop
from cbackprop import reference
from conftest import CONFIG_IDS, CONFIGS, DTYPES, ONLINE_PATHS, assert_close, make_case

SHAPES = [[1, 1, 1], [3, 3, 1], [4, 7, 3], [3, 6, 5, 4, 3, 2], [784, 512]]


def reference_epochs(W, b, acts, loss, X, Y, epochs, lr, batch_size, momentum, orders=None):
    velocities = [np.zeros_like(p) for p in W + b]
    losses = []
    for epoch in range(epochs):
        order = None if orders is None else orders[epoch]
        losses.append(reference.train_epoch(W, b, acts, loss, X, Y, lr, batch_size,
                                            momentum, velocities, order))
    return losses


def assert_params_match(net, W, b, dtype):
    for got, want in zip(list(net.weights) + list(net.biases), W + b):
        assert got.dtype == dtype
        assert_close(got, want, dtype)


@pytest.mark.parametrize("batch_size", [1, 7, 64])
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("sizes", SHAPES, ids=lambda s: "-".join(map(str, s)))
def test_epochs_match_reference(sizes, config, batch_size, dtype):
    hidden, out, loss = config
    n = 20 if sizes[0] == 784 else 70
    net, X, Y, W, b, acts = make_case(sizes, hidden, out, loss, dtype, n=n)
    lr = 0.01 if sizes[0] == 784 else 0.1
    history = net.train(X, Y, epochs=2, lr=lr, batch_size=batch_size, shuffle=False)
    losses = reference_epochs(W, b, acts, loss, X, Y, 2, lr, batch_size, 0.0)
    assert_params_match(net, W, b, dtype)
    np.testing.assert_allclose(history.loss, losses, rtol=10 * (1e-4 if dtype == np.float32 else 1e-10))


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_momentum_matches_reference_across_calls(batch_size, dtype):
    net, X, Y, W, b, acts = make_case([4, 6, 3], "tanh", "softmax", "cross_entropy", dtype, n=90)
    velocities = [np.zeros_like(p) for p in W + b]
    for _ in range(3):  # velocities carry over between train() calls
        net.train(X, Y, epochs=1, lr=0.05, batch_size=batch_size, momentum=0.9, shuffle=False)
        reference.train_epoch(W, b, acts, "cross_entropy", X, Y, 0.05, batch_size, 0.9, velocities)
    assert_params_match(net, W, b, dtype)


@pytest.mark.parametrize("batch_size", [1, 7])
def test_shuffled_epochs_match_reference_given_the_same_order(batch_size):
    net, X, Y, W, b, acts = make_case([3, 5, 2], "sigmoid", "sigmoid", "mse", np.float64, n=50)
    net.train(X, Y, epochs=3, batch_size=batch_size, shuffle=True, seed=42)
    rng = np.random.default_rng(42)
    orders = [rng.permutation(50) for _ in range(3)]
    reference_epochs(W, b, acts, "mse", X, Y, 3, 0.1, batch_size, 0.0, orders)
    assert_params_match(net, W, b, np.float64)


def test_two_calls_of_one_epoch_equal_one_call_of_two(dtype):
    a, X, Y, *_ = make_case([3, 5, 2], "tanh", "sigmoid", "mse", dtype, n=40)
    b, *_ = make_case([3, 5, 2], "tanh", "sigmoid", "mse", dtype, n=40)
    for _ in range(2):
        a.train(X, Y, epochs=1, batch_size=4, momentum=0.5, shuffle=False)
    b.train(X, Y, epochs=2, batch_size=4, momentum=0.5, shuffle=False)
    np.testing.assert_array_equal(a.get_params(), b.get_params())


@pytest.mark.parametrize("sizes", [[2, 2, 1], [2, 4, 1]])
def test_xor_is_learned(sizes, dtype):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 1, 1, 0], dtype=float)
    net = cbackprop.Network(sizes, "sigmoid", dtype=dtype, seed=3)
    history = net.train(X, y, epochs=5000, lr=2.0, shuffle=True)
    assert net.loss(X, y) < 0.01
    assert history.loss[-1] < history.loss[0]
    np.testing.assert_array_equal(net.forward(X)[:, 0] > 0.5, y > 0.5)


def test_same_seed_gives_bit_identical_weights():
    X = np.random.default_rng(0).uniform(size=(100, 5))
    y = np.random.default_rng(1).integers(0, 3, 100)
    runs = []
    for _ in range(2):
        net = cbackprop.Network([5, 8, 3], ["relu", "softmax"], "cross_entropy", seed=7)
        net.train(X, y, epochs=3, batch_size=8, momentum=0.9)
        runs.append(net.get_params())
    np.testing.assert_array_equal(runs[0], runs[1])
    other = cbackprop.Network([5, 8, 3], ["relu", "softmax"], "cross_entropy", seed=8)
    assert not np.array_equal(other.get_params(), runs[0])


def test_zero_epochs_changes_nothing_and_history_is_per_epoch():
    net, X, Y, *_ = make_case([3, 4, 2], "sigmoid", "sigmoid", "mse", np.float64)
    before = net.get_params()
    assert len(net.train(X, Y, epochs=0)) == 0
    np.testing.assert_array_equal(net.get_params(), before)
    history = net.train(X, Y, epochs=4)
    assert len(history.loss) == 4 and len(history.epoch_time) == 4


def test_diverging_training_raises_and_restores_the_last_finite_weights():
    import copy
    import re
    net, X, Y, *_ = make_case([3, 4, 2], "linear", "linear", "mse", np.float64)
    replay = copy.deepcopy(net)
    with pytest.raises(FloatingPointError, match=r"epoch \d+") as info:
        net.train(X, Y, epochs=500, lr=0.5, shuffle=False)
    epoch = int(re.search(r"epoch (\d+)", str(info.value)).group(1))
    assert epoch > 1
    # the weights are those after the last epoch whose loss was finite
    replay.train(X, Y, epochs=epoch - 1, lr=0.5, shuffle=False)
    np.testing.assert_array_equal(net.get_params(), replay.get_params())
    assert np.isfinite(net.get_params()).all()


@pytest.mark.parametrize("n", [1, 2, 5])
@pytest.mark.parametrize("shuffle", [False, True])
def test_batch_larger_than_the_data(n, shuffle, dtype):
    # one batch holds everything: the same as batch_size=n (regression: the shuffled
    # gather path once wrote past its scratch buffer when n == 1)
    a, X, Y, *_ = make_case([200, 3, 5], "tanh", "sigmoid", "mse", dtype, n=n)
    b, *_ = make_case([200, 3, 5], "tanh", "sigmoid", "mse", dtype, n=n)
    a.train(X, Y, epochs=3, batch_size=32, shuffle=shuffle, seed=1)
    b.train(X, Y, epochs=3, batch_size=n, shuffle=shuffle, seed=1)
    np.testing.assert_array_equal(a.get_params(), b.get_params())
    one = cbackprop.Network([200, 3, 5], "tanh", seed=0, dtype=dtype)
    one.train(X[0], Y[0], epochs=2, batch_size=64)      # a single 1-D sample
    assert np.isfinite(one.get_params()).all()


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(1, 7), min_size=2, max_size=5),
       config=st.sampled_from(CONFIGS), dtype=st.sampled_from(DTYPES),
       n=st.integers(1, 25), batch_size=st.integers(1, 9), seed=st.integers(0, 1000))
def test_epoch_matches_reference_on_random_shapes(sizes, config, dtype, n, batch_size, seed):
    hidden, out, loss = config
    net, X, Y, W, b, acts = make_case(sizes, hidden, out, loss, dtype, n=n, seed=seed)
    net.train(X, Y, epochs=1, lr=0.1, batch_size=batch_size, shuffle=True, seed=seed)
    order = np.random.default_rng(seed).permutation(n)
    reference.train_epoch(W, b, acts, loss, X, Y, 0.1, batch_size, order=order)
    assert_params_match(net, W, b, dtype)


# -- online SGD of a wide first layer: W^(1) stepped a window of samples at a time --------------
# (src/_train.pyx online_window; exact in real arithmetic, equal to the sample-by-sample steps up
# to rounding, which the reference comparison bounds)

def window_size(net, optimizer="sgd", momentum=0.0, l2=0.0):
    from cbackprop._dispatch import train_kernels
    from cbackprop.optimizers import make_optimizer
    opt = make_optimizer(optimizer, momentum, False, net.dtype)
    return train_kernels.online_run(net._spec, opt.hyper(0.1, l2))[1]


def test_window_is_taken_by_plain_sgd_with_a_wide_first_layer_only():
    wide = cbackprop.Network([300, 5, 2], seed=0)
    assert window_size(wide) == 32
    assert window_size(wide, momentum=0.9) == 1
    assert window_size(wide, l2=1e-3) == 1
    assert window_size(wide, optimizer="adam") == 1
    assert window_size(cbackprop.Network([30, 5, 2], seed=0)) == 1


def check_online_epochs_against_reference(sizes, config, shuffle, dtype, n, lr):
    """Two epochs of online SGD with sample weights, shuffled or not, against the reference
    stepping the same samples in the same order; returns the trained network."""
    hidden, out, loss = config
    net, X, Y, W, b, acts = make_case(sizes, hidden, out, loss, dtype, n=n)
    weights = np.random.default_rng(5).uniform(0.5, 2.0, n).astype(dtype)
    history = net.train(X, Y, epochs=2, lr=lr, batch_size=1, shuffle=shuffle, seed=3,
                        sample_weight=weights)
    rng = np.random.default_rng(3)
    losses = []
    for _ in range(2):
        order = rng.permutation(n) if shuffle else None
        losses.append(reference.train_epoch(W, b, acts, loss, X, Y, lr, 1, order=order,
                                            sample_weight=weights))
    assert_params_match(net, W, b, dtype)
    np.testing.assert_allclose(history.loss, losses,
                               rtol=10 * (1e-4 if dtype == np.float32 else 1e-10))
    return net


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("sizes", [[300, 9, 4, 3], [256, 3]], ids=["300-9-4-3", "256-3"])
def test_windowed_online_epochs_match_reference(sizes, config, shuffle, dtype):
    # two whole windows and a part of one
    net = check_online_epochs_against_reference(sizes, config, shuffle, dtype, n=2 * 32 + 7,
                                                lr=0.01)
    assert window_size(net) == 32


def assert_same_bits_however_cut(monkeypatch, trained):
    """``trained()`` builds and trains a network; with calls of one step each, then with one
    call an epoch, its parameters must come out bit for bit the same."""
    from cbackprop import train as train_module
    runs = []
    for seconds in (1e-9, 1e9):
        monkeypatch.setattr(train_module, "CHUNK_SECONDS", seconds)
        runs.append(trained().get_params())
    np.testing.assert_array_equal(runs[0], runs[1])


# One hidden layer, 5 to 255 inputs: online plain SGD with the hidden units along the
# vectors (src/_train.pyx online_two_layer); hidden widths around the vector lengths (2, 4, 8
# and 16 units), so that padded units appear in every dtype and kernel level.
TWO_LAYER_SHAPES = [[5, 1, 2], [6, 8, 3], [7, 17, 1], [9, 33, 4], [64, 30, 10]]


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("sizes", TWO_LAYER_SHAPES, ids=lambda s: "-".join(map(str, s)))
def test_two_layer_online_epochs_match_reference(sizes, config, shuffle, dtype):
    lr = 0.01 if sizes[0] >= 64 else 0.05          # (a linear 64-30-10 diverges at 0.05)
    check_online_epochs_against_reference(sizes, config, shuffle, dtype, n=41, lr=lr)


# 64-30-10 takes online_two_layer, 2-8-1 online_small (where built)
@pytest.mark.parametrize("sizes", [[64, 30, 10], [2, 8, 1]], ids=["64-30-10", "2-8-1"])
def test_one_hidden_layer_runs_repeat_bit_for_bit_however_they_are_cut_into_calls(
        monkeypatch, sizes, dtype):
    def trained():
        net, X, Y, *_ = make_case(sizes, "sigmoid", "sigmoid", "mse", dtype, n=300)
        net.train(X, Y, epochs=2, lr=0.1, batch_size=1, shuffle=True, seed=1)
        return net
    assert_same_bits_however_cut(monkeypatch, trained)


def test_windowed_runs_repeat_bit_for_bit_however_they_are_cut_into_calls(monkeypatch, dtype):
    def trained():                      # (a step is a window here)
        net, X, Y, *_ = make_case([300, 6, 2], "tanh", "sigmoid", "mse", dtype, n=500)
        net.train(X, Y, epochs=2, lr=0.01, batch_size=1, shuffle=True, seed=1)
        return net
    assert_same_bits_however_cut(monkeypatch, trained)


# One hidden layer of sigmoid, relu or linear units, at most two vectors of doubles wide, and
# 1 to 4 inputs, under any output layer but softmax: online plain SGD with the hidden layer in
# vectors and the next sample's z^(2) from the previous sample's step (src/_train.pyx
# online_small). Hidden widths around the vector lengths of every kernel level (2 or 4
# doubles, 4 or 8 floats); 2 * 64 + 7 samples
# cross two runs.
SMALL_SHAPES = [[1, 1, 1], [2, 3, 2], [2, 4, 1], [2, 8, 1], [3, 5, 10], [4, 7, 3]]
SMALL_CONFIGS = [c for c in CONFIGS if c[0] in ("sigmoid", "relu", "linear")] + [
    ("sigmoid", "tanh", "mse"), ("relu", "linear", "mse")]


def small_lanes(dtype):
    """online_small's vector length at this kernel level (0 where it is not built)."""
    from cbackprop._dispatch import train_kernels
    empty = np.zeros(0, dtype)
    return train_kernels.small_activation(0, empty, empty.copy(), empty.copy())


def run_size(net, optimizer="sgd", momentum=0.0, l2=0.0):
    from cbackprop._dispatch import train_kernels
    from cbackprop.optimizers import make_optimizer
    opt = make_optimizer(optimizer, momentum, False, net.dtype)
    return train_kernels.online_run(net._spec, opt.hyper(0.1, l2))[0]


def test_small_path_is_taken_by_plain_sgd_of_one_small_hidden_layer_only():
    if not small_lanes(np.float64):
        pytest.skip("online_small is not built here (no GCC vector types)")
    small = cbackprop.Network([2, 4, 1], seed=0)
    assert run_size(small) == 64
    assert run_size(cbackprop.Network([4, 4, 3], "relu", seed=0)) == 64
    assert run_size(small, momentum=0.9) == 1
    assert run_size(small, l2=1e-3) == 1
    assert run_size(small, optimizer="adam") == 1
    assert run_size(cbackprop.Network([2, 4, 1], "tanh", seed=0)) == 1
    assert run_size(cbackprop.Network([2, 4, 3], ["sigmoid", "softmax"], seed=0)) == 1
    assert run_size(cbackprop.Network([5, 4, 1], seed=0)) == 1          # online_two_layer's
    assert run_size(cbackprop.Network([2, 4, 4, 1], seed=0)) == 1
    assert run_size(cbackprop.Network([2, 2 * small_lanes(np.float64), 1], seed=0)) == 64
    assert run_size(cbackprop.Network([2, 2 * small_lanes(np.float64) + 1, 1], seed=0)) == 1


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("config", SMALL_CONFIGS, ids=lambda c: "-".join(c))
@pytest.mark.parametrize("sizes", SMALL_SHAPES, ids=lambda s: "-".join(map(str, s)))
def test_small_online_epochs_match_reference(sizes, config, shuffle, dtype):
    net = check_online_epochs_against_reference(sizes, config, shuffle, dtype, n=2 * 64 + 7,
                                                lr=0.05)
    if small_lanes(np.float64) and sizes[1] <= 2 * small_lanes(np.float64) and \
            config[1] != "softmax":
        assert run_size(net) == 64


def test_the_small_path_recomputes_z_when_the_inputs_product_overflows(dtype):
    # x . x_next overflows although every input and step is finite: the next z^(2) must come
    # from W^(1) x + b^(1), not from A - eta (x . x_next + 1) delta^(2) = inf * 0 = NaN
    big = 5e19 if dtype == np.float32 else 1e155
    net, X, Y, W, b, acts = make_case([2, 3, 1], "linear", "sigmoid", "mse", dtype, n=40)
    X = (np.random.default_rng(0).uniform(1, 2, X.shape) * big).astype(dtype)
    net.weights = [np.full((3, 2), 1e-30 * (1 / big), dtype), net.weights[1]]
    W[0] = net.weights[0].astype(np.float64)
    history = net.train(X, Y, epochs=1, lr=0.1, batch_size=1, shuffle=False)
    losses = reference.train_epoch(W, b, acts, "mse", X, Y, 0.1, 1)
    assert np.isfinite(net.get_params()).all()
    assert_params_match(net, W, b, dtype)
    np.testing.assert_allclose(history.loss, [losses], rtol=1e-4)


def test_small_path_activation_is_accurate(dtype):
    # the vector sigmoid (its exp's polynomial by Estrin's scheme) within 3 ulp of the exact
    # value in long double over the whole range, subnormals included; relu and linear exact;
    # f'(z) from h as the row path computes it
    from cbackprop._dispatch import train_kernels
    lanes = small_lanes(dtype)
    if not lanes:
        pytest.skip("online_small is not built here (no GCC vector types)")
    z = np.concatenate([np.linspace(-800, 800, 20000), np.linspace(-40, 40, 20000),
                        [0.0] * lanes]).astype(dtype)
    z = z[:len(z) // lanes * lanes]
    h, fp = np.empty_like(z), np.empty_like(z)
    train_kernels.small_activation(0, z, h, fp)
    exact = 1 / (1 + np.exp(-z.astype(np.longdouble)))
    finfo = np.finfo(dtype)
    ulp = np.maximum(np.spacing(exact.astype(dtype)).astype(np.longdouble),
                     finfo.smallest_subnormal)
    assert np.max(np.abs(h - exact) / ulp) <= 3
    np.testing.assert_array_equal(fp, h * (1 - h))
    for code, expected, derivative in ((2, np.maximum(z, 0), (z > 0).astype(dtype)),
                                       (3, z, np.ones_like(z))):
        train_kernels.small_activation(code, z, h, fp)
        np.testing.assert_array_equal(h, expected)
        np.testing.assert_array_equal(fp, derivative)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("sizes, batch_size, n", [([300, 1], 2, 3), ([300, 4, 2], 64, 65)])
def test_a_last_batch_of_one_sample_on_a_wide_network(sizes, batch_size, n, shuffle):
    # the last compiled call gets one sample, which trains online (the window path): its
    # scratch must be in the buffer sized for the batches
    net, X, Y, W, b, acts = make_case(sizes, "tanh", "sigmoid", "mse", np.float64, n=n)
    net.train(X, Y, epochs=2, lr=0.05, batch_size=batch_size, shuffle=shuffle, seed=4)
    rng = np.random.default_rng(4)
    for _ in range(2):
        order = rng.permutation(n) if shuffle else None
        reference.train_epoch(W, b, acts, "mse", X, Y, 0.05, batch_size, order=order)
    assert_params_match(net, W, b, np.float64)


def test_the_window_steps_sample_by_sample_when_the_gram_matrix_overflows(dtype):
    # x . x overflows although every input and every step is finite: the saturated sigmoid's
    # zero delta must not become -eta * inf * 0 = NaN
    big = 5e18 if dtype == np.float32 else 1e155
    net, X, Y, W, b, acts = make_case([300, 1], "sigmoid", "sigmoid", "mse", dtype, n=40)
    X = (np.random.default_rng(0).uniform(1, 2, X.shape) * big).astype(dtype)
    history = net.train(X, Y, epochs=1, lr=0.1, batch_size=1, shuffle=False)
    losses = reference_epochs(W, b, acts, "mse", X, Y, 1, 0.1, 1, 0.0)
    assert np.isfinite(history.loss).all()
    assert_params_match(net, W, b, dtype)
    np.testing.assert_allclose(history.loss, losses, rtol=1e-4)


def test_rprop_repeats_bit_for_bit_however_its_gradient_is_cut_into_calls(monkeypatch):
    rng = np.random.default_rng(0)
    X, Y = rng.uniform(-1, 1, (3000, 7)), rng.uniform(0, 1, (3000, 2))

    def trained():                      # (Rprop's gradient calls are cut into rows)
        net = cbackprop.Network([7, 5, 2], seed=0)
        net.train(X, Y, epochs=3, optimizer="rprop")
        return net
    assert_same_bits_however_cut(monkeypatch, trained)


def test_a_trailing_one_sample_batch_repeats_bit_for_bit_however_calls_are_cut(monkeypatch):
    def trained():
        net, X, Y, *_ = make_case([384, 5, 3], "tanh", "sigmoid", "mse", np.float64, n=33)
        net.train(X, Y, epochs=2, lr=0.05, batch_size=2, shuffle=True, seed=2)
        return net
    assert_same_bits_however_cut(monkeypatch, trained)


def test_train_epoch_refuses_a_sequential_flag_that_order_contradicts():
    from cbackprop._dispatch import train_kernels
    net, X, Y, *_ = make_case([300, 4, 2], "tanh", "sigmoid", "mse", np.float64, n=40)
    hyper = cbackprop.optimizers.make_optimizer("sgd", 0.0, False, np.float64).hyper(0.1, 0.0)
    work = np.empty(train_kernels.workspace_size(net._spec, 1, 40, True))
    params_before = net.get_params()
    for order in (np.random.default_rng(0).permutation(40), np.arange(10, 50)):
        with pytest.raises(ValueError, match="order"):
            train_kernels.train_epoch(net._spec, net._params, net._state, X, Y,
                                      np.empty(0), order.astype(np.intp), True, 1, hyper, 0, 0,
                                      work)
    np.testing.assert_array_equal(net.get_params(), params_before)


@pytest.mark.parametrize("bad, message", [
    ("X float32", "X must be float64"), ("Y strided", "Y must be C-contiguous"),
    ("Y byte-swapped", "Y must be C-contiguous, aligned and in native byte order"),
    ("X unaligned", "X must be C-contiguous, aligned"), ("order int32", "order must be"),
    ("hyper float32", "hyper must be"), ("spec int32", "spec must be"),
    ("params read-only", "params is read-only"), ("work read-only", "work is read-only"),
    ("state 1-D", "state must have 2 dimensions"), ("work float32", "work must be float64"),
    ("X 1-D", "X must have 2 dimensions"), ("state short", "state must have shape"),
    ("X narrow", "X has the wrong number of columns"), ("Y short", "Y must have X's rows"),
    ("weights short", "weights must have X's rows"), ("spec short", "spec is not"),
    ("params short", "params has the wrong length"), ("order outside", "order holds a row"),
    ("X list", "X"),
])
def test_train_epoch_refuses_arrays_of_the_wrong_type_or_layout(bad, message):
    # train_epoch takes ndarrays and checks them itself (src/_arrays.pxd) with their shapes'
    # relations: the kernels must never read a buffer as something it is not, or past it
    from cbackprop._dispatch import train_kernels
    net, X, Y, *_ = make_case([3, 4, 2], "tanh", "sigmoid", "mse", np.float64, n=10)
    hyper = cbackprop.optimizers.make_optimizer("sgd", 0.0, False, np.float64).hyper(0.1, 0.0)
    args = dict(spec=net._spec, params=net._params, state=net._state, X=X, Y=Y,
                weights=np.empty(0), order=np.arange(10, dtype=np.intp), hyper=hyper,
                work=np.zeros(train_kernels.workspace_size(net._spec, 1, 10, False)))
    name, change = bad.split(" ", 1)
    arr = args[name]
    if change in ("float32", "int32"):
        arr = arr.astype(change)
    elif change == "strided":
        arr = np.repeat(arr, 2, axis=0)[::2]
    elif change == "byte-swapped":
        arr = arr.astype(arr.dtype.newbyteorder())
    elif change == "unaligned":
        raw = np.zeros(arr.nbytes + 1, np.uint8)[1:]
        arr = raw.view(arr.dtype).reshape(arr.shape)
        arr[...] = args[name]
    elif change == "read-only":
        arr = arr.copy()
        arr.flags.writeable = False
    elif change == "1-D":
        arr = arr.reshape(-1)
    elif change == "short" and name == "state":
        arr = np.zeros((2, arr.shape[1] - 1))
    elif change == "short" and name in ("Y", "weights"):
        arr = np.zeros((9,) + (arr.shape[1:] if name == "Y" else ()))
    elif change == "short":
        arr = arr[:-1].copy()
    elif change == "narrow":
        arr = arr[:, :2].copy()
    elif change == "outside":
        arr = np.array([0, 3, 10, 1], dtype=np.intp)
    elif change == "list":
        arr = arr.tolist()
    args[name] = arr
    params_before, state_before = net._params.copy(), net._state.copy()
    with pytest.raises(TypeError if change == "list" else ValueError, match=message):
        train_kernels.train_epoch(args["spec"], args["params"], args["state"], args["X"],
                                  args["Y"], args["weights"], args["order"], False, 1,
                                  args["hyper"], 0, 0, args["work"])
    np.testing.assert_array_equal(net._params, params_before)
    np.testing.assert_array_equal(net._state, state_before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unaligned_inputs_are_copied_not_refused(dtype):
    # an array viewed from a buffer at an odd offset is C-contiguous but not aligned: the
    # compiled checks refuse it (src/_arrays.pxd), so the Python layer copies it first
    net = cbackprop.Network([3, 4, 2], seed=0, dtype=dtype)
    rng = np.random.default_rng(0)
    X, Y = rng.uniform(size=(20, 3)).astype(dtype), rng.uniform(size=(20, 2)).astype(dtype)

    def unaligned(a):
        view = np.zeros(a.nbytes + 1, np.uint8)[1:].view(a.dtype).reshape(a.shape)
        view[...] = a
        assert not view.flags.aligned
        return view

    a, b = copy.deepcopy(net), copy.deepcopy(net)
    a.train(X, Y, epochs=2, shuffle=False)
    b.train(unaligned(X), unaligned(Y), epochs=2, shuffle=False)
    np.testing.assert_array_equal(a.get_params(), b.get_params())
    assert a.loss(X, Y) == b.loss(unaligned(X), unaligned(Y))
    np.testing.assert_array_equal(a.forward(X), b.forward(unaligned(X)))


# own_gemm (src/_blas.pxd) takes the first layer's products of mini-batch plain SGD when BLAS
# runs one thread. Hidden widths around one and two vectors of either dtype (8 and 16 lanes;
# the last vector masked), inputs around its 8-row tiles, batches around them, a short last
# batch; gathered (shuffled) rows or slices.
OWN_GEMM_SHAPES = [[1, 1, 1], [3, 5, 2], [9, 8, 3], [7, 16, 1], [17, 17, 4], [8, 31, 2],
                   [33, 32, 5], [20, 33, 1], [70, 48, 3], [300, 128, 10],
                   [9, 17] + [5] * 33 + [3]]     # (34 weight layers: past the layers' bits)


def test_own_gemm_is_built_at_the_avx512_level():
    # (and wherever the compiler targets AVX-512: CBACKPROP_NATIVE=1 builds one level so;
    # not in a CBACKPROP_PLAIN_C build, CI's job for compilers without GCC's vector types)
    from cbackprop._dispatch import cpu_features, kernel_level, train_kernels
    if kernel_level == "avx512" and not train_kernels.PLAIN_C:
        assert train_kernels.OWN_GEMM
    if train_kernels.OWN_GEMM:
        assert cpu_features()["AVX512F"]


def sgd_epoch(net, X, Y, order, batch_size, blas_one_thread, lr=0.1, momentum=0.0, team=1,
              weights=None):
    """One direct train_epoch call of SGD: (loss sum, correct, rows finite)."""
    from cbackprop._dispatch import train_kernels
    hyper = cbackprop.optimizers.make_optimizer("sgd", momentum, False, net.dtype).hyper(lr, 0.0)
    sequential = bool(np.array_equal(order, np.arange(len(order)) + order[0]))
    work = np.empty(train_kernels.workspace_size(net._spec, batch_size, len(order), sequential),
                    net.dtype)
    weights = np.empty(0, net.dtype) if weights is None else weights
    return train_kernels.train_epoch(net._spec, net._params, net._state, X, Y, weights, order,
                                     sequential, batch_size, hyper, net._steps, 1, work,
                                     blas_one_thread, team)


@pytest.mark.parametrize("sizes", OWN_GEMM_SHAPES, ids=lambda s: "-".join(map(str, s)))
@pytest.mark.parametrize("batch_size, n", [(2, 13), (8, 40), (9, 31), (64, 150)])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_own_gemm_epochs_match_reference_and_blas(sizes, batch_size, n, shuffle, dtype):
    net, X, Y, W, b, acts = make_case(sizes, "sigmoid", "softmax" if sizes[-1] > 1 else
                                      "sigmoid", "mse", dtype, n=n)
    order = (np.random.default_rng(3).permutation(n) if shuffle else np.arange(n)).astype(np.intp)
    blas = copy.deepcopy(net)
    for epoch in range(2):
        got = sgd_epoch(net, X, Y, order, batch_size, True)
        expected = sgd_epoch(blas, X, Y, order, batch_size, False)
        ref_loss = reference.train_epoch(W, b, acts, "mse", X, Y, 0.1, batch_size, order=order)
        assert got[1:] == expected[1:]
        assert_close(got[0], expected[0], dtype)
        assert_close(got[0] / n, ref_loss, dtype)
        assert_close(net.get_params(), blas.get_params(), dtype)
        assert_params_match(net, W, b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_own_gemm_stops_at_a_non_finite_batch_with_the_steps_before_it_taken(dtype):
    # the kernel holds W^(1) transposed while it runs: a stop at a batch of bad rows must
    # still leave params holding the steps of the batches before it
    net, X, Y, *_ = make_case([20, 33, 3], "sigmoid", "sigmoid", "mse", dtype, n=60)
    X[35, 4] = np.nan                                # the fifth batch of 8
    blas, four = copy.deepcopy(net), copy.deepcopy(net)
    order = np.arange(60, dtype=np.intp)
    assert sgd_epoch(net, X, Y, order, 8, True)[2] is False
    assert sgd_epoch(blas, X, Y, order, 8, False)[2] is False
    assert_close(net.get_params(), blas.get_params(), dtype)
    assert sgd_epoch(four, X, Y, order[:32], 8, False)[2] is True
    assert_close(net.get_params(), four.get_params(), dtype)   # four batches stepped


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("bad", [0, 97])
@pytest.mark.parametrize("path", sorted(ONLINE_PATHS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_online_paths_stop_at_the_first_non_finite_row_of_x(path, bad, value, shuffle, dtype):
    # each online kernel checks a sample's row (online_window: a window's rows) before
    # stepping on it and stops there, the samples before it stepped as in a call that ends
    # before it (none for the first row: a zero step on it first would make NaN of 0 * inf)
    from cbackprop._dispatch import train_kernels
    sizes, run = ONLINE_PATHS[path]
    if path == "small" and not small_lanes(np.float64):
        pytest.skip("online_small is not built here (no GCC vector types)")
    n = 150
    net, X, Y, *_ = make_case(sizes, "sigmoid", "sigmoid", "mse", dtype, n=n)
    hyper = cbackprop.optimizers.make_optimizer("sgd", 0.0, False, net.dtype).hyper(0.1, 0.0)
    assert tuple(train_kernels.online_run(net._spec, hyper)) == run
    order = (np.random.default_rng(5).permutation(n) if shuffle else np.arange(n)).astype(np.intp)
    X[order[bad], sizes[0] - 1] = value       # 97: within online_small's second run
    stopped, before = copy.deepcopy(net), copy.deepcopy(net)
    assert sgd_epoch(stopped, X, Y, order, 1, False)[2] is False
    # the same steps as a call over the rows before it (online_window: before its window)
    done = bad // run[1] * run[1]
    if done:
        assert sgd_epoch(before, X, Y, order[:done], 1, False)[2] is True
    np.testing.assert_array_equal(stopped.get_params(), before.get_params())
    good = copy.deepcopy(net)
    X[order[bad], sizes[0] - 1] = 0.5
    assert sgd_epoch(good, X, Y, order, 1, False)[2] is True
    assert np.isfinite(good.get_params()).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_train_takes_own_gemm_exactly_when_blas_runs_one_thread(dtype, monkeypatch):
    from threadpoolctl import threadpool_limits
    from cbackprop._dispatch import train_kernels
    from cbackprop._threads import blas_threads
    # (no team of threads, which 784-128-10 at batch 64 takes with two: see the team's tests)
    monkeypatch.setenv("CBACKPROP_NUM_THREADS", "1")
    net, X, Y, *_ = make_case([784, 128, 10], "sigmoid", "sigmoid", "mse", dtype, n=200)
    for threads in (1, 2):
        with threadpool_limits(limits=threads):
            if blas_threads() != threads:
                continue                              # (a machine of one CPU)
            trained, direct = copy.deepcopy(net), copy.deepcopy(net)
            calls = train_kernels.own_gemm_call_count()
            trained.train(X, Y, epochs=1, lr=0.1, batch_size=64, shuffle=False)
            taken = train_kernels.own_gemm_call_count() - calls
            assert (taken > 0) == (train_kernels.OWN_GEMM and threads == 1)
            sgd_epoch(direct, X, Y, np.arange(200, dtype=np.intp), 64, threads == 1)
        np.testing.assert_array_equal(trained.get_params(), direct.get_params())


def test_own_gemm_is_taken_only_for_a_layer_within_its_size_limit():
    # (src/_blas.pxd OWN_GEMM_MAX_BYTES, 1 MB: 1000x256 float32 is under it, 1100x256 over;
    # each layer is taken or not on its own W's size; the output layer only if it is the
    # first, src/_train.pyx epoch_of)
    from cbackprop._dispatch import train_kernels
    for sizes, taken in (([1000, 256], train_kernels.OWN_GEMM), ([1100, 256], False),
                         ([1100, 256, 64, 2], train_kernels.OWN_GEMM),
                         ([1100, 256, 2], False)):
        net, X, Y, *_ = make_case(sizes, "sigmoid", "sigmoid", "mse", np.float32, n=32)
        own, blas = copy.deepcopy(net), copy.deepcopy(net)
        calls = train_kernels.own_gemm_call_count()
        sgd_epoch(own, X, Y, np.arange(32, dtype=np.intp), 16, True)
        assert train_kernels.own_gemm_call_count() - calls == taken
        sgd_epoch(blas, X, Y, np.arange(32, dtype=np.intp), 16, False)
        assert train_kernels.own_gemm_call_count() - calls == taken
        assert_close(own.get_params(), blas.get_params(), np.float32)


# A team of threads (src/_train.pyx train_by_team) splits each hidden layer's units over its
# members in blocks of 16, the output layer by its inputs (the last hidden layer's units):
# hidden widths below, at and past a block, and teams with more members than blocks (members
# that own no unit); several hidden layers; an output layer wider than every hidden one (its
# partial products the widest); hidden layers past own_gemm's layer bits (src/_blas.pxd
# OWN_GEMM_MAX_LAYERS); a short last batch; gathered rows or slices; momentum; sample
# weights; softmax.
TEAM_SHAPES = [[20, 40, 3], [30, 16, 1], [9, 17, 33, 5, 2], [5, 100, 70, 4], [6, 40, 90],
               [9] + [17] * 34 + [3]]


@pytest.mark.parametrize("sizes", TEAM_SHAPES, ids=lambda s: "-".join(map(str, s)))
@pytest.mark.parametrize("team", [2, 3])
@pytest.mark.parametrize("batch_size, n", [(8, 40), (9, 31), (64, 150)])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("dtype", DTYPES)
def test_team_epochs_match_one_thread_and_reference(sizes, team, batch_size, n, shuffle,
                                                    momentum, dtype):
    out = "softmax" if sizes[-1] > 1 else "sigmoid"
    net, X, Y, W, b, acts = make_case(sizes, "tanh", out, "mse", dtype, n=n)
    order = (np.random.default_rng(3).permutation(n) if shuffle else np.arange(n)).astype(np.intp)
    weights = np.random.default_rng(4).uniform(0.5, 2, n).astype(dtype) if shuffle else None
    alone = copy.deepcopy(net)
    velocities = [np.zeros_like(p) for p in W + b]
    from cbackprop._dispatch import train_kernels
    for epoch in range(2):
        calls = train_kernels.own_gemm_call_count()
        got = sgd_epoch(net, X, Y, order, batch_size, False, 0.1, momentum, team, weights)
        # plain SGD's members take their rows of hidden layers by own_gemm where it is built
        assert (train_kernels.own_gemm_call_count() - calls == 1) == (
            train_kernels.OWN_GEMM and momentum == 0)
        expected = sgd_epoch(alone, X, Y, order, batch_size, False, 0.1, momentum, 1, weights)
        ref_loss = reference.train_epoch(W, b, acts, "mse", X, Y, 0.1, batch_size, momentum,
                                         velocities, order, sample_weight=weights)
        assert got[2] is True
        if dtype == np.float64:
            assert got[1] == expected[1]
        assert_close(got[0], expected[0], dtype)
        assert_close(got[0] / n, ref_loss, dtype)
        assert_close(net.get_params(), alone.get_params(), dtype)
        assert_params_match(net, W, b, dtype)
        assert_close(net._state, alone._state, dtype)       # momentum's velocities


@pytest.mark.parametrize("row", [33, 38])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_team_stops_at_a_non_finite_batch_with_the_steps_before_it_taken(row, shuffle, dtype):
    # each member checks its share of a batch's rows (of 8 with two members: rows 0-3 and
    # 4-7) and all stop before their first step if any found one: row 33 is member 0's,
    # row 38 member 1's, in the fifth batch
    net, X, Y, *_ = make_case([20, 40, 3], "sigmoid", "sigmoid", "mse", dtype, n=60)
    order = (np.random.default_rng(3).permutation(60) if shuffle else np.arange(60)).astype(np.intp)
    X[order[row], 4] = np.nan
    four = copy.deepcopy(net)
    assert sgd_epoch(net, X, Y, order, 8, False, team=2)[2] is False
    assert sgd_epoch(four, X, Y, order[:32], 8, False, team=2)[2] is True
    np.testing.assert_array_equal(net.get_params(), four.get_params())
    X[order[row], 4] = 0.5
    assert sgd_epoch(net, X, Y, order, 8, False, team=2)[2] is True
    assert np.isfinite(net.get_params()).all()


@pytest.mark.parametrize("team_size", [0, -1, 65])
def test_train_epoch_refuses_a_team_size_out_of_range(team_size):
    net, X, Y, *_ = make_case([20, 40, 3], "sigmoid", "sigmoid", "mse", np.float64, n=16)
    before = net.get_params()
    with pytest.raises(ValueError, match="team_size must be 1 to 64"):
        sgd_epoch(net, X, Y, np.arange(16, dtype=np.intp), 8, False, team=team_size)
    np.testing.assert_array_equal(net.get_params(), before)


def test_team_size_follows_the_threads_the_cpus_blas_and_the_widest_hidden_layer(monkeypatch):
    import os
    from cbackprop._threads import team_size
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(100)), raising=False)
    monkeypatch.setenv("CBACKPROP_NUM_THREADS", "2")
    assert team_size([784, 512, 512, 10]) == 2
    assert team_size([784, 512, 512, 10], 128, blas=1) == 1       # BLAS held at one thread
    assert team_size([784, 16, 10]) == 1            # one block of 16 units
    assert team_size([784, 17, 10]) == 2
    assert team_size([784, 10]) == 1                # no hidden layer
    monkeypatch.setenv("CBACKPROP_NUM_THREADS", "100")
    assert team_size([784, 4096, 10]) == 64
    assert team_size([784, 4096, 10], 128, blas=8) == 8
    # partial products of 2 * members * 2048 rows * 4096 units in float64 within 256 MB
    assert team_size([784, 4096, 10], 2048) == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert team_size([784, 4096, 10]) == 3          # the CPUs this process may run on
    monkeypatch.setenv("CBACKPROP_NUM_THREADS", "1")
    assert team_size([784, 512, 512, 10]) == 1


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("dtype", DTYPES)
def test_train_takes_the_team_for_a_large_network_when_it_may_run_threads(monkeypatch,
                                                                          momentum, dtype):
    # 784-512-10 at batch 64: 25.7M multiply-adds in the hidden layer's gemm, past TEAM_GEMM.
    # train() passes the team to the kernel with BLAS lowered to one thread for the call,
    # and BLAS gets its count back afterwards; not with CBACKPROP_NUM_THREADS=1, not when
    # BLAS is held at one thread, not for Adam.
    from threadpoolctl import threadpool_limits
    import cbackprop.train as train_module
    from cbackprop._threads import TEAM_GEMM, blas_threads
    assert 64 * 784 * 512 >= TEAM_GEMM
    kernels = train_module._train
    seen = []

    class Spy:
        def __getattr__(self, name):
            return getattr(kernels, name)

        def train_epoch(self, *args):
            seen.append((args[-1], blas_threads()))
            return kernels.train_epoch(*args)

    monkeypatch.setattr(train_module, "_train", Spy())
    net, X, Y, *_ = make_case([784, 512, 10], "sigmoid", "sigmoid", "mse", dtype, n=130)
    order = np.arange(130, dtype=np.intp)
    for threads, blas, team in ((2, 2, 2), (1, 2, 1), (2, 1, 1)):
        monkeypatch.setenv("CBACKPROP_NUM_THREADS", str(threads))
        with threadpool_limits(limits=blas):
            if blas_threads() != blas:
                continue                              # (BLAS's count is not ours to set)
            seen.clear()
            trained, direct = copy.deepcopy(net), copy.deepcopy(net)
            trained.train(X, Y, epochs=1, lr=0.1, batch_size=64, momentum=momentum,
                          shuffle=False)
            assert seen and all(call == (team, 1 if team > 1 else blas) for call in seen)
            assert blas_threads() == blas
            # (the team's members call BLAS with one thread, as train() sets it)
            with threadpool_limits(limits=1 if team > 1 else blas):
                sgd_epoch(direct, X, Y, order, 64, train_module._train.OWN_GEMM and
                          blas_threads() == 1, 0.1, momentum, team)
            np.testing.assert_array_equal(trained.get_params(), direct.get_params())
    monkeypatch.setenv("CBACKPROP_NUM_THREADS", "2")
    with threadpool_limits(limits=2):
        seen.clear()
        copy.deepcopy(net).train(X, Y, epochs=1, lr=0.01, batch_size=64, optimizer="adam",
                                 shuffle=False)
        assert seen and all(call[0] == 1 for call in seen)     # Adam: no team
