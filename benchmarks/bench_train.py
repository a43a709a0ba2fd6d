"""One epoch of plain SGD (sigmoid layers, J = 1/2 ||y - h||^2, lr 0.1, no shuffle):
the compiled engine next to the NumPy reference, each workload a group."""

import numpy as np
import pytest

from cbackprop import reference
from workloads import WORKLOADS, fresh_network, workload_data

# The reference's per-sample loop is slow: it sees a slice of the workload's samples.
REFERENCE_SAMPLES = {"T": 2000, "D": 2000, "M1": 500, "M64": 20_000, "W": 2_000}


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("impl", ["compiled", "reference"])
@pytest.mark.parametrize("shape", list(WORKLOADS))
def test_train_epoch(benchmark, shape, impl, dtype):
    sizes, batch_size, n = WORKLOADS[shape]
    if impl == "reference":
        n = REFERENCE_SAMPLES[shape]
    X, Y = workload_data(sizes, n, dtype)
    benchmark.group = f"train {shape} {'-'.join(map(str, sizes))} batch {batch_size}"
    benchmark.extra_info["samples"] = n
    net = fresh_network(sizes, dtype)

    def setup():
        fresh = fresh_network(sizes, dtype)
        net.weights, net.biases = fresh.weights, fresh.biases
        return (), {}

    if impl == "compiled":
        def run():
            net.train(X, Y, epochs=1, lr=0.1, batch_size=batch_size, shuffle=False)
    else:
        def run():
            W = [w.copy() for w in net.weights]
            b = [v.copy() for v in net.biases]
            reference.train_epoch(W, b, net.activations, "mse", X, Y, 0.1, batch_size)
            net.weights, net.biases = W, b

    benchmark.pedantic(run, setup=setup, rounds=5, warmup_rounds=1)
    # Same work: after the timed epochs the weights equal one reference epoch from fresh weights.
    setup()
    run()
    fresh = fresh_network(sizes, dtype)
    W, b = [w.copy() for w in fresh.weights], [v.copy() for v in fresh.biases]
    reference.train_epoch(W, b, fresh.activations, "mse", X, Y, 0.1, batch_size)
    rtol = 1e-3 if dtype == np.float32 else 1e-8
    for got, want in zip(list(net.weights) + list(net.biases), W + b):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)
