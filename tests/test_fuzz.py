"""Fuzz tests of the public API (issue "Hardening").

Hypothesis throws random networks, data, targets and hyper-parameters -- valid and invalid --
at every public entry point: ``Network(...)``, ``forward``/``predict``, ``loss``,
``gradients``, ``train``, ``explain``/``explain_bias`` and ``save`` + ``load``. For each case
the outcome must be a correct result or a clear exception:

(a) only ValueError, TypeError or (from ``train``) TrainingDiverged, a FloatingPointError --
    never a crash, a hang or another exception;
(b) no input array is modified (compared with a copy taken before the call, NaNs included);
(c) ``forward`` returns ``(n, n_out)`` (``(n_out,)`` for a 1-D sample) of the network's dtype,
    finite, equal to ``cbackprop.reference.forward`` within ``conftest.RTOL`` (plus a
    first-order rounding bound where sums cancel) on the inputs cast as the network casts
    them; loss, gradients, explain and one full-batch SGD epoch are held to the reference too;
(d) when ``train`` raises ValueError/TypeError, the parameters and optimizer state are unchanged;
(e) sigmoid and softmax outputs stay in [0, 1];
(f) after a successful ``train`` the parameters are finite;
and save + load gives the same network, which continues training bit for bit; a damaged file
raises ValueError.

Beyond "some allowed exception", each call is also checked against an independent oracle of
the README's rules: data the rules accept must be accepted (and computed right), data they
reject must raise ValueError or TypeError.

Examples per test: a default sized for about half a minute on a 2-core machine; with
``CBACKPROP_FUZZ=nightly`` 20 times as many, plus ``test_nightly_*`` (bigger networks, rows
across the kernels' 256-row blocks, more epochs); ``CBACKPROP_FUZZ=<number>`` scales the
default by that factor (e.g. 0.1 for a quick local run).
"""

import io
import math
import os
import tempfile
import warnings
import zipfile
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import event, example, given, note, settings, strategies as st
from hypothesis.extra.numpy import arrays

import cbackprop
from cbackprop import reference
from conftest import RTOL

# -- how many examples ------------------------------------------------------------------------

_MODE = os.environ.get("CBACKPROP_FUZZ", "").strip()
NIGHTLY = _MODE == "nightly"
if NIGHTLY:
    SCALE = 20.0
elif _MODE:
    try:
        SCALE = float(_MODE)
    except ValueError:
        raise ValueError(f"CBACKPROP_FUZZ must be 'nightly' or a number, got {_MODE!r}") from None
else:
    SCALE = 1.0


def fuzz_settings(examples):
    """``examples`` (the default run's count) scaled by CBACKPROP_FUZZ; no example database
    (nothing is written into the repository); the failing example's blob is printed so it can
    be replayed with ``@reproduce_failure``. No health check is suppressed: none fires, in the
    default or the nightly run (arrays above 256 values come from a drawn seed, not element by
    element, which keeps data_too_large and too_slow quiet)."""
    return settings(max_examples=max(1, round(examples * SCALE)), deadline=None,
                    database=None, print_blob=True)


# numpy's own warnings about the casts the library and the oracle perform (overflow to inf in
# a float32 cast, NaN to int) are expected for this data; the cast's RuntimeWarning escaping
# as the exception under -W error is tested separately below.
pytestmark = pytest.mark.filterwarnings(
    "ignore:overflow encountered:RuntimeWarning",
    "ignore:invalid value encountered:RuntimeWarning")

ALLOWED = (ValueError, TypeError)
HIDDEN = ["sigmoid", "tanh", "relu", "linear"]
OUTPUT = HIDDEN + ["softmax"]
DTYPES = [np.float32, np.float64]


class Invalid(Exception):
    """The oracle's verdict: the README's rules reject this input."""


# -- profiles: how big things get --------------------------------------------------------------

SMALL = dict(max_io=6, max_width=9, max_hidden=3, max_rows=8, max_epochs=3)
# nightly: wider layers, rows across the 256-row blocks of the forward/backward kernels
LARGE = dict(max_io=12, max_width=40, max_hidden=4, max_rows=600, max_epochs=8)

# Loss and gradients are compared with the reference for data of this size (squares and
# products of float32 values stay far from overflow and from catastrophic rounding).
MODERATE = 10.0


# -- networks ----------------------------------------------------------------------------------

@st.composite
def net_specs(draw, profile=SMALL):
    """A valid configuration: 1-3 hidden layers, softmax only at the output, cross_entropy
    only with a softmax or sigmoid output."""
    n_in = draw(st.integers(1, profile["max_io"]))
    n_out = draw(st.integers(1, profile["max_io"]))
    hidden = draw(st.lists(st.integers(1, profile["max_width"]), min_size=1,
                           max_size=profile["max_hidden"]))
    acts = [draw(st.sampled_from(HIDDEN)) for _ in hidden] + [draw(st.sampled_from(OUTPUT))]
    loss = "mse"
    if acts[-1] in ("softmax", "sigmoid") and draw(st.booleans()):
        loss = "cross_entropy"
    return dict(sizes=[n_in, *hidden, n_out], activations=acts, loss=loss,
                dtype=draw(st.sampled_from(DTYPES)), seed=draw(st.integers(0, 2**32 - 1)),
                bias_seed=draw(st.none() | st.integers(0, 2**32 - 1)))


def make_net(spec):
    net = cbackprop.Network(spec["sizes"], spec["activations"], spec["loss"],
                            dtype=spec["dtype"], seed=spec["seed"])
    if spec["bias_seed"] is not None:
        # biases away from 0, so the bias paths matter
        rng = np.random.default_rng(spec["bias_seed"])
        net.biases = [rng.uniform(-0.5, 0.5, b.shape) for b in net.biases]
    return net


def ref_params(net):
    """The network's weights and biases in float64, for the reference."""
    return ([np.array(w, dtype=np.float64) for w in net.weights],
            [np.array(b, dtype=np.float64) for b in net.biases])


# -- arrays: values, dtypes, layouts -----------------------------------------------------------

# Data dtypes, weighted towards the ones that must work (repeats are weights).
VALID_DTYPES = ["f8", "f8", "f8", "f4", "f4", "f2", "i8", "i4", "u1", "?", ">f8", "<f4"]
WILD_DTYPES = VALID_DTYPES + ["O", "c16", "c8", "U8", "S8", "m8[s]", "M8[s]"]
# Special values sprinkled into float (and complex/object) data.
SPECIALS = [math.nan, math.inf, -math.inf, -0.0, 5e-324, 1e-45, 65504.0, 1e30, -1e30, 1e300,
            -1e300, 3.0e38, 3.5e38, 1.7e308]
LAYOUTS = ["C", "C", "C", "F", "every_other", "transposed", "reversed", "readonly", "list"]


@st.composite
def values(draw, shape, kind="float", lo=-10.0, hi=10.0):
    """float64 values of ``shape``: reals in [lo, hi], or integers in [lo, hi] (labels).

    Small arrays are drawn element by element (so hypothesis can shrink them); big ones (the
    nightly profile's hundreds of rows) from a drawn seed."""
    if int(np.prod(shape)) > 256:
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        if kind == "int":
            return rng.integers(int(lo), int(hi) + 1, shape).astype(np.float64)
        return rng.uniform(lo, hi, shape)
    if kind == "int":
        return draw(arrays(np.int64, shape, elements=st.integers(int(lo), int(hi)))).astype(
            np.float64)
    return draw(arrays(np.float64, shape, elements=st.floats(lo, hi, allow_subnormal=False)))


def _cast(base, dtype):
    return np.asarray(_cast_values(base, np.dtype(dtype)))


def _cast_values(base, dtype):
    if dtype.kind == "O":
        return base.astype(object)
    if dtype.kind in "US":
        return base.astype(dtype)                      # numbers written out as text
    if dtype.kind == "c":
        return (base + 0.5j * (base != 0)).astype(dtype)
    if dtype.kind in "mM":
        return np.nan_to_num(base).astype(np.int64).astype(dtype)
    if dtype.kind == "b":
        return base > 0
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.nan_to_num(base), info.min, info.max).astype(dtype)
    return base.astype(dtype)


