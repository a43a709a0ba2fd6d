"""FANN 2.2 (libfann-dev), incremental training, batch 1 only.

Driven through a small C file (_fann_helper.c) that gcc compiles at run time
into _build/ (git-ignored), loaded with ctypes: floatfann for float32,
doublefann for float64.  The epoch loop is FANN's own fann_train_epoch.

Settings: FANN_SIGMOID hidden and output with steepness 0.5
(FANN_SIGMOID = 1/(1+exp(-2*s*x)), so s = 0.5 is the logistic sigmoid),
FANN_TRAIN_INCREMENTAL, learning rate 0.1, momentum 0, FANN_ERRORFUNC_LINEAR.
Its update is then plain SGD on J: error_out = f'(h) * (y - h),
w += lr * error * h_prev, no hidden scaling (the /2 in fann_update_MSE
applies only to symmetric activations).  Two differences remain:
* fann_activation_derived clips h to [0.01, 0.99] before h(1-h) for
  FANN_SIGMOID, so units saturated beyond that get a larger derivative than
  the reference.  When the plain check fails, compare.py re-checks against
  variant_reference() below (the reference with that clip); a match is shown
  as "ok+" with a footnote, so the clip is proven to be the whole difference.
* FANN keeps learning_rate as a C float: lr is float32(0.1) even in doublefann.
  compare.py therefore uses lr = float32(0.1) = 0.10000000149011612 for every
  contender, so the float64 check is not polluted.
Weight mapping: FANN's weight array is neuron by neuron, layer by layer; the
connections of unit i of layer l are [W[i, 0..n_in-1], b[i]] (the bias neuron
closes every layer).  fb_check_layout verifies this against
fann_get_connection_array every time a network is built.
"""

import ctypes
import os
import subprocess

NAME = "fann"
SINGLE_THREADED = True
_HERE = os.path.dirname(os.path.abspath(__file__))
_SRC = os.path.join(_HERE, "_fann_helper.c")
_LIBS = {}


def _build(double):
    tag = "double" if double else "float"
    from contenders import build_c
    return build_c(_SRC, "fannbench_" + tag,
                   (["-DFB_DOUBLE"] if double else []) + ["-l%sfann" % tag, "-lm"],
                   " (is libfann-dev installed? apt-get install -y libfann-dev)")


def _lib(double):
    if double not in _LIBS:
        lib = ctypes.CDLL(_build(double))
        T = ctypes.c_double if double else ctypes.c_float
        P, U, Pu = ctypes.c_void_p, ctypes.c_uint, ctypes.POINTER(ctypes.c_uint)
        PT = ctypes.POINTER(T)
        lib.fb_create.restype = P
        lib.fb_create.argtypes = [U, Pu, ctypes.c_float]
        lib.fb_total_connections.restype = U
        lib.fb_total_connections.argtypes = [P]
        lib.fb_check_layout.restype = U
        lib.fb_check_layout.argtypes = [P, U, Pu]
        lib.fb_set_weights.argtypes = [P, PT]
        lib.fb_get_weights.argtypes = [P, PT]
        lib.fb_data.restype = P
        lib.fb_data.argtypes = [U, U, U, PT, PT]
        lib.fb_free_data.argtypes = [P]
        lib.fb_epoch.restype = ctypes.c_float
        lib.fb_epoch.argtypes = [P, P]
        lib.fb_forward.argtypes = [P, U, U, U, PT, PT]
        lib.fb_destroy.argtypes = [P]
        _LIBS[double] = (lib, T)
    return _LIBS[double]


def available():
    try:
        _lib(False)
        _lib(True)
        return True
    except OSError as exc:
        return str(exc)


def version():
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libfann-dev"],
                             capture_output=True, text=True).stdout.strip()
    except OSError:
        out = ""
    return "libfann %s" % (out or "2.2 (version unknown)")


VARIANT_NOTE = "FANN clips h to [0.01, 0.99] inside the sigmoid derivative"


