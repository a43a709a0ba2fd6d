"""Bad input: a clear Python exception naming the problem, and nothing changed."""

import numpy as np
import pytest

import cbackprop


@pytest.fixture
def net():
    return cbackprop.Network([3, 4, 2], "sigmoid", seed=0)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.uniform(size=(10, 3)), rng.uniform(size=(10, 2))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(sizes=[3]), ValueError, "at least two"),
    (dict(sizes=[3, 0, 2]), ValueError, r"sizes\[1\]"),
    (dict(sizes=[3, 2.5, 2]), TypeError, r"sizes\[1\]"),
    (dict(sizes=5), TypeError, "sequence"),
    (dict(sizes=[3, 4, 2], activations="swish"), ValueError, "unknown activation 'swish'"),
    (dict(sizes=[3, 4, 2], activations=["sigmoid"]), ValueError, "2 weight layers"),
    (dict(sizes=[3, 4, 2], activations=["softmax", "sigmoid"]), ValueError, "softmax"),
    (dict(sizes=[3, 4, 2], loss="hinge"), ValueError, "unknown loss 'hinge'"),
    (dict(sizes=[3, 4, 2], activations="linear", loss="cross_entropy"), ValueError, "cross_entropy"),
    (dict(sizes=[3, 4, 2], activations=["relu", "tanh"], loss="cross_entropy"), ValueError, "tanh"),
    (dict(sizes=[3, 4, 2], dtype=np.float16), TypeError, "float16"),
    (dict(sizes=[3, 4, 2], dtype=np.int32), TypeError, "dtype"),
    (dict(sizes=[100_000, 100_000]), ValueError, "parameters"),
    (dict(sizes=[2**31 - 1] * 5), ValueError, "parameters"),
    (dict(sizes=[True, 2]), TypeError, r"sizes\[0\]"),
])
def test_bad_configuration(kwargs, error, match):
    with pytest.raises(error, match=match):
        cbackprop.Network(**kwargs)


def bad_calls(data):
    X, Y = data
    X_nan = X.copy(); X_nan[3, 1] = np.nan
    Y_inf = Y.copy(); Y_inf[0, 0] = np.inf
    return [
        ("wrong feature count", lambda n: n.train(X[:, :2], Y), ValueError, "2 features"),
        ("length mismatch", lambda n: n.train(X, Y[:7]), ValueError, "10 samples but Y has 7"),
        ("nan in X", lambda n: n.train(X_nan, Y), ValueError, "X contains NaN"),
        ("inf in Y", lambda n: n.train(X, Y_inf), ValueError, "Y contains NaN or inf"),
        ("empty X", lambda n: n.train(X[:0], Y[:0]), ValueError, "empty"),
        ("text X", lambda n: n.train(X.astype(str), Y), TypeError, "real numbers"),
        ("object X", lambda n: n.forward(np.array([[1, "a", None]], dtype=object)), TypeError, "X"),
        ("label out of range", lambda n: n.train(X, np.arange(10) % 3), ValueError, "label 2"),
        ("negative label", lambda n: n.train(X, -np.ones(10, int)), ValueError, "label -1"),
        ("float 1-D targets", lambda n: n.train(X, np.zeros(10)), ValueError, "integer class"),
        ("3-D X", lambda n: n.forward(X[None]), ValueError, "2-D"),
        ("lr zero", lambda n: n.train(X, Y, lr=0), ValueError, "lr"),
        ("lr nan", lambda n: n.train(X, Y, lr=float("nan")), ValueError, "lr"),
        ("lr inf", lambda n: n.train(X, Y, lr=float("inf")), ValueError, "lr"),
        ("lr negative", lambda n: n.train(X, Y, lr=-0.1), ValueError, "lr"),
        ("lr string", lambda n: n.train(X, Y, lr="0.1"), TypeError, "lr"),
        ("batch_size 0", lambda n: n.train(X, Y, batch_size=0), ValueError, "batch_size"),
        ("batch_size float", lambda n: n.train(X, Y, batch_size=2.0), TypeError, "batch_size"),
        ("epochs negative", lambda n: n.train(X, Y, epochs=-1), ValueError, "epochs"),
        ("momentum 1", lambda n: n.train(X, Y, momentum=1.0), ValueError, "momentum"),
        ("momentum negative", lambda n: n.train(X, Y, momentum=-0.1), ValueError, "momentum"),
        ("weights wrong shape", lambda n: n.weights.__setitem__(0, np.zeros((3, 4))), ValueError, r"\(4, 3\)"),
        ("weights nan", lambda n: n.weights.__setitem__(1, np.full((2, 4), np.nan)), ValueError, "NaN"),
        ("weights list length", lambda n: setattr(n, "weights", [np.zeros((4, 3))]), ValueError, "2 arrays"),
        ("weights list bad second", lambda n: setattr(n, "weights", [np.ones((4, 3)), np.ones((3, 4))]),
         ValueError, r"weights\[1\]"),
        ("biases wrong shape", lambda n: setattr(n, "biases", [np.zeros(4), np.zeros(3)]), ValueError, r"biases\[1\]"),
        ("loss Y missing column", lambda n: n.loss(X, Y[:, :1]), ValueError, "1 columns"),
        ("gradients nan", lambda n: n.gradients(X_nan, Y), ValueError, "NaN"),
        ("seed negative", lambda n: n.train(X, Y, seed=-1), ValueError, "seed"),
        ("lr overflows float32", lambda n: n.train(X, Y, lr=np.longdouble("1e400")), ValueError, "lr"),
        ("momentum rounds to 1", lambda n: n.train(X, Y, momentum=np.longdouble(1) - np.longdouble(1e-19)),
         ValueError, "momentum"),
    ]