@st.composite
def materialize(draw, base, wild, specials=True):
    """``base`` (float64 values) turned into what a user might pass: another dtype, a
    Fortran-ordered, strided, transposed, reversed or read-only array, or a nested list;
    with NaN, infinities and extreme values sprinkled in."""
    dtype = np.dtype(draw(st.sampled_from(WILD_DTYPES if wild else VALID_DTYPES)))
    base = np.array(base, dtype=np.float64)
    if specials and base.size and dtype.kind in "fcO" and draw(st.booleans()):
        flat = base.reshape(-1)
        for _ in range(draw(st.integers(1, 3))):
            flat[draw(st.integers(0, flat.size - 1))] = draw(st.sampled_from(SPECIALS))
    elif specials and base.size and dtype.kind in "iu" and draw(st.booleans()):
        info = np.iinfo(dtype)
        base.reshape(-1)[draw(st.integers(0, base.size - 1))] = draw(
            st.sampled_from([info.min, info.max]))
    arr = _cast(base, dtype)
    layout = draw(st.sampled_from(LAYOUTS))
    if layout == "F":
        arr = np.asfortranarray(arr)
    elif layout == "every_other" and arr.ndim >= 1:
        # arr lives in every other row of a bigger buffer (X[::2]), the rows between hold junk
        big = np.empty((2 * arr.shape[0],) + arr.shape[1:], dtype=arr.dtype)
        big[1::2] = _cast(np.full(arr.shape, 7.0), dtype) if arr.dtype.kind != "O" else "junk"
        big[::2] = arr
        arr = big[::2]
    elif layout == "transposed" and arr.ndim == 2:
        arr = np.ascontiguousarray(arr.T).T            # X.T view of a C array
    elif layout == "reversed" and arr.ndim >= 1:
        arr = np.ascontiguousarray(arr[::-1])[::-1]    # negative strides
    elif layout == "readonly":
        arr = arr.copy()
        arr.flags.writeable = False
    elif layout == "list":
        return arr.tolist()
    return arr


def snapshot(a):
    """What ``unchanged`` compares: the value and its exact bytes (object arrays: which
    objects they hold)."""
    if isinstance(a, np.ndarray):
        return ("array", a.copy(), np.ascontiguousarray(a).tobytes(), a.flags.writeable)
    return ("other", repr(a))


def assert_unchanged(a, snap, name):
    if snap[0] == "other":
        assert repr(a) == snap[1], f"{name} was modified"
        return
    _, copy, raw, writeable = snap
    assert a.flags.writeable == writeable, f"{name}'s writeable flag changed"
    if a.dtype.kind in "fc":
        assert np.array_equal(a, copy, equal_nan=True), f"{name} was modified"
    elif a.dtype.kind != "O":
        assert np.array_equal(a, copy), f"{name} was modified"
    assert np.ascontiguousarray(a).tobytes() == raw, f"{name} was modified (bytes differ)"


# -- the data strategies -----------------------------------------------------------------------

@st.composite
def X_data(draw, n_in, wild, profile=SMALL):
    """Inputs for a network of ``n_in`` inputs: right-shaped most of the time; ``wild`` adds
    wrong feature counts, 0 rows, 3-D and 0-D arrays and non-numeric dtypes."""
    n = draw(st.integers(1, profile["max_rows"]))
    shapes = [(n, n_in), (n, n_in), (n, n_in), (1, n_in), (n_in,)]
    if wild:
        shapes += [(0, n_in), (n, n_in + 1), (n, max(n_in - 1, 0)), (n_in + 1,), (n, n_in, 1),
                   (1, n, n_in), (), (0,), (n_in, n) if n != n_in else (n, n_in + 2)]
    shape = draw(st.sampled_from(shapes))
    return draw(materialize(draw(values(shape)), wild))


@st.composite
def Y_data(draw, n, n_out, loss, single, wild):
    """Targets for ``n`` samples: float targets, 1-D integer labels, a 1-D vector, and with
    ``wild`` labels out of range, float labels, wrong lengths and columns, negative
    probabilities for cross_entropy, 3-D arrays."""
    lo, hi = (0.0, 1.0) if loss == "cross_entropy" else (-10.0, 10.0)
    forms = ["targets", "targets", "labels"]
    if n_out == 1:
        forms.append("vector")
    if single:
        forms += ["sample", "scalar"]
    if wild:
        forms += ["bad_labels", "float_labels", "wrong_length", "wrong_columns", "3d",
                  "bad_probabilities", "scalar"]
    form = draw(st.sampled_from(forms))
    if form == "targets":
        base = draw(values((n, n_out), lo=lo, hi=hi))
    elif form == "labels":
        base = draw(values((n,), "int", 0, n_out - 1))
    elif form == "vector":
        base = draw(values((n,), lo=lo, hi=hi))
    elif form == "sample":
        base = draw(values((n_out,), lo=lo, hi=hi))
    elif form == "scalar":
        base = draw(values((), "int", -1, n_out))
    elif form == "bad_labels":
        base = draw(values((n,), "int", -2, n_out + 2))
    elif form == "float_labels":
        base = draw(values((n,), lo=-1, hi=n_out))
    elif form == "wrong_length":
        k = draw(st.sampled_from([0, n + 1, max(n - 1, 0), 2 * n]))
        base = draw(values((k, n_out) if draw(st.booleans()) else (k,), "int", 0, n_out - 1))
    elif form == "wrong_columns":
        base = draw(values((n, n_out + draw(st.sampled_from([-1, 1, 2]))), lo=lo, hi=hi))
    elif form == "3d":
        base = draw(values((n, n_out, 1), lo=lo, hi=hi))
    else:                                   # probabilities outside [0, 1]
        base = draw(values((n, n_out), lo=-0.5, hi=1.5))
    if form in ("labels", "bad_labels", "scalar") or (form == "wrong_length" and base.ndim == 1):
        # labels are integers; sometimes bool, float or anything else
        dtype = draw(st.sampled_from(["i8", "i8", "i4", "u1", "u8", ">i8", "?", "f8"] +
                                     (["O", "U4", "f4"] if wild else [])))
        base = base.astype(np.float64)
        arr = _cast(np.clip(base, 0, None) if np.dtype(dtype).kind == "u" else base, dtype)
        if draw(st.booleans()) and arr.ndim:
            return draw(st.sampled_from(["C", "every_other", "reversed", "readonly"]).map(
                lambda lay: _relayout(arr, lay)))
        return arr
    return draw(materialize(base, wild))


def _relayout(arr, layout):
    if layout == "every_other":
        big = np.zeros((2 * arr.shape[0],) + arr.shape[1:], dtype=arr.dtype)
        big[::2] = arr
        return big[::2]
    if layout == "reversed":
        return np.ascontiguousarray(arr[::-1])[::-1]
    if layout == "readonly":
        arr = arr.copy()
        arr.flags.writeable = False
    return arr


# -- the oracle: the README's rules, written independently of cbackprop/_config.py -------------

def expect_X(X, n_in, dtype):
    """(n, n_in) array of ``dtype`` and whether a 1-D sample was given, or Invalid."""
    a = np.asarray(X)
    if a.dtype.kind not in "biuf":
        raise Invalid("X is not real numbers")
    if a.ndim not in (1, 2):
        raise Invalid("X is not 1-D or 2-D")
    single = a.ndim == 1
    a = a.reshape(1, -1) if single else a
    if a.shape[0] == 0 or a.shape[1] != n_in:
        raise Invalid("X has no rows or the wrong feature count")
    with np.errstate(over="ignore", invalid="ignore"):
        a = a.astype(dtype)
    if not np.isfinite(a).all():
        raise Invalid("X has NaN or infinity (in the network's dtype)")
    return a, single


def expect_Y(Y, n, n_out, dtype, loss, single):
    """(n, n_out) targets of ``dtype``, or Invalid."""
    a = np.asarray(Y)
    if a.dtype.kind not in "biuf":
        raise Invalid("Y is not real numbers")
    if single and a.ndim == 0:
        a = a.reshape(1)                 # one sample's label (or its single target)
    elif single and a.ndim == 1 and a.size == n_out:
        a = a.reshape(1, n_out)          # one sample's target row
    if a.ndim == 1:
        if n_out == 1:
            a = a.reshape(-1, 1)
        elif a.dtype.kind in "biu":
            labels = [int(v) for v in a]
            if any(not 0 <= v < n_out for v in labels):
                raise Invalid("label out of range")
            a = np.eye(n_out)[labels] if labels else np.zeros((0, n_out))
        else:
            raise Invalid("1-D float Y for several outputs")
    if a.ndim != 2 or a.shape != (n, n_out):
        raise Invalid("Y has the wrong shape")
    with np.errstate(over="ignore", invalid="ignore"):
        a = a.astype(dtype)
    if not np.isfinite(a).all():
        raise Invalid("Y has NaN or infinity")
    if loss == "cross_entropy" and ((a < 0).any() or (a > 1).any()):
        raise Invalid("cross_entropy targets outside [0, 1]")
    return a


