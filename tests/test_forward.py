"""Forward pass and loss: compiled vs the NumPy reference."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

import cbackprop
from cbackprop import reference
from conftest import CONFIG_IDS, CONFIGS, DTYPES, SHAPES, RTOL, assert_close, make_case


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("sizes", SHAPES, ids=lambda s: "-".join(map(str, s)))
def test_forward_and_loss_match_reference(sizes, config, dtype):
    hidden, out, loss = config
    net, X, Y, W, b, acts = make_case(sizes, hidden, out, loss, dtype, n=300)
    out_c = net.forward(X)
    assert out_c.dtype == dtype and out_c.shape == (300, sizes[-1])
    assert_close(out_c, reference.forward(W, b, acts, X), dtype)
    expected = reference.loss(W, b, acts, loss, X, Y)
    assert net.loss(X, Y) == pytest.approx(expected, rel=RTOL[dtype], abs=RTOL[dtype])


def test_predict_is_forward_and_1d_sample_gives_1d_output(dtype):
    net, X, Y, W, b, acts = make_case([4, 5, 3], "tanh", "softmax", "mse", dtype)
    single = net.forward(X[2])
    assert single.shape == (3,) and single.dtype == dtype
    np.testing.assert_array_equal(single, net.forward(X)[2])
    np.testing.assert_array_equal(net.predict(X), net.forward(X))


def test_forward_many_blocks_matches_reference():
    # more rows than one compiled block (256), with a ragged last block
    net, X, Y, W, b, acts = make_case([6, 9, 4], "sigmoid", "sigmoid", "mse", np.float64, n=1037)
    assert_close(net.forward(X), reference.forward(W, b, acts, X), np.float64)


def test_softmax_rows_sum_to_one_and_sigmoid_in_unit_interval():
    net = cbackprop.Network([3, 4, 5], ["sigmoid", "softmax"], seed=1)
    X = np.random.default_rng(0).normal(0, 50, (100, 3))
    np.testing.assert_allclose(net.forward(X).sum(axis=1), 1.0, rtol=1e-12)
    net = cbackprop.Network([3, 4, 5], "sigmoid", seed=1)
    out = net.forward(X)
    assert ((out > 0) & (out < 1)).all()


def test_sigmoid_is_exact_and_stable_at_extremes(dtype):
    # One weight of 1 and bias 0: the output is sigmoid(x) itself.
    net = cbackprop.Network([1, 1], "sigmoid", dtype=dtype)
    net.weights = [np.ones((1, 1))]
    net.biases = [np.zeros(1)]
    z = np.array([-1e4, -745.0, -50.0, -1.0, 0.0, 1.0, 50.0, 745.0, 1e4])
    out = net.forward(z[:, None].astype(dtype))[:, 0]
    expected = 1 / (1 + np.exp(-z.astype(np.longdouble)))
    np.testing.assert_allclose(out, expected.astype(dtype), rtol=RTOL[dtype] / 10, atol=0)
    assert out[4] == 0.5 and out[-1] == 1.0 and out[0] >= 0


def test_cross_entropy_loss_finite_for_saturated_outputs(dtype):
    net = cbackprop.Network([1, 2], "softmax", "cross_entropy", dtype=dtype)
    net.weights = [np.array([[1.0], [-1.0]])]
    net.biases = [np.zeros(2)]
    X = np.array([[5000.0]], dtype=dtype)
    # softmax saturates to (1, 0): the wrong class costs z1 - z2 = 10000 exactly
    assert net.loss(X, [1]) == pytest.approx(10000.0, rel=RTOL[dtype])
    assert net.loss(X, [0]) == pytest.approx(0.0, abs=1e-30)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 9), min_size=2, max_size=5),
    config=st.sampled_from(CONFIGS),
    dtype=st.sampled_from(DTYPES),
    data=st.data(),
)
def test_forward_matches_reference_on_random_shapes(sizes, config, dtype, data):
    hidden, out, loss = config
    net, _, _, W, b, acts = make_case(sizes, hidden, out, loss, dtype)
    n = data.draw(st.integers(1, 40))
    X = data.draw(arrays(dtype, (n, sizes[0]), elements={"min_value": -10, "max_value": 10}))
    assert_close(net.forward(X), reference.forward(W, b, acts, X), dtype)


def test_sigmoid_within_three_ulp_everywhere(dtype):
    # the compiled sigmoid against the exact value in long double, over the whole range,
    # subnormals included: 1 unit takes the libm path, 17 units the polynomial exp that
    # vectorises at the AVX2/AVX-512 levels (and its scalar remainder)
    for units in (1, 17):
        check_sigmoid_ulp(units, dtype)


def check_sigmoid_ulp(units, dtype):
    net = cbackprop.Network([1, units], "sigmoid", dtype=dtype)
    net.weights = [np.ones((units, 1))]
    net.biases = [np.zeros(units)]
    z = np.concatenate([np.linspace(-800, 800, 20001), np.linspace(-40, 40, 20001)])
    z = z.astype(dtype)
    out = net.forward(z[:, None]).astype(np.longdouble)
    exact = (1 / (1 + np.exp(-z.astype(np.longdouble))))[:, None]
    finfo = np.finfo(dtype)
    ulp = np.maximum(np.spacing(exact.astype(dtype)).astype(np.longdouble), finfo.smallest_subnormal)
    assert np.max(np.abs(out - exact) / ulp) <= 3   # exp within 2 ulp, then e / (1 + e)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_all_finite_finds_a_bad_value_anywhere(bad, dtype):
    # the compiled pass behind every input check, at each position of a vector body and tail
    from cbackprop._dispatch import forward_kernels
    assert forward_kernels.all_finite(np.zeros(0, dtype))
    for n in (1, 7, 64, 67):
        x = np.random.default_rng(n).uniform(-1e30, 1e30, n).astype(dtype)
        x[0] = np.finfo(dtype).max
        assert forward_kernels.all_finite(x)
        for where in range(n):
            y = x.copy()
            y[where] = bad
            assert not forward_kernels.all_finite(y)


# own_gemm (src/_blas.pxd) takes every layer's product of inference and of the loss at the
# AVX-512 level when BLAS runs one thread, from each W held transposed: widths around one and
# two vectors of either dtype (the last vector masked), inputs around its 8-row tiles, rows
# around them and past a block (4096); a layer over its 1 MB limit (1100-256 float32), and
# layers past the first 30 (34 weight layers), take BLAS.
@pytest.mark.parametrize("sizes", [[1, 1, 1], [9, 8, 17, 3], [7, 16, 1], [17, 31, 33],
                                   [64, 30, 10], [300, 128, 10], [1100, 256, 2],
                                   [9, 17] + [5] * 33 + [3]],
                         ids=lambda s: "-".join(map(str, s[:4])) + "-%d" % len(s))
@pytest.mark.parametrize("n", [1, 7, 8, 9, 4103])
def test_forward_and_loss_by_own_gemm_match_reference(sizes, n, dtype):
    net, X, Y, W, b, acts = make_case(sizes, "sigmoid", "softmax" if sizes[-1] > 1 else
                                      "sigmoid", "mse", dtype, n=n)
    assert_close(net.forward(X), reference.forward(W, b, acts, X), dtype)
    expected = reference.loss(W, b, acts, "mse", X, Y)
    assert net.loss(X, Y) == pytest.approx(expected, rel=RTOL[dtype], abs=RTOL[dtype])
    np.testing.assert_array_equal(net.get_params(), np.concatenate(
        [np.concatenate([w.ravel(), v]) for w, v in zip(W, b)]).astype(dtype))


@pytest.mark.parametrize("n", [63, 64, 300])
def test_forward_takes_own_gemm_when_allowed_from_64_rows(n, dtype):
    from cbackprop._dispatch import forward_kernels, train_kernels
    net, X, Y, W, b, acts = make_case([300, 128, 10], "sigmoid", "sigmoid", "mse", dtype, n=n)
    taken = train_kernels.OWN_GEMM and n >= 64
    outs, losses = {}, []
    for allowed in (True, False):
        calls = forward_kernels.own_gemm_call_count()
        outs[allowed] = np.empty((n, 10), dtype)
        assert forward_kernels.forward(net._spec, net._params, X, outs[allowed], allowed)
        assert_close(outs[allowed], reference.forward(W, b, acts, X), dtype)
        losses.append(forward_kernels.loss_sum(net._spec, net._params, X, Y, allowed))
        assert forward_kernels.own_gemm_call_count() - calls == 2 * (taken and allowed)
    assert losses[0] == pytest.approx(reference.loss(W, b, acts, "mse", X, Y) * n,
                                      rel=RTOL[dtype])
    if not taken:
        assert losses[0] == losses[1]
