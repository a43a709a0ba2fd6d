"""Peer contenders for ``benchmarks/compare.py``.

Every module here exposes the same small interface:

``NAME``                      short label used in the table
``available() -> True | str`` True, or the reason the peer cannot run
``version() -> str``          version string for the header
``supports(kind, batch_size, threads) -> None | str``
                              None, or why this workload is skipped;
                              kind is "train" or "infer"
``make_trainer(sizes, weights, biases, dtype, batch_size, lr, threads)``
                              an object with ``epoch(X, Y)`` (one epoch of
                              plain SGD, state kept in place), ``params()``
                              -> (list of W (n_out, n_in), list of b) as
                              NumPy arrays, and ``forward(X)`` -> outputs.
Optional: ``SINGLE_THREADED = True`` (the peer never uses more than one
core) and ``worker_env(threads) -> dict`` (environment variables that must be
set before the peer is imported; compare.py runs every contender in its own
worker process, so they can be).

Heavy peers are imported lazily, inside these functions only.
"""

import hashlib
import importlib
import os
import shutil
import subprocess
import sys
import tempfile

CONTENDERS = [
    "numpy_ref",
    "cbackprop_engine",
    "torch_nn",
    "fann_c",
    "numba_njit",
    "jax_scan",
    "sklearn_mlp",
]

_HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(_HERE))


def load(name):
    return importlib.import_module("contenders." + name)


def build_c(src, name, args=(), hint=""):
    """Path of ``src`` (a C file) compiled by gcc into a shared library, cached in
    ``contenders/_build/`` (git-ignored) under ``name`` and the source's hash, so an edited
    source is rebuilt. ``args``: more compiler arguments (libraries after the source).
    Raises OSError when there is no compiler or it fails (``hint`` is added to the message)."""
    with open(src, "rb") as fh:
        digest = hashlib.sha1(fh.read() + repr(tuple(args)).encode()).hexdigest()[:10]
    out_dir = os.path.join(_HERE, "_build")
    out = os.path.join(out_dir, "%s_%s.so" % (name, digest))
    if not os.path.exists(out):
        os.makedirs(out_dir, exist_ok=True)
        cc = shutil.which("gcc") or shutil.which("cc")
        if cc is None:
            raise OSError("no C compiler (gcc) found")
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=out_dir)
        os.close(fd)
        res = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", tmp, src] + list(args),
                             capture_output=True, text=True)
        if res.returncode != 0:
            os.unlink(tmp)
            raise OSError("gcc failed%s: %s" % (hint, res.stderr.strip()[-300:]))
        os.replace(tmp, out)
    return out


def import_project(module="cbackprop"):
    """Import the project package (or a submodule), wherever it is built.

    Tries the normal import first (installed / editable), then the repo's
    ``src/`` and root folders.  Raises ImportError with every reason.
    """
    errors = []
    try:
        return importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any failure means "not built"
        errors.append("installed: %s: %s" % (type(exc).__name__, exc))
    for cand in (os.path.join(REPO_ROOT, "src"), REPO_ROOT):
        if not os.path.exists(os.path.join(cand, "cbackprop", "__init__.py")):
            continue
        sys.path.insert(0, cand)
        try:
            return importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001
            errors.append("%s: %s: %s" % (cand, type(exc).__name__, exc))
            sys.path.remove(cand)
            for key in [k for k in sys.modules if k == "cbackprop" or k.startswith("cbackprop.")]:
                del sys.modules[key]
    raise ImportError("; ".join(errors))