def outcome(call, *args, **kwargs):
    """(result, None) or (None, exception) -- with only the allowed exception types: bad
    input's ValueError/TypeError, and FloatingPointError for a result that overflowed (whether
    the overflow was genuine is checked by the caller)."""
    try:
        return call(*args, **kwargs), None
    except ALLOWED + (FloatingPointError,) as exc:
        return None, exc


def is_input_error(exc):
    return isinstance(exc, ALLOWED)


def max_abs(*arrays_):
    return max([float(np.max(np.abs(a))) for a in arrays_ if a.size] or [0.0])


def rtol_of(dtype):
    """conftest's relative tolerance for a dtype given as a type or a numpy dtype."""
    return RTOL[np.dtype(dtype).type]


def assert_close(actual, expected, dtype, what):
    rtol = rtol_of(dtype)
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(1.0, max_abs(expected))
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=rtol,
                               atol=rtol * scale, err_msg=what)


def check_output(net, out, Xc, single, exc=None):
    """Properties (c) and (e) for forward's result on the oracle's cast inputs ``Xc``: its
    output ``out``, or the FloatingPointError ``exc`` it raised for an overflowing result.

    Strict (finite, equal to the reference, in [0, 1]; no FloatingPointError) when no input
    sum of the reference's float64 pass comes near the dtype's largest value; beyond that the
    sums may overflow, and forward may raise FloatingPointError (an inf/NaN output instead
    is left to test_forward_of_finite_inputs_is_finite_or_raises); then only the ranges that
    survive an overflow are checked.
    """
    n_out = net.sizes[-1]
    W, b = ref_params(net)
    with np.errstate(all="ignore"):
        zs, hs = reference.forward_pass(W, b, list(net.activations), Xc.astype(np.float64))
    in_range = all(np.isfinite(z).all() for z in zs) and \
        max_abs(*zs) <= np.finfo(net.dtype).max / 1e6
    if exc is not None:
        assert isinstance(exc, FloatingPointError), exc
        assert not in_range, f"forward raised {exc!r} for a result well inside the dtype's range"
        return
    assert out.shape == ((n_out,) if single else (Xc.shape[0], n_out))
    assert out.dtype == net.dtype
    out2 = out.reshape(-1, n_out)
    unit = (out >= 0) & (out <= 1)
    if in_range:
        assert np.isfinite(out).all(), "forward returned NaN or infinity for finite inputs"
        expected = hs[-1]
        tol = rtol_of(net.dtype) * max(1.0, max_abs(expected)) + 4 * rounding_bound(
            W, b, list(net.activations), Xc.astype(np.float64), net.dtype)
        error = np.abs(out2 - expected)
        assert (error <= tol).all(), (
            f"forward differs from the reference by up to {error.max():.3g} "
            f"(allowed {tol.ravel()[np.argmax(error)]:.3g}) at {np.argwhere(error > tol)[:5]}")
        if net.activations[-1] in ("sigmoid", "softmax"):
            assert unit.all()
        if net.activations[-1] == "softmax":
            np.testing.assert_allclose(out2.sum(axis=1), 1, rtol=10 * rtol_of(net.dtype))
    elif net.activations[-1] in ("sigmoid", "softmax"):
        assert (unit | np.isnan(out)).all()


def forward_and_check(net, X):
    """forward on valid ``X`` (of the network's dtype), checked by check_output."""
    out, exc = outcome(net.forward, X)
    assert not is_input_error(exc), f"forward rejected valid X: {exc!r}"
    check_output(net, out, X.astype(net.dtype), X.ndim == 1, exc)


def rounding_bound(W, b, acts, X, dtype):
    """A first-order bound on the rounding error of the output computed in ``dtype``: each
    input sum errs by at most (n_in + 2) eps times the sum of its terms' magnitudes, errors
    pass through the next layers' |W| (activations are 1-Lipschitz; softmax 2-Lipschitz in
    the max norm), and each activation adds a few ulp. Zero for exactly representable work;
    rtol * scale dominates for well-conditioned sums, this only for cancelling ones (trained
    weights, big inputs)."""
    eps = float(np.finfo(dtype).eps)
    h, err = X, np.zeros_like(X)
    with np.errstate(all="ignore"):
        for Wl, bl, name in zip(W, b, acts):
            absW = np.abs(Wl)
            err = err @ absW.T + (Wl.shape[1] + 2) * eps * (np.abs(h) @ absW.T + np.abs(bl))
            if name == "softmax":
                err = 2 * err.max(axis=1, keepdims=True)
            h = reference.ACTIVATIONS[name](h @ Wl.T + bl)
            err = err + 4 * eps * np.abs(h)
    return np.nan_to_num(err, nan=np.inf)


def near_relu_kink(W, b, acts, X, dtype):
    """Whether some relu unit's input sum is within rounding (or underflow) of 0, where the
    dtype's computation may take the other side of the kink than the float64 reference and
    the gradient legitimately differs by the whole of that unit's contribution."""
    eps, tiny = float(np.finfo(dtype).eps), float(np.finfo(dtype).tiny)
    h = X
    for Wl, bl, name in zip(W, b, acts):
        z = h @ Wl.T + bl
        if name == "relu":
            terms = np.abs(h) @ np.abs(Wl).T + np.abs(bl)
            if (np.abs(z) <= 64 * eps * terms + tiny).any():
                return True
        h = reference.ACTIVATIONS[name](z)
    return False


def fresh_valid_X(net, rows=5, seed=0):
    return np.random.default_rng(seed).uniform(-2, 2, (rows, net.sizes[0])).astype(net.dtype)


def state_of(net):
    s = net.optimizer_state
    return (net.get_params(), s["state"], s["optimizer"], s["steps"], s["epochs"],
            sorted(s["schedule"].items()))


def assert_same_state(a, b, what):
    assert np.array_equal(a[0], b[0], equal_nan=True), f"{what}: parameters changed"
    assert np.array_equal(a[1], b[1], equal_nan=True), f"{what}: optimizer state changed"
    assert a[2:] == b[2:], f"{what}: optimizer bookkeeping changed"


# -- 1. construction ---------------------------------------------------------------------------

WILD_SIZE = st.sampled_from([0, -1, 2**31 - 1, 2**31, 2**40, 2**30, True, 3.0, "3", None])
WILD_CONFIG = {
    "sizes": st.one_of(
        st.lists(st.one_of(st.integers(1, 9), WILD_SIZE), min_size=0, max_size=5),
        st.sampled_from([None, 3, "3,3", (2, 3), [4], [], np.array([2, 3, 1]),
                         np.array([[2, 3]]), np.array([2.0, 3.0]), [np.int64(4), np.uint8(2)],
                         [2**30, 2**30], [1, 2**31 - 1], [2**14, 2**14, 2]])),
    "activations": st.one_of(
        st.sampled_from(["Sigmoid", "", "elu", None, 1, b"tanh", "softmax"]),
        st.lists(st.sampled_from(OUTPUT + ["elu", None, 1]), min_size=0, max_size=5)),
    "loss": st.sampled_from(["cross_entropy", "MSE", "", None, 0, "mse "]),
    "dtype": st.sampled_from(["float32", "f8", ">f8", np.dtype("f4"), np.float16, np.int32,
                              "complex128", object, "nonsense", 3, None, np.longdouble]),
    "seed": st.sampled_from([2**63, 2**200, -1, 1.5, "0", [1, 2]]),
}


