"""Pick the kernel modules built for the best instruction set this CPU supports.

setup.py compiles every kernel module for plain x86-64 and, on x86-64, again for AVX2+FMA and
AVX-512, so one portable wheel still runs vectorised code where the processor allows.
``CBACKPROP_KERNELS=baseline|avx2|avx512`` forces a level (for tests and benchmarks).
"""

import importlib
import os

LEVELS = ("avx512", "avx2", "baseline")
_NEEDS = {
    "avx512": ("AVX512F", "AVX512CD", "AVX512BW", "AVX512DQ", "AVX512VL", "AVX2", "FMA3"),
    "avx2": ("AVX2", "FMA3", "F16C"),
    "baseline": (),
}


def cpu_features():
    """The CPU features NumPy detected at run time (name -> bool)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # NumPy 1.x
        from numpy.core._multiarray_umath import __cpu_features__
    return __cpu_features__


def supported_levels():
    features = cpu_features()
    return [level for level in LEVELS if all(features.get(f, False) for f in _NEEDS[level])]


def load_kernels():
    """Import _forward, _backward and _train at the chosen level; returns (level, modules)."""
    forced = os.environ.get("CBACKPROP_KERNELS")
    if forced is not None and forced not in LEVELS:
        raise ImportError(f"CBACKPROP_KERNELS={forced!r}: choose from {', '.join(LEVELS)}")
    candidates = supported_levels()
    if forced is not None:
        if forced not in candidates:
            raise ImportError(f"CBACKPROP_KERNELS={forced}: this CPU lacks {forced}")
        candidates = [forced]
    for level in candidates:
        suffix = "" if level == "baseline" else "_" + level
        try:
            modules = [importlib.import_module(f"cbackprop.{name}{suffix}")
                       for name in ("_forward", "_backward", "_train")]
        except ImportError:
            if forced is not None or level == "baseline":
                raise
            continue  # a build without this level (another platform or compiler)
        return level, modules
    raise ImportError("no cbackprop kernels could be loaded")


kernel_level, (forward_kernels, backward_kernels, train_kernels) = load_kernels()