def variant_reference(weights, biases, X, Y, lr, batch_size):
    """The reference epoch (batch 1) with FANN's one documented deviation:
    h is clipped to [0.01, 0.99] before h(1-h).  compare.py uses it only to
    explain a failed check: matching it proves the clip is the whole difference."""
    import numpy as np
    W = [np.array(w, dtype=np.float64) for w in weights]
    b = [np.array(v, dtype=np.float64) for v in biases]
    for s in range(X.shape[0]):
        hs = [X[s]]
        for w, v in zip(W, b):
            hs.append(1.0 / (1.0 + np.exp(-(w @ hs[-1] + v))))
        hc = np.clip(hs[-1], 0.01, 0.99)
        delta = -(Y[s] - hs[-1]) * hc * (1 - hc)
        for l in range(len(W) - 1, -1, -1):
            if l > 0:
                pc = np.clip(hs[l], 0.01, 0.99)
                nxt = (W[l].T @ delta) * pc * (1 - pc)
            W[l] -= lr * np.outer(delta, hs[l])
            b[l] -= lr * delta
            if l > 0:
                delta = nxt
    return W + b


def supports(kind, batch_size, threads):
    if kind == "train" and batch_size != 1:
        return "incremental (batch 1) only"
    return None


class _Trainer:
    def __init__(self, sizes, weights, biases, dtype, batch_size, lr):
        import numpy as np
        self.np = np
        self.dtype = np.dtype(dtype)
        self.lib, self.T = _lib(self.dtype == np.float64)
        self.sizes = [int(s) for s in sizes]
        arr = (ctypes.c_uint * len(self.sizes))(*self.sizes)
        self.ann = self.lib.fb_create(len(self.sizes), arr, ctypes.c_float(lr))
        if not self.ann:
            raise RuntimeError("fann_create_standard_array failed")
        bad = self.lib.fb_check_layout(self.ann, len(self.sizes), arr)
        if bad:
            raise RuntimeError("unexpected FANN connection layout (%d connections)" % bad)
        self.total = self.lib.fb_total_connections(self.ann)
        flat = np.concatenate([np.hstack([np.asarray(W, dtype=self.dtype),
                                          np.asarray(b, dtype=self.dtype)[:, None]]).ravel()
                               for W, b in zip(weights, biases)])
        assert flat.size == self.total
        self.lib.fb_set_weights(self.ann, self._ptr(flat))
        self._data = (None, None)

    def _ptr(self, a):
        return a.ctypes.data_as(ctypes.POINTER(self.T))

    def _train_data(self, X, Y):
        if self._data[0] is not X:
            if self._data[1]:
                self.lib.fb_free_data(self._data[1])
            Xc = self.np.ascontiguousarray(X, dtype=self.dtype)
            Yc = self.np.ascontiguousarray(Y, dtype=self.dtype)
            d = self.lib.fb_data(X.shape[0], X.shape[1], Y.shape[1], self._ptr(Xc), self._ptr(Yc))
            self._data = (X, d)
        return self._data[1]

    def epoch(self, X, Y):
        self.lib.fb_epoch(self.ann, self._train_data(X, Y))

    def params(self):
        np = self.np
        flat = np.empty(self.total, dtype=self.dtype)
        self.lib.fb_get_weights(self.ann, self._ptr(flat))
        Ws, bs, off = [], [], 0
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            block = flat[off:off + n_out * (n_in + 1)].reshape(n_out, n_in + 1)
            Ws.append(block[:, :n_in].copy())
            bs.append(block[:, n_in].copy())
            off += n_out * (n_in + 1)
        return Ws, bs

    def forward(self, X):
        np = self.np
        Xc = np.ascontiguousarray(X, dtype=self.dtype)
        out = np.empty((X.shape[0], self.sizes[-1]), dtype=self.dtype)
        self.lib.fb_forward(self.ann, X.shape[0], X.shape[1], self.sizes[-1],
                            self._ptr(Xc), self._ptr(out))
        return out

    def __del__(self):
        try:
            if self._data[1]:
                self.lib.fb_free_data(self._data[1])
            self.lib.fb_destroy(self.ann)
        except Exception:  # noqa: BLE001
            pass


def make_trainer(sizes, weights, biases, dtype, batch_size, lr, threads):
    return _Trainer(sizes, weights, biases, dtype, batch_size, lr)