@st.composite
def configs(draw):
    """Network(...) arguments: a valid configuration with up to two arguments replaced by
    anything (so about a third of the cases build a network)."""
    spec = draw(net_specs())
    acts = spec["activations"]
    config = dict(sizes=spec["sizes"],
                  activations=acts[0] if len(set(acts)) == 1 and draw(st.booleans()) else acts,
                  loss=spec["loss"], dtype=spec["dtype"], seed=spec["seed"])
    for name in draw(st.sets(st.sampled_from(sorted(WILD_CONFIG)), max_size=2)):
        config[name] = draw(WILD_CONFIG[name])
    return config


@fuzz_settings(1500)
@given(config=configs())
@example(config=dict(sizes=[1, 1, 1], activations="sigmoid", loss="mse", dtype=np.float64,
                     seed=0)).via("1-unit layers")
@example(config=dict(sizes=[2**30, 2**30], activations="linear", loss="mse",
                     dtype=np.float64, seed=0)).via("2^60 parameters: refused, not allocated")
@example(config=dict(sizes=[3, 4, 2], activations=["softmax", "softmax"], loss="mse",
                     dtype=np.float64, seed=0)).via("softmax in a hidden layer")
@example(config=dict(sizes=[3, 4, 2], activations=["relu", "relu"], loss="cross_entropy",
                     dtype=np.float32, seed=0)).via("cross_entropy with a relu output")
def test_fuzz_construction(config):
    """Network(...) with anything: a valid network or ValueError/TypeError, never a large
    allocation for a rejected size."""
    sizes, activations, loss, dtype, seed = (config[k] for k in (
        "sizes", "activations", "loss", "dtype", "seed"))
    arg_snaps = {k: snapshot(v) for k, v in
                 dict(sizes=sizes, activations=activations).items()}
    net, exc = outcome(cbackprop.Network, sizes, activations, loss, dtype=dtype, seed=seed)
    for k, v in dict(sizes=sizes, activations=activations).items():
        assert_unchanged(v, arg_snaps[k], k)
    verdict = _expect_config(sizes, activations, loss, dtype)
    event(f"Network: {type(exc).__name__ if exc else 'result'}")
    if exc is not None:
        note(f"raised {exc!r}")
        assert is_input_error(exc), exc
        # only the seed (given to numpy) may be rejected besides the documented rules
        assert isinstance(verdict, Invalid) or seed in WILD_SEEDS, \
            f"a valid configuration was rejected: {exc!r}"
        return
    assert not isinstance(verdict, Invalid), f"accepted an invalid configuration ({verdict})"
    sizes_t, acts, dt = verdict
    assert net.sizes == sizes_t and net.activations == acts and net.loss_name == loss
    assert net.dtype == dt
    for layer, (W, b) in enumerate(zip(net.weights, net.biases)):
        n_in, n_out = sizes_t[layer], sizes_t[layer + 1]
        assert W.shape == (n_out, n_in) and b.shape == (n_out,) and W.dtype == dt
        limit = math.sqrt(6 / n_in) if acts[layer] == "relu" else math.sqrt(6 / (n_in + n_out))
        assert (np.abs(W) <= limit * (1 + 1e-6)).all() and (b == 0).all()
    X = fresh_valid_X(net)
    forward_and_check(net, X)


# seeds that numpy's default_rng refuses (the library passes the seed on unchecked)
WILD_SEEDS = (-1, 1.5, "0")


def _expect_config(sizes, activations, loss, dtype):
    """(sizes, activations, dtype) or an Invalid(reason)."""
    try:
        sizes = list(sizes)
    except TypeError:
        return Invalid("sizes is not a sequence")
    if len(sizes) < 2 or any(isinstance(s, (bool, np.bool_)) or not isinstance(
            s, (int, np.integer)) for s in sizes):
        return Invalid("sizes are not >= 2 integers")
    sizes = tuple(int(s) for s in sizes)
    if any(not 1 <= s < 2**31 for s in sizes):
        return Invalid("a size out of range")
    if sum(a * b + b for a, b in zip(sizes, sizes[1:])) > 2**28:
        return Invalid("too many parameters")
    n_layers = len(sizes) - 1
    acts = [activations] * n_layers if isinstance(activations, str) else activations
    try:
        acts = tuple(acts)
    except TypeError:
        return Invalid("activations is not a sequence")
    if len(acts) != n_layers or any(a not in OUTPUT for a in acts) or "softmax" in acts[:-1]:
        return Invalid("bad activations")
    if loss not in ("mse", "cross_entropy") or (
            loss == "cross_entropy" and acts[-1] not in ("softmax", "sigmoid")):
        return Invalid("bad loss")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        return Invalid("not a dtype")
    if dt.type not in (np.float32, np.float64):
        return Invalid("not float32/float64")
    return sizes, acts, np.dtype(dt.type)


# -- 2. forward and predict --------------------------------------------------------------------

@fuzz_settings(900)
@given(spec=net_specs(), data=st.data(), wild=st.booleans(),
       method=st.sampled_from(["forward", "predict"]))
def test_fuzz_forward(spec, data, wild, method):
    net = make_net(spec)
    X = data.draw(X_data(net.sizes[0], wild), label="X")
    _check_forward(net, X, method)


def _check_forward(net, X, method="forward"):
    params = net.get_params()
    snap = snapshot(X)
    out, exc = outcome(getattr(net, method), X)
    event(f"forward: {type(exc).__name__ if exc else 'result'}")
    assert_unchanged(X, snap, "X")
    assert np.array_equal(net.get_params(), params), "forward changed the parameters"
    try:
        Xc, single = expect_X(X, net.sizes[0], net.dtype)
    except Invalid as why:
        assert is_input_error(exc), f"accepted invalid X ({why}): {exc!r}"
        return
    assert not is_input_error(exc), f"rejected valid X: {exc!r}"
    if isinstance(X, np.ndarray) and exc is None:
        assert not np.shares_memory(out, X), "the output shares memory with X"
    check_output(net, out, Xc, single, exc)


# -- 3. loss and gradients ---------------------------------------------------------------------

@fuzz_settings(900)
@given(spec=net_specs(), data=st.data(), wild=st.booleans())
@example(spec=dict(sizes=[1, 1, 1], activations=["sigmoid", "sigmoid"], loss="mse",
                   dtype=np.float64, seed=0, bias_seed=None),
         data=dict(X=np.array([0.5]), Y=1.0), wild=False).via(
             "1-unit layers, one 1-D sample, a scalar target")
@example(spec=dict(sizes=[1, 1, 1], activations=["relu", "sigmoid"], loss="mse",
                   dtype=np.float32, seed=1, bias_seed=None),
         data=dict(X=np.array([[1e-45]]), Y=np.zeros((1, 1))), wild=False).via(
             "w x underflows to 0 in float32: the relu's kink, not a wrong gradient")
def test_fuzz_loss_and_gradients(spec, data, wild):
    net = make_net(spec)
    if isinstance(data, dict):
        X, Y = data["X"], data["Y"]
    else:
        X = data.draw(X_data(net.sizes[0], wild), label="X")
        n, single = _rows_and_single(X)
        Y = data.draw(Y_data(n, net.sizes[-1], net.loss_name, single, wild), label="Y")
    _check_loss_and_gradients(net, X, Y)


def _rows_and_single(X):
    a = np.asarray(X)
    if a.ndim == 1:
        return 1, True
    return (a.shape[0] if a.ndim else 1), False


