"""Build the compiled kernels: an Extension per .pyx, cythonized with one set of directives.

Environment switches:
  CBACKPROP_CYTHON_DEBUG=1  bounds, wraparound and initialisation checks back on (a CI job)
  CBACKPROP_NATIVE=1        -march=native (never for a wheel that must run on any x86-64)
"""
import os
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("CBACKPROP_CYTHON_DEBUG") == "1"
DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

compile_args = []
if sys.platform != "win32":
    # -fno-math-errno lets gcc inline sqrt/exp without errno bookkeeping; results are unchanged.
    compile_args = ["-O3", "-fno-math-errno"]
    if os.environ.get("CBACKPROP_NATIVE") == "1":
        compile_args.append("-march=native")

MODULES = ["_forward", "_backward", "_train"]
extensions = [
    Extension(
        f"cbackprop.{name}",
        [f"src/{name}.pyx"],
        include_dirs=[numpy.get_include(), "src"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_22_API_VERSION")],
        extra_compile_args=compile_args,
    )
    for name in MODULES
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["src"],
        compiler_directives=DIRECTIVES,
        annotate=os.environ.get("CBACKPROP_ANNOTATE") == "1",
    )
)
