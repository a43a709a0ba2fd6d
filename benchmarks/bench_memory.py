"""Peak extra memory of forward and loss on 10 million rows of 64 features.

The kernels work through the rows in blocks, and the Python layer checks inputs in blocks,
so beyond the input and the output only a few MiB of scratch exist, however many rows come
in. Peak memory is measured with tracemalloc (NumPy reports its allocations to it).

    python benchmarks/bench_memory.py [--rows 10000000]        # prints a table
    pytest benchmarks/bench_memory.py                           # timed, peak in extra_info
"""

import argparse
import os
import sys
import time
import tracemalloc

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workloads import fresh_network   # noqa: E402

ROWS = int(os.environ.get("CBACKPROP_BENCH_ROWS", 10_000_000))
SIZES = [64, 30, 10]


def big_data(rows, dtype, seed=0):
    """Inputs uniform in [0, 1) and one-hot targets, generated in slices to stay lean."""
    X = np.empty((rows, SIZES[0]), dtype)
    rng = np.random.default_rng(seed)
    for start in range(0, rows, 1_000_000):
        stop = min(start + 1_000_000, rows)
        X[start:stop] = rng.random((stop - start, SIZES[0]), dtype=np.dtype(dtype))
    labels = rng.integers(0, SIZES[-1], rows)
    return X, labels


def peak_extra(function, *args):
    """(result, seconds, peak bytes allocated during the call beyond what it returns)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start = time.perf_counter()
        result = function(*args)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    returned = result.nbytes if isinstance(result, np.ndarray) else 0
    return result, seconds, peak - returned


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("call", ["forward", "loss"])
def test_big_input_memory(benchmark, call, dtype):
    X, labels = big_data(ROWS, dtype)
    net = fresh_network(SIZES, dtype)
    function = net.forward if call == "forward" else (lambda X: net.loss(X, labels))
    benchmark.group = f"memory {call} {ROWS:,} rows"
    _, _, peak = peak_extra(function, X)
    benchmark.extra_info.update(rows=ROWS, input_bytes=X.nbytes, peak_extra_bytes=peak)
    benchmark.pedantic(function, args=(X,), rounds=1, iterations=1)
    # integer labels become one-hot targets (rows x 10): the one copy that grows with rows
    allowed = 32 * 2**20 + (ROWS * SIZES[-1] * np.dtype(dtype).itemsize if call == "loss" else 0)
    assert peak < allowed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    args = parser.parse_args(argv)
    print(f"{'call':8} {'dtype':8} {'rows':>12} {'input':>10} {'peak extra':>11} {'seconds':>8}")
    for dtype in ("float32", "float64"):
        X, labels = big_data(args.rows, dtype)
        net = fresh_network(SIZES, dtype)
        Y = np.eye(SIZES[-1], dtype=dtype)[labels]        # one-hot given: no conversion
        for call, function, arg in (("forward", net.forward, X),
                                    ("loss", lambda X: net.loss(X, Y), X)):
            _, seconds, peak = peak_extra(function, arg)
            print(f"{call:8} {dtype:8} {args.rows:12,} {X.nbytes / 2**20:8.0f} MiB "
                  f"{peak / 2**20:7.1f} MiB {seconds:8.2f}")
        del X, Y


if __name__ == "__main__":
    main()
