"""Shared helpers: build a network and the same parameters for the NumPy reference."""

import numpy as np
import pytest

import cbackprop

# Relative tolerance of compiled vs reference, per dtype (the core issue's bar).
RTOL = {np.float32: 1e-4, np.float64: 1e-10}
DTYPES = [np.float32, np.float64]

# (hidden activation, output activation, loss): every activation and every valid loss.
CONFIGS = [
    ("sigmoid", "sigmoid", "mse"),
    ("tanh", "tanh", "mse"),
    ("relu", "relu", "mse"),
    ("linear", "linear", "mse"),
    ("tanh", "softmax", "mse"),
    ("relu", "softmax", "cross_entropy"),
    ("sigmoid", "sigmoid", "cross_entropy"),
]
CONFIG_IDS = ["-".join(c) for c in CONFIGS]
# From one unit per layer to deep (5 weight layers) and wide (784-512); n_in != n_out.
SHAPES = [[1, 1, 1], [3, 3, 1], [4, 7, 3], [5, 1, 2], [3, 6, 5, 4, 3, 2], [784, 512]]
# A network for each online path of train_epoch (src/_train.pyx), with the run online_run
# gives it under plain SGD (samples per run, rows per gemm): online_small (2-4-1 takes it at
# every kernel level: 16-byte vectors hold 4 units), online_two_layer, online_window and the
# generic online_step loop (two hidden layers).
ONLINE_PATHS = {"small": ([2, 4, 1], (64, 1)), "two_layer": ([6, 5, 2], (1, 1)),
                "window": ([300, 4, 2], (32, 32)), "generic": ([3, 5, 4, 2], (1, 1))}


def assert_close(actual, expected, dtype, scale=None):
    """Elementwise relative agreement, with an absolute floor of rtol * the array's scale."""
    rtol = RTOL[dtype]
    expected = np.asarray(expected)
    if scale is None:
        scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def make_targets(rng, n, n_out, out_activation, loss, dtype):
    if out_activation == "softmax" and loss == "cross_entropy":
        return np.eye(n_out, dtype=dtype)[rng.integers(0, n_out, n)]
    if out_activation in ("sigmoid", "softmax"):
        return rng.uniform(0, 1, (n, n_out)).astype(dtype)
    return rng.uniform(-1, 1, (n, n_out)).astype(dtype)


def make_case(sizes, hidden, out, loss, dtype, n=13, seed=0):
    """A network, data of its dtype, and copies of its parameters for the reference."""
    acts = [hidden] * (len(sizes) - 2) + [out]
    net = cbackprop.Network(sizes, acts, loss, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed + 1)
    # Biases away from 0 so bias paths are exercised, and relu kinks are not hit exactly.
    net.biases = [rng.uniform(-0.5, 0.5, b.shape) for b in net.biases]
    X = rng.uniform(-1, 1, (n, sizes[0])).astype(dtype)
    Y = make_targets(rng, n, sizes[-1], out, loss, dtype)
    W = [w.copy() for w in net.weights]
    b = [v.copy() for v in net.biases]
    return net, X, Y, W, b, acts


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return request.param
