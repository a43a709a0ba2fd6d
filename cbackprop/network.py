"""The Network: configuration, parameters and validated calls into the compiled kernels."""

import contextlib
import inspect
import io
import json
import os
import tempfile
import types
import zipfile
from collections.abc import Sequence

import numpy as np

from ._dispatch import backward_kernels as _backward, forward_kernels as _forward
from .train import train as _train_function
from ._threads import blas_threads, over_rows
from ._config import (all_finite, as_float_array, check_activations, check_dtype, check_loss,
                      check_sizes, check_X, check_Y, kernel_spec, raise_not_finite_X)

FORMAT_VERSION = 2
# Version 1 (cbackprop 0.1) stored SGD momentum velocities as "velocity"; it still loads.
READABLE_VERSIONS = (1, 2)


class ParameterList(Sequence):
    """The weight (or bias) arrays of a Network: views into its parameter buffer.

    Reading an item gives the live array; assigning an item (``net.weights[0] = a``)
    validates ``a``, copies it into the network and resets the optimizer's state
    (velocities and moments belong to the old weights). The list's length is fixed.
    """

    def __init__(self, views, kind, on_change):
        self._views = views
        self._kind = kind
        self._on_change = on_change

    def __len__(self):
        return len(self._views)

    def __getitem__(self, index):
        return self._views[index]

    def __setitem__(self, index, value):
        if isinstance(index, slice):
            raise TypeError(f"assign {self._kind} one layer at a time or as a whole list")
        view = self._views[index]
        view[...] = _checked_parameter(value, view, f"{self._kind}[{index}]")
        self._on_change()

    def __repr__(self):
        return f"ParameterList({self._kind}: {[v.shape for v in self._views]})"


def _checked_parameter(value, view, name):
    """``value`` validated against the shape and dtype of ``view`` (not yet copied)."""
    arr = np.asarray(value)
    if arr.shape != view.shape:
        raise ValueError(f"{name} must have shape {view.shape}, got {arr.shape}")
    return as_float_array(arr, name, view.dtype)


def _init_parameters(sizes, activations, rng):
    """Glorot/Xavier uniform for sigmoid, tanh, linear and softmax layers; He for relu.

    W ~ U(-a, a) with a = sqrt(6 / (n_in + n_out)) (Glorot) or sqrt(6 / n_in) (He);
    biases start at 0. Drawn in float64 so a seed gives the same network in both dtypes.
    """
    weights, biases = [], []
    for layer, name in enumerate(activations):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        limit = np.sqrt(6.0 / n_in) if name == "relu" else np.sqrt(6.0 / (n_in + n_out))
        weights.append(rng.uniform(-limit, limit, size=(n_out, n_in)))
        biases.append(np.zeros(n_out))
    return weights, biases


