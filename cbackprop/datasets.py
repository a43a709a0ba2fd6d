"""Small tasks generated in code (no downloads): XOR and the two spirals."""

import numpy as np


def xor(dtype=np.float64):
    """The four XOR patterns.

    Returns
    -------
    X : ndarray of shape (4, 2)
    y : ndarray of shape (4,), 0.0 or 1.0
    """
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dtype)
    return X, np.array([0, 1, 1, 0], dtype=dtype)


def two_spirals(n=194, noise=0.0, seed=None, dtype=np.float64):
    """Two interleaved spirals, the benchmark of Lang and Witbrock (1988).

    Parameters
    ----------
    n : int, default=194
        Total number of points, half on each spiral (the original task has 194).
    noise : float, default=0.0
        Standard deviation of Gaussian noise added to each coordinate.
    seed : int or None
        Seeds the noise.

    Returns
    -------
    X : ndarray of shape (n, 2), coordinates in the original units (radius up to 6.5)
    y : ndarray of shape (n,) of int, the spiral (0 or 1) of each point
    """
    half = n // 2
    i = np.arange(half)
    # Lang and Witbrock: angle i * pi / 16, radius 6.5 (104 - i) / 104, for 97 points a spiral.
    angle = i * np.pi / 16 * 97 / max(half, 1)
    radius = 6.5 * (104 - i * 97 / max(half, 1)) / 104
    first = np.column_stack([radius * np.sin(angle), radius * np.cos(angle)])
    X = np.concatenate([first, -first])
    y = np.concatenate([np.zeros(half, dtype=int), np.ones(half, dtype=int)])
    if noise:
        X = X + np.random.default_rng(seed).normal(0, noise, X.shape)
    return X.astype(dtype), y