def _check_loss_and_gradients(net, X, Y):
    params = net.get_params()
    snaps = snapshot(X), snapshot(Y)
    loss, loss_exc = outcome(net.loss, X, Y)
    grads, grad_exc = outcome(net.gradients, X, Y)
    event(f"loss: {type(loss_exc).__name__ if loss_exc else 'result'}")
    assert_unchanged(X, snaps[0], "X")
    assert_unchanged(Y, snaps[1], "Y")
    assert np.array_equal(net.get_params(), params), "loss/gradients changed the parameters"
    try:
        Xc, single = expect_X(X, net.sizes[0], net.dtype)
        Yc = expect_Y(Y, Xc.shape[0], net.sizes[-1], net.dtype, net.loss_name, single)
    except Invalid as why:
        assert is_input_error(loss_exc) and is_input_error(grad_exc), \
            f"accepted invalid data ({why}): {loss_exc!r}, {grad_exc!r}"
        return
    assert not is_input_error(loss_exc), f"rejected valid data: {loss_exc!r}"
    assert not is_input_error(grad_exc), f"rejected valid data: {grad_exc!r}"
    moderate = max_abs(Xc, Yc) <= MODERATE
    if loss_exc is not None or grad_exc is not None:
        # an overflowing loss or gradient (FloatingPointError): only for data far beyond
        # anything the fresh network's sums can overflow on otherwise
        assert not moderate, f"overflow reported for moderate data: {loss_exc or grad_exc!r}"
        return
    assert isinstance(loss, float)
    dW, db = grads
    assert [w.shape for w in dW] == [w.shape for w in net.weights]
    assert [b.shape for b in db] == [b.shape for b in net.biases]
    assert all(a.dtype == net.dtype for a in dW + db)
    if not moderate:
        return
    assert math.isfinite(loss) and loss >= 0
    W, b = ref_params(net)
    acts = list(net.activations)
    X64, Y64 = Xc.astype(np.float64), Yc.astype(np.float64)
    expected = reference.loss(W, b, acts, net.loss_name, X64, Y64)
    assert loss == pytest.approx(expected, rel=rtol_of(net.dtype), abs=rtol_of(net.dtype))
    if near_relu_kink(W, b, acts, X64, net.dtype):
        return
    rdW, rdb = reference.gradients(W, b, acts, net.loss_name, X64, Y64)
    scale = max(1.0, max_abs(*rdW, *rdb))
    # a mean over many rows may cancel: allow the rounding of its terms' magnitudes too
    terms = _gradient_term_magnitudes(W, b, acts, net.loss_name, X64, Y64)
    eps = float(np.finfo(net.dtype).eps)
    for got, want, mag in zip(dW + db, rdW + rdb, terms):
        tol = rtol_of(net.dtype) * scale + 16 * eps * (X64.shape[0] + max(net.sizes)) * mag
        error = np.abs(got - want)
        assert (error <= tol).all(), f"gradient differs from the reference by {error.max():.3g}"


def _gradient_term_magnitudes(W, b, acts, loss, X, Y):
    """mean_s |delta_s| |h_s|^T (and mean_s |delta_s|) per layer: the size of the terms each
    gradient entry sums, against which its rounding error is measured."""
    zs, hs = reference.forward_pass(W, b, acts, X)
    deltas = reference.backward_pass(W, acts, hs, reference.output_delta(
        loss, acts[-1], hs[-1], Y))
    n = X.shape[0]
    return ([np.abs(d).T @ np.abs(h) / n for d, h in zip(deltas, hs[:-1])] +
            [np.abs(d).sum(axis=0) / n for d in deltas])


# -- 4. train ----------------------------------------------------------------------------------

class LaterBadSchedule:
    """A schedule function whose first value is fine and whose later ones are NaN."""

    def __call__(self, epoch):
        return 0.05 if epoch == 0 else math.nan

    def __repr__(self):
        return "LaterBadSchedule()"


def _constant_schedule(epoch):
    return 0.05


# (valid values, extra wild values) of every hyper-parameter
HYPER = {
    "epochs": ([0, 1, 1, 2, 3], [-1, -3, 1.0, True, "2", None, np.int64(2)]),
    "lr": ([None, 0.1, 0.01, 1.0, 1e-300, 1e300, np.float32(0.05), Fraction(1, 10), 5e-324,
            1.4e-45, 1e30],
           [0, 0.0, -0.1, math.nan, math.inf, -math.inf, "0.1", True, 1e39, [0.1]]),
    "batch_size": ([None, 1, 2, "n", "n+1", np.int64(3), 10**12],
                   [0, -1, 2.0, True, "2", 1.5]),
    "momentum": ([0.0, 0.5, 0.9, 0.999], [-1.0, 1.0, 2.0, -0.1, math.nan, "0.9", True]),
    "optimizer": (["sgd", "sgd", "adam", "adamw", "rprop", cbackprop.Adam(beta2=0.99),
                   cbackprop.Rprop(), cbackprop.SGD(0.5, True)],
                  ["Adam", "", None, 3, "lbfgs", cbackprop.Adam, cbackprop.Rprop(decrease=2)]),
    "nesterov": ([False, True], ["yes", 1, None]),
    "l2": ([0.0, 1e-3, 0.1, 1e300], [-1e-3, math.nan, math.inf, "0", None, True]),
    "lr_schedule": (["constant", "step", "inverse_scaling", "plateau", _constant_schedule,
                     cbackprop.StepDecay(1, 0.5), cbackprop.ReduceOnPlateau(patience=0)],
                    ["bogus", None, 3, LaterBadSchedule()]),
    "validation_split": ([0.0, 0.0, 0.25, 0.5], [-0.5, 1.0, 1.5, math.nan, "0.1", 0.99]),
    "shuffle": ([True, False], [1, "no", None]),
    "seed": ([None, 0, 12345], [-1, 1.5, "1"]),
    "early_stopping": ([False, True], ["yes", 1]),
    "patience": ([0, 1, 10], [-1, 1.5]),
}
SAMPLE_WEIGHT = ["none", "ones", "random", "zeros"]
SAMPLE_WEIGHT_WILD = ["wrong_length", "2d", "negative", "nan", "strings", "scalar"]


@st.composite
def train_cases(draw, n, profile=SMALL):
    """Keyword arguments for train: valid values for all but up to two hyper-parameters,
    which may take any value (so about half the cases reach the kernels)."""
    wild = draw(st.sets(st.sampled_from(sorted(HYPER) + ["sample_weight"]), max_size=2))
    kwargs = {}
    for name, (good, bad) in HYPER.items():
        if not draw(st.booleans()) and name not in wild:
            continue                          # left at its default
        value = draw(st.sampled_from(good + bad if name in wild else good))
        if name == "epochs" and profile is LARGE and value in (2, 3):
            value = draw(st.integers(1, profile["max_epochs"]))
        if name == "batch_size" and isinstance(value, str) and value.startswith("n"):
            value = n + (value == "n+1")
        if name == "momentum" and draw(st.booleans()):
            value = draw(st.floats(-1, 2) if name in wild else st.floats(0, 0.99))
        if name == "validation_split" and name in wild and draw(st.booleans()):
            value = draw(st.floats(-0.5, 1.5))
        kwargs[name] = value
    # the arguments that belong to one optimizer only, kept consistent unless wild
    opt = kwargs.get("optimizer", "sgd")
    if "momentum" not in wild and (opt != "sgd"):
        kwargs.pop("momentum", None)
    if "nesterov" not in wild and (opt != "sgd" or not kwargs.get("momentum")):
        kwargs.pop("nesterov", None)
    if isinstance(opt, (str, cbackprop.Rprop)) and (opt == "rprop" or isinstance(
            opt, cbackprop.Rprop)):
        for name in ("lr", "batch_size", "lr_schedule"):
            if name not in wild:
                kwargs.pop(name, None)
    kind = draw(st.sampled_from(SAMPLE_WEIGHT + (SAMPLE_WEIGHT_WILD if "sample_weight" in wild
                                                 else [])))
    kwargs["sample_weight"] = _sample_weight(kind, n, draw)
    kwargs["verbose"] = False
    return kwargs


def _sample_weight(kind, n, draw):
    if kind == "none":
        return None
    if kind == "ones":
        return np.ones(n)
    if kind == "zeros":
        return np.zeros(n, dtype=np.float32)
    if kind == "random":
        return draw(materialize(draw(values((n,), lo=0, hi=3)), wild=False, specials=False))
    if kind == "wrong_length":
        return np.ones(n + 1)
    if kind == "2d":
        return np.ones((n, 1))
    if kind == "negative":
        return -np.ones(n)
    if kind == "nan":
        w = np.ones(n)
        w[-1] = math.nan
        return w
    if kind == "strings":
        return np.ones(n).astype("U3")
    return 1.0