class Network:
    """A multilayer perceptron trained by backpropagation in compiled code.

    Parameters
    ----------
    sizes : sequence of int
        ``[n_in, hidden..., n_out]``: at least two entries, all >= 1.
    activations : str or sequence of str, default="sigmoid"
        One name for every layer, or ``len(sizes) - 1`` names: ``"sigmoid"``, ``"tanh"``,
        ``"relu"``, ``"linear"``, ``"softmax"`` (output layer only).
    loss : {"mse", "cross_entropy"}, default="mse"
        ``"mse"`` is the tutorial's per-sample J = 1/2 ||y - h||^2; ``"cross_entropy"`` is
        categorical with a softmax output, binary with a sigmoid output.
    dtype : {numpy.float32, numpy.float64}, default=numpy.float64
        Precision of parameters and computation; inputs are converted to it.
    seed : int or None, default=None
        Seeds initialisation (Glorot uniform, He for relu layers) and shuffling.

    Attributes
    ----------
    weights : ParameterList of ndarray
        ``weights[l]`` has shape ``(sizes[l+1], sizes[l])``; ``weights[l][i, j]`` is the
        tutorial's ``w_ij^(l+1)`` with 0-based ``i`` (unit fed) and ``j`` (unit left).
    biases : ParameterList of ndarray
        ``biases[l]`` has shape ``(sizes[l+1],)``: the tutorial's ``b^(l+1)``.

    Notes
    -----
    With layers numbered from 1 (the input): ``z^(l+1) = W^(l) h^(l) + b^(l)`` and
    ``h^(l+1) = f(z^(l+1))``. All parameters live in one flat buffer that the compiled
    kernels update in place; ``weights`` and ``biases`` are views into it.

    Examples
    --------
    >>> import numpy as np, cbackprop
    >>> net = cbackprop.Network([2, 4, 1], seed=0)
    >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    >>> y = np.array([0, 1, 1, 0], dtype=float)
    >>> history = net.train(X, y, epochs=3000, lr=2.0, shuffle=False)
    >>> bool(net.loss(X, y) < 0.01)
    True
    >>> net.forward(X).shape
    (4, 1)
    """

    def __init__(self, sizes, activations="sigmoid", loss="mse", dtype=np.float64, seed=None):
        self._configure(sizes, activations, loss, dtype, seed)
        weights, biases = _init_parameters(self._sizes, self._activations, self._rng)
        for view, value in zip(self._weight_views + self._bias_views, weights + biases):
            view[...] = value

    def _configure(self, sizes, activations, loss, dtype, seed):
        """Validate the configuration and allocate zeroed parameters and velocities."""
        self._sizes = check_sizes(sizes)
        self._activations = check_activations(activations, len(self._sizes) - 1)
        self._loss_name = check_loss(loss, self._activations[-1])
        self._dtype = check_dtype(dtype)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._spec, n_params = kernel_spec(self._sizes, self._activations, self._loss_name)
        self._params = np.zeros(n_params, dtype=self._dtype)
        # The optimizer's state, kept between calls to train(): two vectors laid out like
        # _params (see src/_optim.pxd), which optimizer they belong to, the steps and epochs
        # taken with them and the learning-rate schedule's own state.
        self._state = np.zeros((2, n_params), dtype=self._dtype)
        self._optimizer_name = None
        self._steps = 0
        self._epochs = 0
        self._schedule_state = {}
        self._weight_views, self._bias_views = self._views(self._params)

    # The configuration is fixed at construction: the kernels' spec and buffers follow it.
    sizes = property(lambda self: self._sizes, doc="Layer widths ``(n_in, ..., n_out)``.")
    activations = property(lambda self: self._activations, doc="Activation of each layer.")
    loss_name = property(lambda self: self._loss_name, doc="``'mse'`` or ``'cross_entropy'``.")
    dtype = property(lambda self: self._dtype, doc="numpy.float32 or numpy.float64.")

    def __reduce__(self):
        # Pickles (and copies) carry the model file's bytes: the same validated, portable
        # format as save(), nothing machine-local, and load()'s checks on the way back in.
        buffer = io.BytesIO()
        np.savez(buffer, **self._arrays())
        return (_from_npz_bytes, (buffer.getvalue(), self.seed))

    def _offsets(self):
        """(w_off, b_off): where each layer's W and b start in the flat parameter buffer,
        read from the kernels' spec (see src/_passes.pxd)."""
        n_layers = len(self._sizes) - 1
        w_off = self._spec[2 + 2 * n_layers + 1:][:n_layers]
        b_off = self._spec[2 + 3 * n_layers + 1:][:n_layers]
        return [int(v) for v in w_off], [int(v) for v in b_off]

    def _views(self, buffer):
        """Per-layer (W, b) views into a flat buffer laid out like the parameters."""
        n_layers = len(self._sizes) - 1
        w_off, b_off = self._offsets()
        weights, biases = [], []
        for layer in range(n_layers):
            n_in, n_out = self._sizes[layer], self._sizes[layer + 1]
            weights.append(buffer[w_off[layer]:w_off[layer] + n_out * n_in].reshape(n_out, n_in))
            biases.append(buffer[b_off[layer]:b_off[layer] + n_out])
        return weights, biases

    # -- parameters -------------------------------------------------------------------------

    @property
    def n_inputs(self):
        return self.sizes[0]

    @property
    def n_outputs(self):
        return self.sizes[-1]

    @property
    def weights(self):
        return ParameterList(self._weight_views, "weights", self.reset_optimizer)

    @weights.setter
    def weights(self, values):
        self._assign_all(values, self._weight_views, "weights")

    @property
    def biases(self):
        return ParameterList(self._bias_views, "biases", self.reset_optimizer)

    @biases.setter
    def biases(self, values):
        self._assign_all(values, self._bias_views, "biases")

    def _assign_all(self, values, views, kind):
        """Validate every array first, then copy: a bad list changes nothing."""
        values = list(values)
        if len(values) != len(views):
            raise ValueError(f"{kind} needs {len(views)} arrays, got {len(values)}")
        checked = [_checked_parameter(v, view, f"{kind}[{k}]")
                   for k, (v, view) in enumerate(zip(values, views))]
        for view, value in zip(views, checked):
            view[...] = value
        self.reset_optimizer()

    def reset_optimizer(self):
        """Forget the optimizer's state: velocities, moments, step sizes, the step and epoch
        counts that Adam's bias correction and the learning-rate schedules follow.

        The next :meth:`train` starts its optimizer afresh, as on a new network.
        """
        self._state[...] = 0
        self._optimizer_name = None
        self._steps = 0
        self._epochs = 0
        self._schedule_state = {}

    @property
    def optimizer_state(self):
        """The optimizer's state kept between calls to :meth:`train` (a read-only summary).

        Returns
        -------
        dict
            ``optimizer`` (name or None), ``steps`` and ``epochs`` taken with it, and its
            ``state`` arrays (copies, each laid out like :meth:`get_params`).
        """
        return {"optimizer": self._optimizer_name, "steps": self._steps,
                "epochs": self._epochs, "state": self._state.copy(),
                "schedule": dict(self._schedule_state)}

    def get_params(self):
        """A copy of every parameter as one flat array (weights then bias, layer by layer)."""
        return self._params.copy()

    def _check_params_finite(self):
        if not all_finite(self._params):
            raise ValueError("the network's weights or biases contain NaN or infinity")

    # -- computation ------------------------------------------------------------------------

    def forward(self, X):
        """The network's output h^(nl) for each sample.

        Parameters
        ----------
        X : array-like of shape (n, n_in) or (n_in,)

        Returns
        -------
        ndarray of shape (n, n_out), or (n_out,) for a 1-D ``X``, of the network's dtype.

        Raises
        ------
        ValueError
            Wrong number of features, no samples, NaN or infinity in ``X``.
        TypeError
            Non-numeric ``X``.
        FloatingPointError
            The sums overflowed the dtype (inputs or weights near its largest values), so
            some output is not finite.
        """
        given = X
        X, single = check_X(X, self.n_inputs, self.dtype, finite=False)
        out = np.empty((X.shape[0], self.n_outputs), dtype=self.dtype)
        params = self._params
        # the kernel checks each block of X for NaN and infinity just before its gemm reads
        # it, and stops at one that is not finite
        # each part's products by cbackprop's own gemm when BLAS runs one thread there
        if not all(over_rows(lambda a, b: _forward.forward(self._spec, params, X[a:b],
                                                           out[a:b], blas_threads() == 1),
                             X.shape[0], uses_blas=True)):
            raise_not_finite_X(given, self.n_inputs, self.dtype)
        _check_finite_result(out, "forward")
        return out[0] if single else out

    predict = forward

    def _check_data(self, X, Y, finite_X=True):
        """X and Y validated as the kernels take them (X's NaN and infinity only if
        finite_X: mini-batch training checks X as it reads it)."""
        dtype, sizes = self._dtype, self._sizes
        if (type(X) is np.ndarray and type(Y) is np.ndarray and X.dtype is dtype
                and Y.dtype is dtype and X.ndim == 2 and Y.ndim == 2
                and X.shape[1] == sizes[0] and Y.shape[1] == sizes[-1]
                and X.shape[0] == Y.shape[0] > 0 and X.flags.c_contiguous
                and Y.flags.c_contiguous and X.flags.aligned and Y.flags.aligned
                and self._loss_name == "mse" and (not finite_X or all_finite(X))
                and all_finite(Y)):
            # already as the kernels take them: check_X and check_Y would return them as they
            # are after these checks (a shortcut: tests/test_train.py holds the two together)
            return X, Y
        X, single = check_X(X, self.n_inputs, self.dtype, finite_X)
        Y = check_Y(Y, X.shape[0], self.n_outputs, self.dtype, self.loss_name, single)
        return X, Y

    def loss(self, X, Y):
        """The mean over samples of the per-sample loss J.

        Parameters
        ----------
        X : array-like of shape (n, n_in) or (n_in,)
        Y : array-like of shape (n, n_out); or (n,) integer class labels when n_out > 1;
            or (n,) targets when n_out == 1

        Returns
        -------
        float
            ``mean_s J_s`` with ``J = 1/2 ||y - h||^2`` for ``"mse"``.
        """
        X, Y = self._check_data(X, Y)
        params = self._params
        total = sum(over_rows(lambda a, b: _forward.loss_sum(self._spec, params, X[a:b],
                                                             Y[a:b], blas_threads() == 1),
                              X.shape[0], uses_blas=True))
        _check_finite_result(np.array(total), "loss")
        return total / X.shape[0]

    def gradients(self, X, Y):
        """The gradient of ``loss(X, Y)`` with respect to every weight and bias.

        Returns
        -------
        dW : list of ndarray, shaped like ``weights``
            ``dW[l] = mean_s delta^(l+2) h^(l+1)T`` (0-based list, 1-based tutorial layers).
        db : list of ndarray, shaped like ``biases``
            ``db[l] = mean_s delta^(l+2)``.
        """
        X, Y = self._check_data(X, Y)
        grad = np.empty_like(self._params)
        _backward.gradients(self._spec, self._params, X, Y, grad)
        _check_finite_result(grad, "gradients")
        dW, db = self._views(grad)
        return dW, db

    def explain(self, x, y, layer, i, j, eps=None):
        """The chain rule for one weight and one sample, factor by factor.

        Parameters
        ----------
        x : array-like of shape (n_in,) or (1, n_in)
        y : array-like, the sample's target (as for :meth:`loss`)
        layer : int
            The tutorial's 1-based weight layer ``l``: ``W^(l)`` maps layer ``l`` to ``l+1``.
        i : int
            The node the weight feeds in layer ``l+1`` (1-based).
        j : int
            The node it leaves in layer ``l`` (1-based).
        eps : float, optional
            Step of the central difference (default: cube root of the dtype's epsilon,
            scaled by the weight).

        Returns
        -------
        Explanation
            ``factors`` (each with its symbol, formula and value; sums list their terms),
            ``product``, the compiled ``gradient`` of this sample's loss for the weight, a
            ``finite_difference`` and their ``relative_difference``. ``str()`` prints the
            equation, symbols then numbers; notebooks render it as LaTeX.

        Examples
        --------
        >>> import numpy as np, cbackprop
        >>> net = cbackprop.Network([3, 3, 1], seed=0)
        >>> e = net.explain(np.array([0.1, 0.5, 0.9]), 1.0, layer=2, i=1, j=2)
        >>> print(str(e).splitlines()[0])
        dJ/dw_12^(2) = dJ/dh_1^(3) * dh_1^(3)/dz_1^(3) * dz_1^(3)/dw_12^(2)
        >>> bool(abs(e.product - e.gradient) <= 1e-12 * abs(e.gradient))
        True
        """
        from .explain import explain
        if j is None:
            raise TypeError("j is the node the weight leaves; for a bias use explain_bias")
        return explain(self, x, y, layer, i, j, eps)

    def explain_bias(self, x, y, layer, i, eps=None):
        """Like :meth:`explain`, for the bias ``b_i^(layer)`` (whose ``dz_i/db_i = 1``)."""
        from .explain import explain
        return explain(self, x, y, layer, i, None, eps)

    # train: cbackprop.train.train itself, as a method (set below the class)

    # -- files ------------------------------------------------------------------------------

    def save(self, path):
        """Write the network to a ``.npz`` file of plain arrays (no pickle).

        The configuration, weights, biases, the optimizer's state (velocities, moments, step
        sizes, step and epoch counts, schedule state) and the state of the shuffling
        generator are stored, so a loaded network predicts and continues training exactly as
        this one would.

        The file is written atomically: to a temporary file in the same folder, flushed to
        disk, then renamed over ``path``. A failure midway (full disk, crash) leaves any
        previous file at ``path`` intact and no temporary file behind.
        """
        arrays = self._arrays()
        _write_atomically(os.fspath(path), lambda f: np.savez(f, **arrays))

    def _arrays(self):
        """Everything save() writes, as named arrays."""
        return {
            "format_version": np.array(FORMAT_VERSION),
            "sizes": np.array(self._sizes, dtype=np.int64),
            "activations": np.array(self._activations, dtype=str),
            "loss": np.array(self._loss_name, dtype=str),
            "dtype": np.array(self._dtype.name, dtype=str),
            "params": self._params,
            "optimizer_state": self._state,
            "training": np.array(json.dumps({
                "optimizer": self._optimizer_name, "steps": self._steps,
                "epochs": self._epochs, "schedule": self._schedule_state}), dtype=str),
            "rng_state": np.array(json.dumps(self._rng.bit_generator.state), dtype=str),
        }

    @classmethod
    def load(cls, path):
        """Read a network written by :meth:`save`; see :func:`cbackprop.load`."""
        required = ("format_version", "sizes", "activations", "loss", "dtype", "params")
        source = path if hasattr(path, "read") else os.fspath(path)
        if not hasattr(path, "read") and os.path.isfile(source) and \
                not zipfile.is_zipfile(source):
            # np.load would call a text file "pickled data" and suggest allow_pickle=True
            raise ValueError(f"{path} is not a cbackprop model file: not an .npz archive")
        try:
            with np.load(source, allow_pickle=False) as npz:
                data = _HeaderCheckedNpz(npz, path)
                missing = [k for k in required if k not in data.files]
                if missing:
                    raise ValueError(f"{path} is not a cbackprop model: missing {missing}")
                version = _scalar(data["format_version"], "iu", path, "format_version")
                if version not in READABLE_VERSIONS:
                    raise ValueError(f"{path} has model format version {version}; this "
                                     f"cbackprop reads versions {list(READABLE_VERSIONS)} "
                                     f"(a newer file needs a newer cbackprop)")
                state_key = "velocity" if version == 1 else "optimizer_state"
                if state_key not in data.files:
                    raise ValueError(f"{path} is not a cbackprop model: missing "
                                     f"['{state_key}']")
                sizes, activations = data["sizes"], data["activations"]
                if sizes.ndim != 1 or sizes.dtype.kind not in "iu":
                    raise ValueError(f"{path}: sizes must be a 1-D integer array, got "
                                     f"{sizes.dtype} of shape {sizes.shape}")
                if activations.ndim != 1 or activations.dtype.kind != "U":
                    raise ValueError(f"{path}: activations must be a 1-D array of names")
                net = cls.__new__(cls)   # no random initialisation: the file has the values
                net._configure([int(v) for v in sizes], [str(a) for a in activations],
                               _scalar(data["loss"], "U", path, "loss"),
                               _scalar(data["dtype"], "U", path, "dtype"), None)
                # only now, with the expected sizes known, are the big arrays read
                buffers = {"params": net._params,
                           state_key: net._state[0] if version == 1 else net._state}
                for name, buffer in buffers.items():
                    shape, dtype = data.header(name)
                    if shape != buffer.shape or dtype != buffer.dtype:
                        raise ValueError(
                            f"{path}: {name} has shape {shape} and dtype {dtype}, expected "
                            f"{buffer.shape} {buffer.dtype}")
                    stored = data.read(name, buffer.nbytes)
                    buffer[...] = as_float_array(stored, f"{path}: {name}", buffer.dtype)
                if version == 1:
                    net._optimizer_name = "sgd" if net._state.any() else None
                elif "training" in data.files:
                    net._load_training(json.loads(
                        _scalar(data["training"], "U", path, "training")), path)
                if "rng_state" in data.files:
                    state = json.loads(_scalar(data["rng_state"], "U", path, "rng_state"))
                    net._rng.bit_generator.state = state
        except (OSError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile,
                RuntimeError, NotImplementedError, RecursionError, MemoryError) as exc:
            # a damaged or crafted zip (encrypted flags, unknown compression, deep JSON, ...)
            raise ValueError(f"{path} is not a readable cbackprop model file: "
                             f"{type(exc).__name__}: {exc}") from exc
        except (ValueError, TypeError) as exc:
            if str(path) in str(exc):
                raise ValueError(str(exc)) from exc
            raise ValueError(f"{path} is not a valid cbackprop model: {exc}") from exc
        return net

    def _load_training(self, training, path):
        """Restore the optimizer bookkeeping saved by :meth:`save`, checking each field."""
        from .optimizers import OPTIMIZERS
        if not isinstance(training, dict):
            raise ValueError(f"{path}: training must be a JSON object")
        name = training.get("optimizer")
        if name is not None and name not in OPTIMIZERS:
            raise ValueError(f"{path}: unknown optimizer {name!r}")
        counts = [training.get(k, 0) for k in ("steps", "epochs")]
        if any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in counts):
            raise ValueError(f"{path}: steps and epochs must be integers >= 0")
        schedule = training.get("schedule", {})
        if not isinstance(schedule, dict) or not all(
                isinstance(v, (int, float)) for v in schedule.values()):
            raise ValueError(f"{path}: schedule must map names to numbers")
        self._optimizer_name = name
        self._steps, self._epochs = counts
        self._schedule_state = schedule

    def __repr__(self):
        acts = self.activations[0] if len(set(self.activations)) == 1 else list(self.activations)
        return (f"Network(sizes={list(self.sizes)}, activations={acts!r}, "
                f"loss={self.loss_name!r}, dtype=numpy.{self.dtype.name})")


