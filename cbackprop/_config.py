"""Names, kernel codes and input validation shared by the Python layer.

Everything the compiled kernels receive passes through here first: the kernels run with
bounds checks off, so shapes, dtypes, contiguity and finiteness are established in Python.
"""

import math
import numbers

import numpy as np

from ._dispatch import forward_kernels
from ._threads import over_rows

# Codes must match the enums in src/_activations.pxd.
ACTIVATION_CODES = {"sigmoid": 0, "tanh": 1, "relu": 2, "linear": 3, "softmax": 4}
LOSS_CODES = {"mse": 0, "cross_entropy": 1}
DTYPES = (np.float32, np.float64)
# Largest layer width: BLAS takes int dimensions.
MAX_UNITS = 2**31 - 1
# Largest parameter count (2 GiB of float64): this is a library for small and medium networks,
# and a bigger request is far likelier a typo than a plan; refusing it beats the OOM killer.
MAX_PARAMETERS = 2**28


def check_sizes(sizes):
    """Validate ``[n_in, hidden..., n_out]`` and return it as a tuple of ints."""
    try:
        sizes = tuple(sizes)
    except TypeError:
        raise TypeError(f"sizes must be a sequence of layer widths, got {sizes!r}") from None
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least two entries (inputs and outputs), got {sizes!r}")
    for k, s in enumerate(sizes):
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Integral):
            raise TypeError(f"sizes[{k}] must be an integer, got {s!r}")
        if not 1 <= s <= MAX_UNITS:
            raise ValueError(f"sizes[{k}] must be between 1 and {MAX_UNITS}, got {s}")
    sizes = tuple(int(s) for s in sizes)
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    if n_params > MAX_PARAMETERS:
        raise ValueError(f"sizes {list(sizes)} make {n_params:,} parameters; cbackprop "
                         f"supports at most {MAX_PARAMETERS:,}")
    return sizes


def check_activations(activations, n_layers):
    """One name for every weight layer; softmax only at the output."""
    if isinstance(activations, str):
        activations = [activations] * n_layers
    activations = tuple(activations)
    if len(activations) != n_layers:
        raise ValueError(
            f"activations has {len(activations)} names but the network has {n_layers} "
            f"weight layers (len(sizes) - 1)")
    for k, name in enumerate(activations):
        if name not in ACTIVATION_CODES:
            raise ValueError(f"unknown activation {name!r} for layer {k}; "
                             f"choose from {sorted(ACTIVATION_CODES)}")
        if name == "softmax" and k != n_layers - 1:
            raise ValueError(f"softmax is only allowed on the output layer, not layer {k}")
    return activations


def check_loss(loss, out_activation):
    if loss not in LOSS_CODES:
        raise ValueError(f"unknown loss {loss!r}; choose from {sorted(LOSS_CODES)}")
    if loss == "cross_entropy" and out_activation not in ("softmax", "sigmoid"):
        raise ValueError(
            f"cross_entropy needs a softmax (categorical) or sigmoid (binary) output layer, "
            f"not {out_activation!r}")
    return loss


def check_dtype(dtype):
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be numpy.float32 or numpy.float64, got {dtype!r}") from None
    if dtype.type not in DTYPES:
        raise TypeError(f"dtype must be numpy.float32 or numpy.float64, got {dtype}")
    return np.dtype(dtype.type)  # native byte order: the kernels read native floats


def kernel_spec(sizes, activations, loss):
    """The integer description of a network that the kernels read (see src/_passes.pxd).

    Returns
    -------
    spec : ndarray of intp
        ``[n_layers, loss, sizes, codes, w_off, b_off, unit_off]``.
    n_params : int
        Length of the flat parameter buffer.
    """
    n_layers = len(sizes) - 1
    w_off, b_off, offset = [], [], 0
    for layer in range(n_layers):
        w_off.append(offset)
        offset += sizes[layer + 1] * sizes[layer]
        b_off.append(offset)
        offset += sizes[layer + 1]
    unit_off = np.concatenate([[0], np.cumsum(sizes[1:])]).tolist()
    codes = [ACTIVATION_CODES[a] for a in activations]
    spec = np.array([n_layers, LOSS_CODES[loss], *sizes, *codes, *w_off, *b_off, *unit_off],
                    dtype=np.intp)
    return spec, offset


