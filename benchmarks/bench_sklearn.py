"""cbackprop.sklearn.MLPClassifier next to scikit-learn's MLPClassifier on its bundled data
sets: test accuracy (same split and hyper-parameters, 5 seeds) and fit time; and the
speed-up of training several estimators in two threads.

    python benchmarks/bench_sklearn.py [--seeds 5]        # prints the tables
    pytest benchmarks/bench_sklearn.py --benchmark-group-by=group
"""

import argparse
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier as SklearnMLP  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from cbackprop.sklearn import MLPClassifier  # noqa: E402

DATASETS = {"digits": load_digits, "iris": load_iris, "wine": load_wine,
            "breast_cancer": load_breast_cancer}
# scikit-learn's defaults: one hidden layer of 100 relu units, adam, batch min(200, n),
# 200 epochs at most, stopping when the loss stalls for 10 epochs.
PARAMS = {}


def split(name, seed):
    X, y = DATASETS[name](return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
    scaler = StandardScaler().fit(Xtr)
    return scaler.transform(Xtr), scaler.transform(Xte), ytr, yte


def fit_timed(cls, Xtr, ytr, seed):
    model = cls(random_state=seed, **PARAMS)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(Xtr, ytr)
    return model, time.perf_counter() - start


@pytest.mark.parametrize("impl", ["cbackprop", "sklearn"])
@pytest.mark.parametrize("name", list(DATASETS))
def test_fit(benchmark, name, impl):
    Xtr, Xte, ytr, yte = split(name, 0)
    cls = MLPClassifier if impl == "cbackprop" else SklearnMLP
    benchmark.group = f"sklearn fit {name}"
    model = benchmark.pedantic(lambda: fit_timed(cls, Xtr, ytr, 0)[0], rounds=3)
    benchmark.extra_info["test_accuracy"] = model.score(Xte, yte)


def _fit_digits(seed):
    Xtr, _, ytr, _ = split("digits", seed)
    return fit_timed(MLPClassifier, Xtr, ytr, seed)[0].coefs_[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)
    print("| data set | train/test | cbackprop accuracy | scikit-learn accuracy | difference "
          "| cbackprop fit | scikit-learn fit | speed-up |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in DATASETS:
        acc = {"c": [], "s": []}
        times = {"c": [], "s": []}
        for seed in range(args.seeds):
            Xtr, Xte, ytr, yte = split(name, seed)
            for key, cls in (("c", MLPClassifier), ("s", SklearnMLP)):   # interleaved
                model, seconds = fit_timed(cls, Xtr, ytr, seed)
                acc[key].append(model.score(Xte, yte))
                times[key].append(seconds)
        c, s = np.mean(acc["c"]), np.mean(acc["s"])
        tc, ts = np.median(times["c"]), np.median(times["s"])
        print(f"| {name} | {len(Xtr)}/{len(Xte)} | {100 * c:.2f}% | {100 * s:.2f}% | "
              f"{100 * (c - s):+.2f} | {1000 * tc:.0f} ms | {1000 * ts:.0f} ms | "
              f"{ts / tc:.1f}x |")

    print("\n| parallel work (cbackprop, digits) | serial | 2 threads | speed-up |")
    print("| --- | --- | --- | --- |")
    seeds = list(range(4))
    start = time.perf_counter()
    serial = [_fit_digits(s) for s in seeds]
    t_serial = time.perf_counter() - start
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        threaded = list(pool.map(_fit_digits, seeds))
    t_threads = time.perf_counter() - start
    assert all(np.array_equal(a, b) for a, b in zip(serial, threaded))
    print(f"| 4 fits, ThreadPoolExecutor | {t_serial:.2f} s | {t_threads:.2f} s | "
          f"{t_serial / t_threads:.2f}x |")
    from joblib import parallel_backend
    Xtr, _, ytr, _ = split("digits", 0)
    grid = {"hidden_layer_sizes": [(50,), (100,)], "alpha": [1e-4, 1e-3]}
    timings = []
    for n_jobs in (1, 2):
        start = time.perf_counter()
        with parallel_backend("threading", n_jobs=n_jobs), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            GridSearchCV(MLPClassifier(random_state=0), grid, cv=3, n_jobs=n_jobs).fit(Xtr, ytr)
        timings.append(time.perf_counter() - start)
    print(f"| GridSearchCV, 12 fits, threading backend | {timings[0]:.2f} s | "
          f"{timings[1]:.2f} s | {timings[0] / timings[1]:.2f}x |")


if __name__ == "__main__":
    main()
