"""Workloads shared by the benchmarks (run: pytest benchmarks/ --benchmark-group-by=group)."""

import numpy as np

import cbackprop

# name: (sizes, batch_size, n_samples) -- the performance issue's workloads
WORKLOADS = {
    "T": ([2, 8, 1], 1, 20_000),
    "D": ([64, 30, 10], 1, 10_000),
    "M1": ([784, 128, 10], 1, 5_000),
    "M64": ([784, 128, 10], 64, 20_000),
    "W": ([784, 512, 512, 10], 128, 10_000),
}


def workload_data(sizes, n, dtype, seed=0):
    """Inputs uniform in [0, 1), one-hot targets (a 0/1 column for one output)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, (n, sizes[0])).astype(dtype)
    labels = rng.integers(0, max(sizes[-1], 2), n)
    Y = (labels[:, None] == np.arange(sizes[-1])).astype(dtype) if sizes[-1] > 1 else \
        labels[:, None].astype(dtype)
    return X, Y


def fresh_network(sizes, dtype, seed=0):
    return cbackprop.Network(sizes, "sigmoid", "mse", dtype=dtype, seed=seed)