@pytest.mark.parametrize("case", range(31))
def test_bad_input_raises_and_changes_nothing(net, data, case):
    calls = bad_calls(data)
    assert len(calls) == 31
    name, call, error, match = calls[case]
    X_before, Y_before = data[0].copy(), data[1].copy()
    params = net.get_params()
    with pytest.raises(error, match=match):
        call(net)
    np.testing.assert_array_equal(net.get_params(), params)
    np.testing.assert_array_equal(data[0], X_before)
    np.testing.assert_array_equal(data[1], Y_before)


def test_cross_entropy_targets_outside_unit_interval():
    net = cbackprop.Network([2, 3], "softmax", "cross_entropy")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        net.train(np.zeros((2, 2)), np.array([[2.0, -1.0, 0.0]] * 2))


def test_non_contiguous_and_other_dtypes_are_converted_not_modified(dtype):
    net = cbackprop.Network([3, 4, 2], "tanh", dtype=dtype, seed=0)
    rng = np.random.default_rng(0)
    big = rng.uniform(size=(20, 6))
    X_strided = big[::2, ::2]                      # non-contiguous view
    X_fortran = np.asfortranarray(big[:10, :3])
    X_int = (big[:10, :3] * 10).astype(np.int16)
    Y = rng.integers(0, 2, 10)
    for X in (X_strided, X_fortran, X_int, X_strided.astype(np.float32)):
        before = X.copy()
        expected = net.forward(np.ascontiguousarray(X, dtype=dtype))
        np.testing.assert_array_equal(net.forward(X), expected)
        net.train(X, Y, epochs=1)
        np.testing.assert_array_equal(X, before)
        assert net.forward(X).dtype == dtype


def test_labels_are_one_hot_encoded():
    net = cbackprop.Network([2, 3], "softmax", "cross_entropy", seed=0)
    X = np.random.default_rng(0).uniform(size=(5, 2))
    labels = np.array([0, 2, 1, 1, 0])
    assert net.loss(X, labels) == net.loss(X, np.eye(3)[labels])


def test_nan_weights_set_through_a_view_are_caught_before_training(net, data):
    net.weights[0][0, 0] = np.nan          # the views are live: this bypasses validation
    with pytest.raises(ValueError, match="NaN"):
        net.train(*data)


def test_weights_item_and_list_assignment(net):
    new = np.arange(12, dtype=float).reshape(4, 3) / 10
    net.weights[0] = new
    np.testing.assert_array_equal(net.weights[0], new)
    net.weights = [new.tolist(), np.ones((2, 4))]
    np.testing.assert_array_equal(net.weights[1], np.ones((2, 4)))
    net.biases = [np.ones(4), [0.5, 0.25]]
    np.testing.assert_array_equal(net.biases[1], [0.5, 0.25])
    # training reads the assigned values
    X = np.zeros((1, 3))
    expected = 1 / (1 + np.exp(-(np.ones((2, 4)) @ (1 / (1 + np.exp(-np.ones(4)))) + [0.5, 0.25])))
    np.testing.assert_allclose(net.forward(X)[0], expected, rtol=1e-14)


def test_configuration_is_read_only(net):
    for name, value in [("sizes", (3, 1)), ("dtype", np.float32), ("activations", ("relu",) * 2),
                        ("loss_name", "cross_entropy")]:
        with pytest.raises(AttributeError):
            setattr(net, name, value)


def test_non_native_byte_order_dtype_is_used_natively():
    net = cbackprop.Network([2, 1], dtype=">f8", seed=0)
    assert net.dtype == np.float64 and net.dtype.isnative
    assert net.forward(np.ones((1, 2))).dtype.isnative


def test_bool_labels_are_classes_not_a_mask():
    net = cbackprop.Network([2, 2], "softmax", "cross_entropy", seed=0)
    X = np.random.default_rng(0).uniform(size=(2, 2))
    assert net.loss(X, np.array([True, False])) == net.loss(X, np.array([1, 0]))


def test_copies_keep_weights_attached_to_what_they_train(tmp_path):
    import copy
    import pickle
    net = cbackprop.Network([3, 4, 2], seed=0)
    X, Y = np.ones((4, 3)), np.zeros((4, 2))
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        before = clone.weights[0].copy()
        clone.train(X, Y, epochs=1)
        assert not np.array_equal(clone.weights[0], before)        # the view sees training
        clone.weights[1] = np.zeros((2, 4))
        clone.biases[1] = np.zeros(2)
        np.testing.assert_array_equal(clone.forward(X), 0.5)       # training sees the view
    np.testing.assert_array_equal(net.get_params(), cbackprop.Network([3, 4, 2], seed=0).get_params())


def test_assigning_weights_resets_momentum():
    net = cbackprop.Network([3, 4, 2], seed=0)
    X, Y = np.ones((4, 3)), np.zeros((4, 2))
    net.train(X, Y, epochs=3, momentum=0.9)
    fresh = cbackprop.Network([3, 4, 2], seed=1)
    net.weights, net.biases = fresh.weights, fresh.biases
    net.train(X, Y, epochs=1, momentum=0.9, shuffle=False)
    fresh.train(X, Y, epochs=1, momentum=0.9, shuffle=False)
    np.testing.assert_array_equal(net.get_params(), fresh.get_params())