def expect_train(net, X, Y, kw):
    """The README's rules for train's arguments: None when they all hold, else the reason."""
    try:
        Xc, single = expect_X(X, net.sizes[0], net.dtype)
        Yc = expect_Y(Y, Xc.shape[0], net.sizes[-1], net.dtype, net.loss_name, single)
    except Invalid as why:
        return str(why)
    n, ft = Xc.shape[0], net.dtype.type

    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))

    def is_real(v):
        return isinstance(v, (int, float, np.integer, np.floating, Fraction)) and not \
            isinstance(v, (bool, np.bool_))

    def in_dtype(v):
        with np.errstate(over="ignore", under="ignore"):
            return float(ft(float(v)))

    epochs = kw.get("epochs", 1)
    if not is_int(epochs) or epochs < 0:
        return "epochs"
    opt = kw.get("optimizer", "sgd")
    known = ("sgd", "adam", "adamw", "rprop")
    if isinstance(opt, str):
        if opt not in known:
            return "optimizer name"
        name = opt
    elif isinstance(opt, (cbackprop.SGD, cbackprop.Adam, cbackprop.Rprop)):
        name = opt.name
        if isinstance(opt, cbackprop.Rprop) and not 0 < opt.decrease < 1:
            return "Rprop decrease"
    else:
        return "optimizer type"
    momentum, nesterov = kw.get("momentum", 0.0), kw.get("nesterov", False)
    if not is_real(momentum):
        return "momentum type"
    if name != "sgd" and (momentum != 0 or nesterov):
        return "momentum/nesterov with another optimizer"
    if not isinstance(opt, str) and (momentum != 0 or nesterov):
        return "momentum/nesterov beside an optimizer object"
    if isinstance(opt, str) and name == "sgd":
        if not (0 <= momentum < 1 and 0 <= in_dtype(momentum) < 1):
            return "momentum range"
        if not isinstance(nesterov, (bool, np.bool_)):
            return "nesterov type"
        if nesterov and in_dtype(momentum) == 0:
            return "nesterov without momentum"
    lr, batch_size = kw.get("lr"), kw.get("batch_size")
    schedule = kw.get("lr_schedule", "constant")
    if name == "rprop":
        if lr is not None or batch_size is not None:
            return "lr or batch_size with rprop"
        if not (isinstance(schedule, str) and schedule == "constant"):
            if not isinstance(schedule, str) or schedule not in (
                    "constant", "step", "inverse_scaling", "plateau"):
                return "bad schedule"
            return "a schedule with rprop"
    else:
        lr = (0.001 if name.startswith("adam") else 0.1) if lr is None else lr
        if not is_real(lr) or not (0 < lr < math.inf and 0 < in_dtype(lr) < math.inf):
            return "lr"
        if batch_size is not None and (not is_int(batch_size) or batch_size < 1):
            return "batch_size"
    l2 = kw.get("l2", 0.0)
    if not is_real(l2) or not (0 <= l2 < math.inf and in_dtype(l2) < math.inf):
        return "l2"
    if isinstance(schedule, str) and schedule not in ("constant", "step", "inverse_scaling",
                                                     "plateau"):
        return "schedule name"
    schedule_objects = (cbackprop.Constant, cbackprop.StepDecay, cbackprop.InverseScaling,
                        cbackprop.ReduceOnPlateau)
    if not isinstance(schedule, (str, *schedule_objects)) and not callable(schedule):
        return "schedule type"
    for flag in ("shuffle", "early_stopping"):
        if not isinstance(kw.get(flag, False), (bool, np.bool_)):
            return flag
    patience = kw.get("patience", 10)
    if not is_int(patience) or patience < 0:
        return "patience"
    seed = kw.get("seed")
    if seed is not None and (not is_int(seed) or seed < 0):
        return "seed"
    w = kw.get("sample_weight")
    if w is not None:
        w = np.asarray(w)
        if w.dtype.kind not in "biuf" or w.shape != (n,):
            return "sample_weight shape/type"
        if not np.isfinite(w.astype(net.dtype)).all() or (w < 0).any():
            return "sample_weight values"
    split = kw.get("validation_split", 0.0)
    if not is_real(split) or not 0 <= split < 1:
        return "validation_split range"
    if split and math.ceil(split * n) >= n:
        return "validation_split leaves nothing"
    return None


@fuzz_settings(900)
@given(spec=net_specs(), data=st.data(), wild_data=st.booleans(),
       pretrain=st.sampled_from([None, "sgd", "adam", "rprop"]))
@example(spec=dict(sizes=[1, 1, 1], activations=["sigmoid", "sigmoid"], loss="mse",
                   dtype=np.float64, seed=0, bias_seed=None),
         data=dict(X=np.array([[0.3]]), Y=np.array([1.0]), kw=dict(lr=1e300, epochs=3)),
         wild_data=False, pretrain=None).via("lr=1e300: diverges or stays finite")
@example(spec=dict(sizes=[2, 1, 2], activations=["relu", "softmax"], loss="cross_entropy",
                   dtype=np.float32, seed=1, bias_seed=2),
         data=dict(X=np.array([[1.0, -1.0]]), Y=np.array([1]), kw=dict(lr=1e300, epochs=1,
                                                                       batch_size=1)),
         wild_data=False, pretrain=None).via("lr=1e300 is not a float32 lr")
@example(spec=dict(sizes=[3, 2, 1], activations=["tanh", "linear"], loss="mse",
                   dtype=np.float64, seed=3, bias_seed=None),
         data=dict(X=np.ones((4, 3)), Y=np.ones(4), kw=dict(lr=1e-300, epochs=2,
                                                            batch_size=10**12)),
         wild_data=False, pretrain="sgd").via("lr=1e-300, batch larger than the data")
@example(spec=dict(sizes=[1, 1, 1], activations=["sigmoid", "sigmoid"], loss="mse",
                   dtype=np.float64, seed=0, bias_seed=None),
         data=dict(X=np.zeros((1, 1)), Y=np.zeros((1, 1)),
                   kw=dict(lr=5e-324, lr_schedule=cbackprop.StepDecay(1, 0.5))),
         wild_data=False, pretrain="sgd").via("the continued schedule's lr is 0: refused")
def test_fuzz_train(spec, data, wild_data, pretrain):
    net = make_net(spec)
    if isinstance(data, dict):
        X, Y, kw = data["X"], data["Y"], data["kw"]
    else:
        X = data.draw(X_data(net.sizes[0], wild_data), label="X")
        n, single = _rows_and_single(X)
        Y = data.draw(Y_data(n, net.sizes[-1], net.loss_name, single, wild_data), label="Y")
        kw = data.draw(train_cases(max(n, 1)), label="train kwargs")
    _check_train(net, X, Y, kw, pretrain)


def _check_train(net, X, Y, kw, pretrain):
    if pretrain is not None:
        # some optimizer state to keep (or not) -- on valid data of the network's own
        Xp = fresh_valid_X(net, 6, 1)
        Yp = np.clip(net.forward(Xp) + 0.1, 0, 1)
        try:
            net.train(Xp, Yp, epochs=1, optimizer=pretrain, verbose=False,
                      **({"lr": 0.01} if pretrain == "sgd" else {}))
        except cbackprop.TrainingDiverged:
            pass                                       # restored: a state all the same
    before = state_of(net)
    W0, b0 = ref_params(net)
    snaps = {name: snapshot(v) for name, v in [("X", X), ("Y", Y), *kw.items()]
             if isinstance(v, np.ndarray)}
    verdict = expect_train(net, X, Y, kw)
    note(f"oracle: {verdict or 'valid'}")
    history = None
    try:
        history = net.train(X, Y, **kw)
        exc = None
    except cbackprop.TrainingDiverged as e:
        exc = e
    except ALLOWED as e:
        exc = e
    note(f"raised {exc!r}")
    event(f"train: {type(exc).__name__ if exc else 'result'}")
    for name, v in [("X", X), ("Y", Y), *kw.items()]:
        if name in snaps:
            assert_unchanged(v, snaps[name], name)
    params = net.get_params()
    if isinstance(exc, cbackprop.TrainingDiverged):
        assert verdict is None, f"diverged on arguments the rules reject ({verdict})"
        assert np.isfinite(params).all(), "not restored after divergence"
        assert len(exc.history) == exc.epoch - 1
        if exc.epoch == 1:
            # restored to the state before epoch 1: the parameters as they were; the optimizer
            # state as this call started it (a switch of optimizer has already reset it)
            after = state_of(net)
            assert np.array_equal(after[0], before[0]), "diverged in epoch 1: not restored"
            if _same_optimizer(before[2], kw):
                # (the schedule's state may have gained its initial entries)
                assert_same_state(after[:5], before[:5], "diverged in epoch 1")
        return
    if exc is not None:
        # the rules above do not follow schedules: an lr that a schedule makes invalid
        # (LaterBadSchedule, or lr 5e-324 / 1.4e-45 decaying to 0) is refused when its epoch
        # comes -- and then too nothing may have changed
        scheduled = isinstance(exc, ValueError) and (
            "scheduled lr" in str(exc) or "lr_schedule(" in str(exc))
        assert verdict is not None or scheduled, f"rejected valid arguments: {exc!r}"
        assert_same_state(state_of(net), before, f"train raised {exc!r}")   # (d)
        return
    assert verdict is None, f"train accepted invalid arguments ({verdict})"
    assert np.isfinite(params).all()                                         # (f)
    # the training loss is finite (else TrainingDiverged); a validation loss may overflow
    # the dtype on held-out data of its own (float32: |h - y| > 1.8e19) without divergence
    assert all(math.isfinite(v) for v in history.loss)
    assert len(history.val_loss) in (0, len(history))
    epochs = kw.get("epochs", 1)
    assert len(history) <= epochs
    assert len(history) == epochs or history.stop_reason != "completed"
    forward_and_check(net, fresh_valid_X(net))
    _check_full_batch_step(net, X, Y, kw, W0, b0)