def _write_atomically(path, write):
    """Call ``write(file)`` on a temporary file beside ``path``, fsync it, rename it to path."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".cbackprop-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would
        mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):       # make the rename itself durable (POSIX)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _umask():
    """The process's umask, read without changing it where the system allows."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _check_finite_result(result, name):
    if not all_finite(result):
        raise FloatingPointError(
            f"{name}: the result overflowed (it is not finite); the inputs or the weights "
            f"are too large for the network's dtype")


def _method_signature(function):
    """``function``'s signature with its first parameter renamed ``self``."""
    signature = inspect.signature(function)
    params = list(signature.parameters.values())
    return signature.replace(parameters=[params[0].replace(name="self")] + params[1:])


def _as_method(function, qualname, doc):
    """``function``'s own code as a method of that name and docstring: no wrapper between
    the caller and it (a wrapper's frame cost 18 us a train() call after an idle spell)."""
    method = types.FunctionType(function.__code__, function.__globals__, function.__name__,
                                function.__defaults__, function.__closure__)
    method.__kwdefaults__ = function.__kwdefaults__
    method.__qualname__, method.__module__, method.__doc__ = qualname, __name__, doc
    method.__signature__ = _method_signature(function)
    return method


Network.train = _as_method(_train_function, "Network.train", _train_function.__doc__.replace(
    "Train ``net``", "Train the network", 1))