def as_float_array(a, name, dtype, finite=True):
    """``a`` as a C-contiguous array of ``dtype``: copied only when needed, never modified.

    Raises TypeError for non-numeric data and, unless ``finite`` is False (a caller whose
    kernel checks it while it reads the array), ValueError for NaN or infinity.
    """
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    flags = arr.flags
    if arr.dtype == dtype and flags.c_contiguous and flags.aligned:
        converted = arr                     # (no cast: nothing for errstate to silence)
    else:
        with np.errstate(over="ignore", invalid="ignore"):    # reported below, as a ValueError
            converted = np.array(arr, dtype=dtype, order="C")   # (aligned, as a copy is)
    if finite and not all_finite(converted):
        if arr.dtype.kind == "f" and blockwise_all(np.ascontiguousarray(arr),
                                                   lambda block: np.isfinite(block).all()):
            raise ValueError(f"{name} has values beyond the range of {np.dtype(dtype).name}")
        raise ValueError(f"{name} contains NaN or infinity")
    return converted


# Elements per block of a whole-array check: temporaries stay at a few MiB however many
# rows the data has (10 million rows of 64 features would otherwise need a 640 MB mask).
CHECK_BLOCK = 1 << 20


def blockwise_all(arr, predicate):
    """Whether ``predicate(block)`` (a bool) holds for every block of a few MiB of ``arr``;
    an array of several blocks is shared out over cbackprop's threads (see _threads)."""
    if arr.size <= CHECK_BLOCK:
        return bool(predicate(arr))
    flat = arr.reshape(-1)               # C-contiguous: a view

    def check(first, stop):
        for start in range(first, stop, CHECK_BLOCK):
            if not predicate(flat[start:min(start + CHECK_BLOCK, stop)]):
                return False
        return True

    return all(over_rows(check, flat.size, min_rows=CHECK_BLOCK))


def all_finite(arr):
    """Whether the C-contiguous, aligned, native float32 or float64 ``arr`` (what
    as_float_array returns) holds no NaN or infinity: a compiled pass without temporaries
    over each block."""
    if arr.size <= CHECK_BLOCK:                # (what blockwise_all does, a call sooner)
        return forward_kernels.all_finite(arr)
    return blockwise_all(arr, forward_kernels.all_finite)


def check_X(X, n_in, dtype, finite=True):
    """Validate inputs: ``(n, n_in)`` or one sample ``(n_in,)``; with ``finite`` False, all
    but NaN and infinity (for a kernel that checks them as it reads X: forward's).

    Returns
    -------
    X : ndarray of shape (n, n_in), C-contiguous and aligned, of ``dtype``
    single : bool
        True when a 1-D sample was given (results are returned 1-D).
    """
    arr = np.asarray(X)
    single = arr.ndim == 1
    if arr.ndim not in (1, 2):
        raise ValueError(f"X must be 2-D (n_samples, {n_in}) or 1-D ({n_in},), "
                         f"got shape {arr.shape}")
    if single:
        arr = arr.reshape(1, -1)
    if arr.shape[0] == 0:
        raise ValueError("X is empty: it has no samples")
    if arr.shape[1] != n_in:
        raise ValueError(f"X has {arr.shape[1]} features per sample but the network "
                         f"takes {n_in} inputs")
    return as_float_array(arr, "X", dtype, finite), single


def raise_not_finite_X(X, n_in, dtype):
    """Raise the ValueError that names what a kernel found while reading ``X`` as check_X
    returned it (with ``finite=False``): NaN or infinity, or a value beyond ``dtype``."""
    check_X(X, n_in, dtype)
    raise ValueError("X contains NaN or infinity")    # (X itself changed meanwhile)