def _same_optimizer(previous, kw):
    """Whether train continues the optimizer state it finds (same kind, and for SGD the
    velocities survive only with momentum)."""
    opt = kw.get("optimizer", "sgd")
    name = opt if isinstance(opt, str) else opt.name
    if name == "sgd":
        momentum = kw.get("momentum", 0.0) if isinstance(opt, str) else opt.momentum
        return previous == "sgd" and momentum != 0
    return previous == name


def _check_full_batch_step(net, X, Y, kw, W0, b0):
    """One epoch of plain full-batch SGD is one gradient step: p - lr * grad(p), with the
    gradient from the reference."""
    plain = {"epochs", "lr", "batch_size", "sample_weight", "verbose", "shuffle", "seed"}
    if not set(kw) <= plain or kw.get("epochs", 1) != 1 or kw.get("sample_weight") is not None:
        return
    Xc, single = expect_X(X, net.sizes[0], net.dtype)
    Yc = expect_Y(Y, Xc.shape[0], net.sizes[-1], net.dtype, net.loss_name, single)
    lr = 0.1 if kw.get("lr") is None else float(kw["lr"])
    if kw.get("batch_size") is None or kw["batch_size"] < Xc.shape[0] or not (
            1e-6 <= lr <= 10) or max_abs(Xc, Yc) > MODERATE:
        return
    if near_relu_kink(W0, b0, list(net.activations), Xc.astype(np.float64), net.dtype):
        return
    dW, db = reference.gradients(W0, b0, list(net.activations), net.loss_name,
                                 Xc.astype(np.float64), Yc.astype(np.float64))
    expected = np.concatenate([np.concatenate([(w - lr * g).ravel(), c - lr * d])
                               for w, g, c, d in zip(W0, dW, b0, db)])
    assert_close(net.get_params(), expected, net.dtype, "one full-batch SGD epoch")


# -- 5. explain --------------------------------------------------------------------------------

INDEX_WILD = [0, -1, True, 1.0, "1", None, np.int64(1), 10**20]


@fuzz_settings(700)
@given(spec=net_specs(), data=st.data(), wild=st.booleans(), bias=st.booleans())
def test_fuzz_explain(spec, data, wild, bias):
    net = make_net(spec)
    n_layers = len(net.sizes) - 1

    def index(high):
        ints = st.integers(1, high)
        if wild:
            ints = st.one_of(ints, st.integers(-2, high + 2), st.sampled_from(INDEX_WILD))
        return data.draw(ints)

    layer = index(n_layers)
    in_range = isinstance(layer, (int, np.integer)) and not isinstance(layer, bool) and \
        1 <= layer <= n_layers
    i = index(net.sizes[layer] if in_range else 3)
    j = None if bias else index(net.sizes[layer - 1] if in_range else 3)
    eps = data.draw(st.sampled_from([None, None, None, 1e-4] + (
        [0.0, -1e-3, math.nan, "1e-4", 1e300] if wild else [])), label="eps")
    x = data.draw(X_data(net.sizes[0], wild, dict(SMALL, max_rows=2)), label="x")
    n, single = _rows_and_single(x)
    y = data.draw(Y_data(n, net.sizes[-1], net.loss_name, single, wild), label="y")
    _check_explain(net, x, y, layer, i, j, eps)


def _check_explain(net, x, y, layer, i, j, eps):
    params = net.get_params()
    snaps = snapshot(x), snapshot(y)
    if j is None:
        e, exc = outcome(net.explain_bias, x, y, layer, i, eps=eps)
    else:
        e, exc = outcome(net.explain, x, y, layer, i, j, eps=eps)
    assert_unchanged(x, snaps[0], "x")
    assert_unchanged(y, snaps[1], "y")
    # explain perturbs one parameter for the central difference and must put it back exactly
    assert np.array_equal(net.get_params(), params), "explain changed the parameters"
    note(f"raised {exc!r}")
    event(f"explain: {type(exc).__name__ if exc else 'result'}")
    try:
        Xc, single = expect_X(x, net.sizes[0], net.dtype)
        Yc = expect_Y(y, Xc.shape[0], net.sizes[-1], net.dtype, net.loss_name, single)
        if Xc.shape[0] != 1:
            raise Invalid("more than one sample")
        n_layers = len(net.sizes) - 1

        def check(v, high):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or \
                    not 1 <= v <= high:
                raise Invalid("index")
        check(layer, n_layers)
        check(i, net.sizes[layer])
        if j is not None:
            check(j, net.sizes[layer - 1])
        if eps is not None and not (isinstance(eps, float) and 0 < eps < math.inf and
                                    0 < float(net.dtype.type(eps)) < math.inf):
            raise Invalid("eps")
    except Invalid as why:
        assert is_input_error(exc), f"explain accepted invalid arguments ({why}): {exc!r}"
        return
    assert not is_input_error(exc), f"explain rejected valid arguments: {exc!r}"
    if exc is not None:                 # an overflowing result: only for immoderate data
        assert max_abs(Xc, Yc) > MODERATE, f"explain raised {exc!r} for moderate data"
        return
    assert str(e) and e._repr_latex_()
    if max_abs(Xc, Yc) > MODERATE:
        return
    dW, db = net.gradients(Xc, Yc)
    compiled = db[layer - 1][i - 1] if j is None else dW[layer - 1][i - 1, j - 1]
    rtol = rtol_of(net.dtype)
    scale = max(1.0, max_abs(*dW, *db))
    assert abs(e.gradient - float(compiled)) <= rtol * scale
    # the chain's product is the gradient (float32 factors multiply in float64)
    assert abs(e.product - e.gradient) <= 10 * rtol * scale


# -- 6. save + load ----------------------------------------------------------------------------

@fuzz_settings(250)
@given(spec=net_specs(), data=st.data(),
       optimizer=st.sampled_from([None, "sgd", "adam", "adamw", "rprop"]),
       as_path=st.booleans(),
       damage=st.sampled_from([None, None, "truncate", "flip", "garbage", "empty"]))
@example(spec=dict(sizes=[1, 1, 1], activations=["linear", "linear"], loss="mse",
                   dtype=np.float32, seed=0, bias_seed=None),
         data=None, optimizer="adam", as_path=False, damage=None).via("1-unit layers")
