"""The project's NumPy reference (``cbackprop.reference``), or a tiny fallback.

The fallback below is used only while ``cbackprop.reference`` cannot be
imported (or when ``CBP_FALLBACK_REFERENCE=1``).  It follows the workload
exactly: sigmoid everywhere, J = 1/2 ||y - h||^2, plain SGD on the mean
gradient of each batch, per-sample loop for batch 1, vectorised otherwise.
"""

import os

import numpy as np

NAME = "numpy_ref"
_SOURCE = None  # "cbackprop.reference" or "fallback"; set by _impl()


def _sigmoid(z):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


def fallback_forward(weights, biases, activations, X):
    h = np.asarray(X)
    for W, b in zip(weights, biases):
        h = _sigmoid(h @ W.T + b)
    return h


def fallback_train_epoch(weights, biases, activations, loss, X, Y, lr, batch_size,
                         momentum=0.0, velocities=None):
    assert loss == "mse" and all(a == "sigmoid" for a in activations)
    assert momentum == 0.0
    n = X.shape[0]
    L = len(weights)
    dt = weights[0].dtype
    lr = dt.type(lr)
    if batch_size == 1:
        one = dt.type(1)
        for s in range(n):
            hs = [X[s]]
            for W, b in zip(weights, biases):
                hs.append(_sigmoid(W @ hs[-1] + b))
            h = hs[-1]
            delta = -(Y[s] - h) * h * (one - h)
            for l in range(L - 1, -1, -1):
                W = weights[l]
                hp = hs[l]
                if l > 0:
                    nxt = (W.T @ delta) * hp * (one - hp)
                W -= lr * np.outer(delta, hp)
                biases[l] -= lr * delta
                if l > 0:
                    delta = nxt
        return
    for s in range(0, n, batch_size):
        xb = X[s:s + batch_size]
        m = xb.shape[0]
        hs = [xb]
        for W, b in zip(weights, biases):
            hs.append(_sigmoid(hs[-1] @ W.T + b))
        h = hs[-1]
        delta = (h - Y[s:s + m]) * h * (1 - h)
        scale = lr / dt.type(m)
        for l in range(L - 1, -1, -1):
            W = weights[l]
            hp = hs[l]
            if l > 0:
                nxt = (delta @ W) * hp * (1 - hp)
            W -= scale * (delta.T @ hp)
            biases[l] -= scale * delta.sum(axis=0)
            if l > 0:
                delta = nxt


def _impl():
    """(train_epoch, forward, source) of the reference in use."""
    global _SOURCE
    if os.environ.get("CBP_FALLBACK_REFERENCE") != "1":
        try:
            from contenders import import_project
            ref = import_project("cbackprop.reference")
            _SOURCE = "cbackprop.reference"
            return ref.train_epoch, ref.forward, _SOURCE
        except ImportError:
            pass
    _SOURCE = "fallback (benchmarks/contenders/numpy_ref.py)"
    return fallback_train_epoch, fallback_forward, _SOURCE


def source():
    return _impl()[2]


def available():
    return True


def version():
    return "numpy %s, %s" % (np.__version__, source())


def supports(kind, batch_size, threads):
    return None


def reference_epoch(weights, biases, X, Y, lr, batch_size):
    """One epoch of the reference; returns new (weights, biases) lists."""
    train, _, _ = _impl()
    W = [np.array(w, copy=True) for w in weights]
    b = [np.array(v, copy=True) for v in biases]
    train(W, b, ["sigmoid"] * len(W), "mse", X, Y, lr, batch_size)
    return W, b


def reference_forward(weights, biases, X):
    _, fwd, _ = _impl()
    return np.asarray(fwd(weights, biases, ["sigmoid"] * len(weights), X))


class _Trainer:
    def __init__(self, weights, biases, dtype, batch_size, lr):
        self.train, self.fwd, _ = _impl()
        self.W = [np.array(w, dtype=dtype, copy=True) for w in weights]
        self.b = [np.array(v, dtype=dtype, copy=True) for v in biases]
        self.acts = ["sigmoid"] * len(self.W)
        self.batch_size = batch_size
        self.lr = lr

    def epoch(self, X, Y):
        self.train(self.W, self.b, self.acts, "mse", X, Y, self.lr, self.batch_size)

    def params(self):
        return [w.copy() for w in self.W], [v.copy() for v in self.b]

    def forward(self, X):
        return np.asarray(self.fwd(self.W, self.b, self.acts, X))


def make_trainer(sizes, weights, biases, dtype, batch_size, lr, threads):
    return _Trainer(weights, biases, dtype, batch_size, lr)