class _HeaderCheckedNpz:
    """An opened .npz whose arrays are read only after their headers have been checked, so a
    file claiming a huge shape is refused before anything is allocated."""

    SMALL = 1 << 20        # bytes: every array but the parameters is configuration

    def __init__(self, npz, path):
        self.npz, self.path, self.files = npz, path, npz.files

    def header(self, name):
        """(shape, dtype) from the member's .npy header, without reading its data."""
        with self.npz.zip.open(name + ".npy") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"{self.path}: {name} has .npy format {version}")
        if dtype.hasobject:
            raise ValueError(f"{self.path}: {name} holds Python objects (a pickle), which a "
                             f"cbackprop model never does; it is not read")
        return shape, dtype

    def read(self, name, max_bytes=SMALL):
        shape, dtype = self.header(name)
        if int(np.prod(shape, dtype=np.float64)) * dtype.itemsize > max_bytes:
            raise ValueError(f"{self.path}: {name} claims shape {shape} of {dtype}, larger "
                             f"than a model's {name} can be")
        return self.npz[name]

    def __getitem__(self, name):
        return self.read(name)


def _from_npz_bytes(data, seed=None):
    """Unpickle a Network from the bytes of its model file (see Network.__reduce__)."""
    net = Network.load(io.BytesIO(data))
    net.seed = seed
    return net


def _scalar(array, kinds, path, name):
    """The single value of a 0-d array of one of ``kinds``, or a ValueError naming it."""
    if array.ndim != 0 or array.dtype.kind not in kinds:
        raise ValueError(f"{path}: {name} must be a single value, got {array.dtype} "
                         f"of shape {array.shape}")
    return array.item()


def load(path):
    """Read a network saved with :meth:`Network.save`.

    Only arrays are read (``allow_pickle=False``), so an untrusted file cannot run code.

    Raises
    ------
    ValueError
        The file is missing, truncated, not a model, of another format version, or holds
        arrays of the wrong shape or dtype or with NaN or infinity.
    """
    return Network.load(path)