def test_fuzz_save_load(spec, data, optimizer, as_path, damage):
    """A saved network loads as the same network and continues training exactly; a damaged
    file raises ValueError (or, where the damage missed what matters, loads as a valid
    network)."""
    import pathlib
    net = make_net(spec)
    X = fresh_valid_X(net, 7, 2)
    Y = np.clip(net.forward(X) * 0.5 + 0.25, 0, 1)
    train_kw = dict(epochs=1, verbose=False)
    if optimizer is not None:
        train_kw["optimizer"] = optimizer
        if optimizer == "sgd":
            train_kw.update(momentum=0.9, lr=0.01)
        _train_outcome(net, X, Y, train_kw)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.npz")
        path = pathlib.Path(path) if as_path else path
        net.save(path)
        if damage is not None and data is not None:
            _damage(path, damage, data)
            try:
                loaded = cbackprop.load(path)
            except ValueError as exc:                 # load documents ValueError only
                note(f"damage {damage}: raised {exc!r}")
                return
            # the damage missed what matters (say, a byte of the zip's comment-free
            # padding): a valid network all the same
            assert np.isfinite(loaded.get_params()).all()
            out = loaded.forward(fresh_valid_X(loaded))
            assert out.shape == (5, loaded.sizes[-1])
            return
        loaded = cbackprop.load(path)
    assert (loaded.sizes, loaded.activations, loaded.loss_name, loaded.dtype) == \
        (net.sizes, net.activations, net.loss_name, net.dtype)
    assert_same_state(state_of(loaded), state_of(net), "save + load")
    np.testing.assert_array_equal(loaded.forward(X), net.forward(X))
    # the loaded network continues exactly as the saved one (shuffling generator included)
    kw = dict(train_kw, epochs=2)
    assert _train_outcome(loaded, X, Y, kw) == _train_outcome(net, X, Y, kw)
    assert_same_state(state_of(loaded), state_of(net), "training after load")


def _train_outcome(net, X, Y, kw):
    """train's outcome: its losses, or the epoch that diverged."""
    try:
        return net.train(X, Y, **kw).loss
    except cbackprop.TrainingDiverged as exc:
        return f"diverged in epoch {exc.epoch}"


def _damage(path, how, data):
    raw = open(path, "rb").read()
    if how == "truncate":
        raw = raw[:data.draw(st.integers(0, len(raw) - 1), label="keep bytes")]
    elif how == "flip":
        raw = bytearray(raw)
        for _ in range(data.draw(st.integers(1, 4), label="flips")):
            k = data.draw(st.integers(0, len(raw) - 1), label="at")
            raw[k] ^= data.draw(st.integers(1, 255), label="xor")
        raw = bytes(raw)
    elif how == "garbage":
        raw = data.draw(st.binary(max_size=200), label="garbage")
    else:
        raw = b""
    with open(path, "wb") as f:
        f.write(raw)


# -- 7. nightly: the same properties on bigger networks and data -------------------------------

@pytest.mark.skipif(not NIGHTLY, reason="long-running fuzz; set CBACKPROP_FUZZ=nightly")
@fuzz_settings(200)
@given(spec=net_specs(LARGE), data=st.data(), wild=st.booleans(),
       pretrain=st.sampled_from([None, "sgd", "adam", "rprop"]))
def test_nightly_large(spec, data, wild, pretrain):
    """Rows across the compiled kernels' 256-row blocks, 40-unit layers, up to 8 epochs."""
    net = make_net(spec)
    X = data.draw(X_data(net.sizes[0], wild, LARGE), label="X")
    _check_forward(net, X)
    n, single = _rows_and_single(X)
    Y = data.draw(Y_data(n, net.sizes[-1], net.loss_name, single, wild), label="Y")
    _check_loss_and_gradients(net, X, Y)
    kw = data.draw(train_cases(max(n, 1), LARGE), label="train kwargs")
    _check_train(net, X, Y, kw, pretrain)


# -- regressions: problems the fuzzing found -----------------------------------------------------
# Each failed on cbackprop as of commit a22d8f3 as its docstring says.

def _schedule_case():
    net = cbackprop.Network([2, 3, 1], seed=0)
    X = np.random.default_rng(0).uniform(-1, 1, (5, 2))
    Y = np.random.default_rng(1).uniform(-1, 1, 5)
    return net, X, Y, state_of(net)


def test_invalid_later_scheduled_lr_leaves_network_unchanged():
    """A schedule function's bad value for epoch 2 raised ValueError after epoch 1 had
    trained the network (README: bad settings raise "before anything changes")."""
    net, X, Y, before = _schedule_case()
    with pytest.raises(ValueError, match=r"lr_schedule\(1\)"):
        net.train(X, Y, epochs=2, lr_schedule=lambda epoch: 0.1 if epoch == 0 else math.nan)
    assert_same_state(state_of(net), before, "a later epoch's invalid lr")


def test_builtin_schedule_underflow_leaves_network_unchanged():
    """The same with a built-in schedule whose lr decays to 0 in the dtype."""
    net, X, Y, before = _schedule_case()
    # lr 0.1, then 1e-201, then 1e-401, which is 0 in float64
    with pytest.raises(ValueError, match="scheduled lr"):
        net.train(X, Y, epochs=3, lr=0.1,
                  lr_schedule=cbackprop.StepDecay(step_size=1, gamma=1e-200))
    assert_same_state(state_of(net), before, "a scheduled lr decayed to 0")


def _saved_model_bytes(tmp):
    path = os.path.join(tmp, "good.npz")
    cbackprop.Network([2, 3, 1], seed=0).save(path)
    with open(path, "rb") as f:
        return path, f.read()


def _flip_central_directory(raw, offset, value):
    """``raw`` with two bytes of the first zip central-directory entry replaced."""
    at = raw.index(b"PK\x01\x02") + offset
    return raw[:at] + value + raw[at + 2:]


def _replace_member(good, name, content):
    with zipfile.ZipFile(good) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members[name] = content(members[name])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n, c in members.items():
            z.writestr(n, c)
    return out.getvalue()


def _huge_params_header(raw):
    end = raw.index(b"\n") + 1
    header = raw[:end].decode("latin1")
    crafted = header.replace("(13,)", "(1099511627776,)")    # 8 TiB of float64
    return crafted[:-1].rstrip().ljust(len(header) - 1).encode("latin1") + b"\n" + raw[end:]


def _deep_json(raw):
    text = "[" * 100_000 + "]" * 100_000
    out = io.BytesIO()
    np.save(out, np.array(text))
    return out.getvalue()


DAMAGE = {
    # one byte of the central directory: the flag bit "encrypted"
    "encrypted_flag": lambda good, raw: _flip_central_directory(raw, 8, b"\x01\x00"),
    # ... the compression method, 99
    "compression_method": lambda good, raw: _flip_central_directory(raw, 10, b"\x63\x00"),
    # ... the version needed to extract, 10.9
    "zip_version": lambda good, raw: _flip_central_directory(raw, 6, b"\x6d\x00"),
    # params.npy whose header claims 2^40 values
    "huge_header": lambda good, raw: _replace_member(good, "params.npy", _huge_params_header),
    # the "training" JSON nested 100,000 deep
    "deep_json": lambda good, raw: _replace_member(good, "training.npy", _deep_json),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_load_damaged_file_raises_value_error(damage):
    """load documents ValueError for every unreadable file. The three one-byte flips (found by
    test_fuzz_save_load) let zipfile's RuntimeError ("encrypted, password required") and
    NotImplementedError escape; the crafted params header made load allocate what it claimed
    before comparing shapes (MemoryError, README: "validated before anything is allocated");
    the deep JSON let json's RecursionError escape."""
    with tempfile.TemporaryDirectory() as tmp:
        good, raw = _saved_model_bytes(tmp)
        bad = os.path.join(tmp, "bad.npz")
        with open(bad, "wb") as f:
            f.write(DAMAGE[damage](good, raw))
        with pytest.raises(ValueError):
            cbackprop.load(bad)


@pytest.mark.parametrize("call", ["forward", "train"])
def test_out_of_range_for_float32_raises_value_error_under_warnings_as_errors(call):
    """Values beyond float32's range were cast with numpy's overflow warning on: under -W error
    (pytest's filterwarnings=error) the caller got a RuntimeWarning instead of ValueError."""
    net = cbackprop.Network([2, 3, 1], dtype=np.float32, seed=0)
    X = np.array([[1e300, 0.0]]) if call == "forward" else np.zeros((1, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError):
            if call == "forward":
                net.forward(X)
            else:
                net.train(X, np.zeros(1), lr=1e300)


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_of_finite_inputs_is_finite_or_raises(dtype):
    """Finite inputs near the dtype's largest value overflow the sums: forward returned inf
    and NaN (softmax of inf - inf) without an error, as the NumPy reference does."""
    net = cbackprop.Network([2, 3, 2], ["linear", "softmax"], dtype=dtype, seed=0)
    big = float(np.finfo(dtype).max)
    X = np.array([[big, big]], dtype=dtype)
    try:
        out = net.forward(X)
    except (ValueError, FloatingPointError):
        return
    assert np.isfinite(out).all(), f"forward({X.tolist()}) = {out.tolist()}"
