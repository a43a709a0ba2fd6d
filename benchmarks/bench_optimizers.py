"""What each optimizer costs per sample, next to plain SGD, on the performance workloads.

pytest-benchmark suite (one group per workload and dtype):
    pytest benchmarks/bench_optimizers.py --benchmark-group-by=group
Side-by-side table, optimizers interleaved in one run, medians of --repeat epochs:
    python benchmarks/bench_optimizers.py [--repeat 7] [--rows D,M1,M64]
"""

import argparse
import os
import sys
import time

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workloads import WORKLOADS, fresh_network, workload_data   # noqa: E402

# train() arguments of each optimizer (lr at each one's usual scale)
OPTIMIZERS = {
    "sgd": dict(optimizer="sgd", lr=0.1),
    "momentum": dict(optimizer="sgd", lr=0.05, momentum=0.9),
    "nesterov": dict(optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True),
    "adam": dict(optimizer="adam", lr=0.001),
    "adamw": dict(optimizer="adamw", lr=0.001),
}
ROWS = ["T", "D", "M1", "M64"]


def _epoch(net, X, Y, batch_size, kwargs):
    net.train(X, Y, epochs=1, batch_size=batch_size, shuffle=False, **kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("row", ROWS)
def test_optimizer_epoch(benchmark, row, optimizer, dtype):
    sizes, batch_size, n = WORKLOADS[row]
    X, Y = workload_data(sizes, n, dtype)
    benchmark.group = f"optimizers {row} {'-'.join(map(str, sizes))} batch {batch_size} " \
                      f"{np.dtype(dtype).name}"
    benchmark.extra_info["samples"] = n

    def setup():
        return (fresh_network(sizes, dtype),), {}

    benchmark.pedantic(lambda net: _epoch(net, X, Y, batch_size, OPTIMIZERS[optimizer]),
                       setup=setup, rounds=3, warmup_rounds=1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    print(f"{'row':4} {'dtype':8} {'batch':>5} " +
          " ".join(f"{name:>13}" for name in OPTIMIZERS) + "   (samples/s; x = time / sgd's)")
    for row in args.rows.split(","):
        sizes, batch_size, n = WORKLOADS[row]
        for dtype in args.dtypes.split(","):
            X, Y = workload_data(sizes, n, dtype)
            nets = {name: fresh_network(sizes, dtype) for name in OPTIMIZERS}
            times = {name: [] for name in OPTIMIZERS}
            for name in OPTIMIZERS:                       # warm-up
                _epoch(nets[name], X, Y, batch_size, OPTIMIZERS[name])
            for _ in range(args.repeat):                  # interleaved
                for name in OPTIMIZERS:
                    start = time.perf_counter()
                    _epoch(nets[name], X, Y, batch_size, OPTIMIZERS[name])
                    times[name].append(time.perf_counter() - start)
            median = {name: float(np.median(t)) for name, t in times.items()}
            cells = [f"{n / median[name] / 1e6:6.3f}M {median[name] / median['sgd']:4.2f}x"
                     for name in OPTIMIZERS]
            print(f"{row:4} {dtype:8} {batch_size:5d} " + " ".join(f"{c:>13}" for c in cells))


if __name__ == "__main__":
    main()