def check_Y(Y, n_samples, n_out, dtype, loss, single=False):
    """Validate targets and return them as ``(n, n_out)`` floats of ``dtype``.

    Accepts float targets ``(n, n_out)``; 1-D integer class labels in ``[0, n_out)`` when
    ``n_out > 1`` (one-hot encoded); a 1-D vector when ``n_out == 1``. With ``single`` (X was
    one 1-D sample) the target may be ``(n_out,)`` or a scalar label.
    """
    arr = np.asarray(Y)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"Y must hold numbers (targets or integer labels), got dtype {arr.dtype}")
    if single and arr.ndim <= 1 and arr.size == n_out and not (
            arr.ndim == 0 and n_out > 1):
        arr = arr.reshape(1, n_out)
    elif single and arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim == 1:
        if n_out == 1:
            arr = arr.reshape(-1, 1)
        elif arr.dtype.kind in "biu":
            arr = _one_hot(arr, n_out, dtype)
        else:
            raise ValueError(
                f"Y is 1-D with float values but the network has {n_out} outputs: pass "
                f"targets of shape (n, {n_out}) or integer class labels")
    elif arr.ndim != 2:
        raise ValueError(f"Y must be 2-D (n_samples, {n_out}) or 1-D, got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ValueError(f"X has {n_samples} samples but Y has {arr.shape[0]}")
    if arr.shape[1] != n_out:
        raise ValueError(f"Y has {arr.shape[1]} columns but the network has {n_out} outputs")
    arr = as_float_array(arr, "Y", dtype)
    if loss == "cross_entropy" and not blockwise_all(arr,
                                                     lambda b: ((b >= 0) & (b <= 1)).all()):
        raise ValueError("cross_entropy targets must lie in [0, 1] (probabilities or one-hot)")
    return arr


def _one_hot(labels, n_out, dtype):
    labels = labels.astype(np.int64)   # bool labels are classes 0 and 1, not a mask
    bad = (labels < 0) | (labels >= n_out)
    if bad.any():
        raise ValueError(f"class label {labels[bad][0]} is out of range [0, {n_out})")
    out = np.zeros((labels.shape[0], n_out), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


def check_real(value, name):
    if type(value) is float or type(value) is int:     # (before the slower ABC checks)
        return float(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    return float(value)


def in_dtype(value, dtype):
    """The Python float ``value`` as ``dtype`` holds it (inf where it overflows), as a float.

    Every hyper-parameter of every train() call passes here: the NumPy cast, with the
    errstate that silences its overflow warning, runs only for values that can overflow
    (a context manager per setting was a tenth of a small call's overhead)."""
    if dtype == np.float64 or not math.isfinite(value):
        return value
    if dtype == np.float32 and abs(value) < _FLOAT32_SAFE:
        return float(np.float32(value))
    with np.errstate(over="ignore"):           # too large for dtype: the caller refuses it
        return float(np.dtype(dtype).type(value))


# Below this, a float32 cast cannot overflow (the largest float32, less half an ulp).
_FLOAT32_SAFE = float(np.finfo(np.float32).max) * (1 - 2.0 ** -25)


def check_positive_finite(value, name, dtype=np.float64):
    """A real number > 0 that stays finite and > 0 in ``dtype`` (what the kernels compute in)."""
    value = check_real(value, name)
    cast = in_dtype(value, dtype)
    if not (math.isfinite(value) and value > 0 and math.isfinite(cast) and cast > 0):
        raise ValueError(f"{name} must be finite and > 0 in {np.dtype(dtype).name}, got {value!r}")
    return value


def check_int(value, name, minimum):
    if type(value) is not int and (isinstance(value, (bool, np.bool_))
                                   or not isinstance(value, numbers.Integral)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)
