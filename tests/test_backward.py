"""Gradients: compiled vs the NumPy reference, vs finite differences, and by hand."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import cbackprop
from cbackprop import reference
from conftest import CONFIG_IDS, CONFIGS, DTYPES, SHAPES, assert_close, make_case


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("sizes", SHAPES, ids=lambda s: "-".join(map(str, s)))
def test_gradients_match_reference(sizes, config, dtype):
    hidden, out, loss = config
    net, X, Y, W, b, acts = make_case(sizes, hidden, out, loss, dtype, n=300)
    dW, db = net.gradients(X, Y)
    rdW, rdb = reference.gradients(W, b, acts, loss, X, Y)
    for got, want in zip(dW + db, rdW + rdb):
        assert got.dtype == dtype and got.shape == want.shape
        assert_close(got, want, dtype, scale=max(1e-3, float(np.abs(want).max())))


def numeric_gradient(net, X, Y, eps=1e-6):
    """Central differences (J(p + eps) - J(p - eps)) / 2 eps for every parameter."""
    grads = []
    for arrays in (net.weights, net.biases):
        for a in arrays:
            g = np.empty_like(a)
            for idx in np.ndindex(a.shape):
                keep = a[idx]
                a[idx] = keep + eps
                plus = net.loss(X, Y)
                a[idx] = keep - eps
                minus = net.loss(X, Y)
                a[idx] = keep
                g[idx] = (plus - minus) / (2 * eps)
            grads.append(g)
    return grads


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("sizes", [[1, 1, 1], [3, 4, 2], [2, 3, 3, 3]],
                         ids=lambda s: "-".join(map(str, s)))
def test_gradients_match_central_differences(sizes, config):
    hidden, out, loss = config
    net, X, Y, *_ = make_case(sizes, hidden, out, loss, np.float64, n=5)
    dW, db = net.gradients(X, Y)
    for got, want in zip(dW + db, numeric_gradient(net, X, Y)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_gradients_do_not_change_the_network(dtype):
    net, X, Y, W, b, acts = make_case([3, 4, 2], "tanh", "sigmoid", "mse", dtype)
    before = net.get_params()
    net.gradients(X, Y)
    np.testing.assert_array_equal(net.get_params(), before)


def test_one_one_one_sigmoid_network_by_hand():
    # x -> (w1, b1) -> hidden sigmoid -> (w2, b2) -> output sigmoid, target y = 1.
    net = cbackprop.Network([1, 1, 1], "sigmoid")
    net.weights = [[[0.2]], [[0.4]]]
    net.biases = [[0.1], [-0.3]]
    x, y = np.array([1.5]), np.array([1.0])
    # z2 = 0.2 * 1.5 + 0.1 = 0.4;              h2 = sigmoid(0.4)   = 0.598687660112452
    # z3 = 0.4 * h2 - 0.3 = -0.0605249359550; h3 = sigmoid(z3)    = 0.48487338346669995
    # dJ/dw2 = dJ/dh3 * dh3/dz3 * dz3/dw2
    #        = -(y - h3) * h3 (1 - h3) * h2
    #        = -0.5151266165333 * 0.2497711854722545 * 0.598687660112452 = -0.07702942078986971
    # dJ/dw1 = dJ/dw2 / h2 * w2 * h2 (1 - h2) * x = -0.018547714258419088
    dW, db = net.gradients(x, y)
    assert dW[1][0, 0] == pytest.approx(-0.07702942078986971, rel=1e-12)
    assert dW[0][0, 0] == pytest.approx(-0.018547714258419088, rel=1e-12)
    assert db[1][0] == pytest.approx(-0.5151266165333 * 0.2497711854722545, rel=1e-12)
    assert net.forward(x)[0] == pytest.approx(0.48487338346669995, rel=1e-14)


def test_tutorial_three_three_one_network_chain_rule_term_by_term():
    # The tutorial's network: W^(1) rows 0.2, 0.4, 0.6; b^(1) = 0.8; W^(2) = 0.5; b^(2) = 0.2.
    net = cbackprop.Network([3, 3, 1], "sigmoid")
    net.weights = [[[0.2] * 3, [0.4] * 3, [0.6] * 3], [[0.5] * 3]]
    net.biases = [[0.8] * 3, [0.2]]
    x, y = np.array([1.5, 2.0, 3.0]), 1.0
    # z^(2) = W^(1) x + b^(1) = (2.1, 3.4, 4.7); h^(2) = sigmoid(z^(2))
    h2 = np.array([0.8909031788043871, 0.9677045353015495, 0.990986701347152])
    # z_1^(3) = W^(2) h^(2) + b^(2) = 1.6247972077265442; h_1^(3) = 0.8354556612475645
    h3 = 0.8354556612475645
    assert net.forward(x)[0] == pytest.approx(h3, rel=1e-14)
    # dJ/dw_12^(2) = dJ/dh_1^(3) * dh_1^(3)/dz_1^(3) * dz_1^(3)/dw_12^(2)
    dJ_dh = -(y - h3)              # = -0.16454433875243546
    dh_dz = h3 * (1 - h3)          # =  0.13746949933695923
    dz_dw = h2[1]                  # =  0.9677045353015495 (h_2^(2): the unit w_12 leaves)
    assert dJ_dh == pytest.approx(-0.16454433875243546, rel=1e-14)
    assert dh_dz == pytest.approx(0.13746949933695923, rel=1e-14)
    dW, db = net.gradients(x, y)
    # weights[1][0, 1] is w_12^(2): i = 1 (output unit), j = 2 (hidden unit), 0-based (0, 1)
    assert dW[1][0, 1] == pytest.approx(dJ_dh * dh_dz * dz_dw, rel=1e-12)
    assert dW[1][0, 1] == pytest.approx(-0.021889310014663682, rel=1e-12)
    # the whole last layer: delta^(3) h^(2)T
    np.testing.assert_allclose(dW[1][0], dJ_dh * dh_dz * h2, rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 8), min_size=2, max_size=6),
       config=st.sampled_from(CONFIGS), dtype=st.sampled_from(DTYPES),
       n=st.integers(1, 30), seed=st.integers(0, 1000))
def test_gradients_match_reference_on_random_shapes(sizes, config, dtype, n, seed):
    hidden, out, loss = config
    net, X, Y, W, b, acts = make_case(sizes, hidden, out, loss, dtype, n=n, seed=seed)
    dW, db = net.gradients(X, Y)
    rdW, rdb = reference.gradients(W, b, acts, loss, X, Y)
    for got, want in zip(dW + db, rdW + rdb):
        assert_close(got, want, dtype, scale=max(1e-3, float(np.abs(want).max())))
