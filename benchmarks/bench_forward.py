"""Inference (forward on 100,000 samples) for D and M1: compiled next to the NumPy reference."""

import numpy as np
import pytest

from cbackprop import reference
from workloads import WORKLOADS, fresh_network, workload_data


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("impl", ["compiled", "reference"])
@pytest.mark.parametrize("shape", ["D", "M1"])
def test_forward(benchmark, shape, impl, dtype):
    sizes = WORKLOADS[shape][0]
    X, _ = workload_data(sizes, 100_000, dtype)
    net = fresh_network(sizes, dtype)
    benchmark.group = f"forward {shape} {'-'.join(map(str, sizes))}"
    W, b = list(net.weights), list(net.biases)
    if impl == "compiled":
        out = benchmark(net.forward, X)
    else:
        out = benchmark(reference.forward, W, b, net.activations, X)
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(out, reference.forward(W, b, net.activations, X), rtol=rtol)
