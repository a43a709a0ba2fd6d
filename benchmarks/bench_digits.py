"""The tutorial's digits experiment: 64-30-10 sigmoid network, full-batch gradient descent,
3000 iterations on 1,078 training samples (the tutorial's NumPy code takes minutes).

Uses scikit-learn's bundled digits (the tutorial's data) when scikit-learn is installed
(``pip install .[bench]``), otherwise random data of the same shape: the work is the same.
"""

import numpy as np
import pytest

import cbackprop


def digits_training_set():
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        rng = np.random.default_rng(0)
        return rng.uniform(0, 1, (1078, 64)), rng.integers(0, 10, 1078)
    digits = load_digits()
    X = (digits.data - digits.data.mean(axis=0)) / (digits.data.std(axis=0) + 1e-12)
    X_train, _, y_train, _ = train_test_split(X, digits.target, test_size=0.4, random_state=0)
    return X_train, y_train


@pytest.mark.benchmark(group="digits full batch")
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_digits_full_batch_3000_iterations(benchmark, dtype):
    X, y = digits_training_set()
    assert X.shape == (1078, 64)

    def setup():
        return (cbackprop.Network([64, 30, 10], "sigmoid", dtype=dtype, seed=0),), {}

    def run(net):
        return net.train(X, y, epochs=3000, lr=0.25, batch_size=len(X), shuffle=False)

    history = benchmark.pedantic(run, setup=setup, rounds=3)
    assert history.loss[-1] < history.loss[0]
