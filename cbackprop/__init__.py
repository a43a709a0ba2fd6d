"""cbackprop: multilayer perceptrons trained by backpropagation in compiled code.

>>> import cbackprop
>>> net = cbackprop.Network([64, 30, 10], seed=0)
>>> net.weights[0].shape
(30, 64)
"""

try:
    from ._dispatch import kernel_level
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(
        "cbackprop's compiled kernels are missing or failed to load "
        f"({exc}). Build them with `pip install .` (or `pip install -e .` for development) "
        "from the source tree; a C compiler is needed.") from exc

from . import reference
from .explain import Explanation, GradientCheck, gradcheck
from .network import Network, load
from .optimizers import (SGD, Adam, AdamW, Rprop, Constant, StepDecay, InverseScaling,
                         ReduceOnPlateau)
from .train import History, TrainingDiverged, TrainingInterrupted

__version__ = "0.2.0"
__all__ = ["Network", "load", "History", "TrainingDiverged", "TrainingInterrupted",
           "SGD", "Adam", "AdamW", "Rprop", "Constant", "StepDecay", "InverseScaling",
           "ReduceOnPlateau", "Explanation", "GradientCheck", "gradcheck", "reference",
           "kernel_level", "__version__"]
