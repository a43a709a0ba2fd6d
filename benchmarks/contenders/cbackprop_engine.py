"""cbackprop itself, the engine under test, through its public API."""

import inspect

import numpy as np

NAME = "cbackprop"
_MOD = None


def _mod():
    global _MOD
    if _MOD is None:
        from contenders import import_project
        _MOD = import_project("cbackprop")
        if not hasattr(_MOD, "Network"):
            raise ImportError("cbackprop has no Network yet")
    return _MOD


def available():
    try:
        _mod()
        return True
    except ImportError as exc:
        return "not importable: %s" % exc


def version():
    m = _mod()
    return "%s, %s kernels (%s)" % (getattr(m, "__version__", "?"),
                                     getattr(m, "kernel_level", "?"), getattr(m, "__file__", "?"))


def supports(kind, batch_size, threads):
    return None


class _Trainer:
    def __init__(self, sizes, weights, biases, dtype, batch_size, lr, threads):
        cb = _mod()
        kwargs = dict(activations="sigmoid", loss="mse", dtype=dtype, seed=0)
        try:  # pass a thread count if the engine takes one (OpenMP is also capped by env)
            params = inspect.signature(cb.Network).parameters
            for key in ("n_threads", "num_threads", "threads"):
                if key in params:
                    kwargs[key] = threads
                    break
        except (TypeError, ValueError):
            pass
        self.net = cb.Network(list(sizes), **kwargs)
        self.net.weights = [np.array(w, dtype=dtype, copy=True) for w in weights]
        self.net.biases = [np.array(b, dtype=dtype, copy=True) for b in biases]
        self.batch_size = batch_size
        self.lr = lr

    def epoch(self, X, Y):
        self.net.train(X, Y, epochs=1, lr=self.lr, batch_size=self.batch_size, shuffle=False)

    def params(self):
        return ([np.array(w, copy=True) for w in self.net.weights],
                [np.array(b, copy=True) for b in self.net.biases])

    def forward(self, X):
        return np.asarray(self.net.forward(X))


def make_trainer(sizes, weights, biases, dtype, batch_size, lr, threads):
    return _Trainer(sizes, weights, biases, dtype, batch_size, lr, threads)
