"""Optimizers and learning-rate schedules for :meth:`cbackprop.Network.train`.

An optimizer object holds settings only; its state (velocities, moments, step sizes, the
step count) lives in the network, so that ``train`` can be called again to continue where it
stopped and ``save`` keeps it. The update rules themselves run compiled (``src/_optim.pxd``);
:mod:`cbackprop.reference` has them in NumPy.

Examples
--------
>>> import cbackprop
>>> cbackprop.Adam(beta2=0.99)
Adam(beta1=0.9, beta2=0.99, eps=1e-08)
>>> cbackprop.StepDecay(step_size=10, gamma=0.5).lr(0.1, epoch=25)
0.025
"""

import math
from dataclasses import dataclass, fields

import numpy as np

from ._config import check_int, check_real, in_dtype

# Order of the hyper-parameter array the kernels read (the H_ enum in src/_optim.pxd).
HYPER_FIELDS = ("kind", "lr", "momentum", "nesterov", "l2", "beta1", "beta2", "eps",
                "weight_decay", "increase", "decrease", "delta_min", "delta_max")
KIND_CODES = {"sgd": 0, "adam": 1, "rprop": 2}


def _in_range(value, name, low, high, low_open=False, high_open=True, dtype=np.float64):
    """A real in [low, high) (bounds as flagged), checked in the kernels' dtype as well."""
    value = check_real(value, name)
    cast = in_dtype(value, dtype)
    ok = math.isfinite(value) and math.isfinite(cast)
    for v in (value, cast):
        ok = ok and (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name} must be in {left}{low}, {high}{right} in "
                         f"{np.dtype(dtype).name}, got {value!r}")
    return value


class _Optimizer:
    name = None
    kind = None
    default_lr = None

    def validate(self, dtype):
        """Check every setting as the kernels will see it (in ``dtype``); raise ValueError."""

    def hyper(self, lr, l2):
        """The kernels' hyper-parameter array (HYPER_FIELDS order) for one epoch, read-only
        (kept for the next call with the same lr and l2)."""
        cache = self.__dict__.setdefault("_hyper_arrays", {})
        key = (lr, l2)
        array = cache.get(key)     # (one lookup: another thread may clear the cache meanwhile)
        if array is None:
            if len(cache) > 16:                      # (a schedule's lr changes every epoch)
                cache.clear()
            array = self._hyper_array(lr, l2)
            array.flags.writeable = False
            cache[key] = array
        return array

    def _hyper_array(self, lr, l2):
        values = dict.fromkeys(HYPER_FIELDS, 0.0)
        values.update(kind=KIND_CODES[self.kind], lr=lr, l2=l2, beta1=0.0, beta2=0.0,
                      eps=1.0, increase=1.0, decrease=1.0)
        values.update(self._hyper())
        return np.array([float(values[k]) for k in HYPER_FIELDS])

    def _hyper(self):
        return {}

    def initial_state(self, state):
        """Fill the (2, n_params) state array for a fresh start."""
        state[...] = 0

    def __repr__(self):
        args = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return f"{type(self).__name__}({args})"


@dataclass(repr=False)
class SGD(_Optimizer):
    """Stochastic gradient descent: ``v = momentum * v - lr * g``, ``w = w + v``.

    Parameters
    ----------
    momentum : float, default=0.0
        In [0, 1).
    nesterov : bool, default=False
        Nesterov's momentum (Sutskever et al. 2013): ``w = w + momentum * v - lr * g`` with
        the new ``v``. Needs ``momentum > 0``.
    """

    momentum: float = 0.0
    nesterov: bool = False
    name = kind = "sgd"
    default_lr = 0.1

    def validate(self, dtype):
        self.momentum = _in_range(self.momentum, "momentum", 0, 1, dtype=dtype)
        if not isinstance(self.nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be True or False, got {self.nesterov!r}")
        if self.nesterov and np.dtype(dtype).type(self.momentum) == 0:
            raise ValueError("nesterov=True needs momentum > 0")

    def _hyper(self):
        return {"momentum": self.momentum, "nesterov": float(self.nesterov)}


@dataclass(repr=False)
class Adam(_Optimizer):
    """Adam (Kingma and Ba 2015) with bias correction.

    ``m = beta1 m + (1 - beta1) g``, ``v = beta2 v + (1 - beta2) g^2``,
    ``w = w - lr * m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - beta1^t)`` and
    ``v_hat = v / (1 - beta2^t)`` at step ``t``. The default learning rate is 0.001.
    """

    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    name = kind = "adam"
    default_lr = 0.001

    def validate(self, dtype):
        self.beta1 = _in_range(self.beta1, "beta1", 0, 1, dtype=dtype)
        self.beta2 = _in_range(self.beta2, "beta2", 0, 1, dtype=dtype)
        self.eps = _in_range(self.eps, "eps", 0, math.inf, low_open=True, dtype=dtype)

    def _hyper(self):
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


@dataclass(repr=False)
class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter 2019).

    Each step first shrinks every weight, ``w = w (1 - lr * weight_decay)``, then takes the
    Adam step. Biases are not decayed (nor penalised by ``l2``).
    """

    weight_decay: float = 0.01
    name = "adamw"

    def validate(self, dtype):
        super().validate(dtype)
        self.weight_decay = _in_range(self.weight_decay, "weight_decay", 0, math.inf,
                                      dtype=dtype)

    def _hyper(self):
        return {**super()._hyper(), "weight_decay": self.weight_decay}


@dataclass(repr=False)
class Rprop(_Optimizer):
    """iRprop- (Igel and Huesken 2000) on full-batch gradients: FANN's default algorithm.

    Every parameter has its own step size, which grows by ``increase`` while its gradient
    keeps its sign and shrinks by ``decrease`` when the sign flips; the parameter moves by
    the step against the sign of the gradient. Only the signs of gradients matter, so there
    is no learning rate. Defaults are FANN's.

    Notes
    -----
    FANN's own implementation also keeps steps above 0.0001 and weights within +-1500 and
    moves a parameter whose gradient is exactly 0; the published rule, implemented here and
    in :func:`cbackprop.reference.rprop_step`, does none of these.
    """

    increase: float = 1.2
    decrease: float = 0.5
    delta_min: float = 0.0
    delta_max: float = 50.0
    delta_zero: float = 0.1
    name = kind = "rprop"

    def validate(self, dtype):
        self.increase = _in_range(self.increase, "increase", 1, math.inf, low_open=True,
                                  dtype=dtype)
        self.decrease = _in_range(self.decrease, "decrease", 0, 1, low_open=True, dtype=dtype)
        self.delta_min = _in_range(self.delta_min, "delta_min", 0, math.inf, dtype=dtype)
        self.delta_max = _in_range(self.delta_max, "delta_max", 0, math.inf, low_open=True,
                                   dtype=dtype)
        self.delta_zero = _in_range(self.delta_zero, "delta_zero", 0, math.inf,
                                    low_open=True, dtype=dtype)
        if not self.delta_min <= self.delta_zero <= self.delta_max:
            raise ValueError(f"Rprop needs delta_min <= delta_zero <= delta_max, got "
                             f"{self.delta_min}, {self.delta_zero}, {self.delta_max}")

    def _hyper(self):
        return {"increase": self.increase, "decrease": self.decrease,
                "delta_min": self.delta_min, "delta_max": self.delta_max}

    def initial_state(self, state):
        state[0] = 0                      # previous gradient
        state[1] = self.delta_zero        # step sizes


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rprop": Rprop}


def make_optimizer(optimizer, momentum, nesterov, dtype):
    """The validated optimizer object for ``train``'s arguments (a new one: the caller's
    object, if one was given, stays theirs)."""
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; choose from "
                             f"{sorted(OPTIMIZERS)} or pass an optimizer object")
        optimizer = SGD(momentum, nesterov) if optimizer == "sgd" else OPTIMIZERS[optimizer]()
    elif isinstance(optimizer, _Optimizer):
        if momentum != 0 or nesterov:
            raise ValueError("pass momentum and nesterov inside the optimizer object "
                             "(cbackprop.SGD(momentum=..., nesterov=...)), not to train")
        # a copy: validation normalises fields, and the caller's object stays theirs
        optimizer = type(optimizer)(**{f.name: getattr(optimizer, f.name)
                                       for f in fields(optimizer)})
    else:
        raise TypeError(f"optimizer must be a name or an optimizer object such as "
                        f"cbackprop.Adam(), got {optimizer!r}")
    if not isinstance(optimizer, SGD) and (momentum != 0 or nesterov):
        raise ValueError(f"momentum and nesterov belong to optimizer='sgd', not "
                         f"{optimizer.name!r}")
    optimizer.validate(dtype)
    return optimizer


# -- learning-rate schedules ----------------------------------------------------------------
# A schedule maps (base lr, epoch) to the lr of that epoch, epoch counted from 0 since the
# optimizer state began (so a resumed run continues its schedule). ReduceOnPlateau also
# watches the monitored loss after each epoch; its state lives with the optimizer's.

class _Schedule:
    def lr(self, base_lr, epoch, state=None):
        raise NotImplementedError

    def observe(self, state, value):
        """Called after each epoch with the monitored loss (plateau schedules)."""

    def initial_state(self):
        return {}

    def __repr__(self):
        args = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return f"{type(self).__name__}({args})"


@dataclass(repr=False)
class Constant(_Schedule):
    """The same learning rate every epoch."""

    def lr(self, base_lr, epoch, state=None):
        return base_lr


@dataclass(repr=False)
class StepDecay(_Schedule):
    """``lr * gamma ** (epoch // step_size)``: divide by 1/gamma every step_size epochs."""

    step_size: int = 10
    gamma: float = 0.5

    def __post_init__(self):
        self.step_size = check_int(self.step_size, "step_size", 1)
        self.gamma = _in_range(self.gamma, "gamma", 0, 1, low_open=True, high_open=False)

    def lr(self, base_lr, epoch, state=None):
        return base_lr * self.gamma ** (epoch // self.step_size)


@dataclass(repr=False)
class InverseScaling(_Schedule):
    """``lr / (epoch + 1) ** power`` (scikit-learn's "invscaling", counted in epochs)."""

    power: float = 0.5

    def __post_init__(self):
        self.power = _in_range(self.power, "power", 0, math.inf, low_open=True)

    def lr(self, base_lr, epoch, state=None):
        return base_lr / (epoch + 1) ** self.power


@dataclass(repr=False)
class ReduceOnPlateau(_Schedule):
    """Multiply the learning rate by ``factor`` when the monitored loss (validation loss if
    there is validation data, else training loss) has not improved by more than ``min_delta``
    for ``patience`` epochs; never below ``min_lr``."""

    factor: float = 0.1
    patience: int = 10
    min_delta: float = 1e-4
    min_lr: float = 0.0

    def __post_init__(self):
        self.factor = _in_range(self.factor, "factor", 0, 1, low_open=True)
        self.patience = check_int(self.patience, "patience", 0)
        self.min_delta = _in_range(self.min_delta, "min_delta", 0, math.inf)
        self.min_lr = _in_range(self.min_lr, "min_lr", 0, math.inf)

    def initial_state(self):
        return {"scale": 1.0, "best": math.inf, "wait": 0}

    def lr(self, base_lr, epoch, state=None):
        return max(base_lr * state["scale"], min(self.min_lr, base_lr))

    def observe(self, state, value):
        if value < state["best"] - self.min_delta:
            state["best"], state["wait"] = value, 0
            return
        state["wait"] += 1
        if state["wait"] > self.patience:
            state["scale"] *= self.factor
            state["wait"] = 0


@dataclass(repr=False)
class Callable(_Schedule):
    """A user function ``epoch -> lr`` (epoch counted from 0; the base lr is not used)."""

    function: object = None

    def lr(self, base_lr, epoch, state=None):
        value = self.function(epoch)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
            raise TypeError(f"lr_schedule({epoch}) must return a number, got {value!r}")
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"lr_schedule({epoch}) returned {value!r}; it must be finite "
                             f"and > 0")
        return float(value)


SCHEDULES = {"constant": Constant, "step": StepDecay, "inverse_scaling": InverseScaling,
             "invscaling": InverseScaling, "plateau": ReduceOnPlateau}


def make_schedule(schedule):
    """The schedule object for ``train``'s ``lr_schedule`` argument."""
    if isinstance(schedule, str):
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown lr_schedule {schedule!r}; choose from "
                             f"{sorted(SCHEDULES)}, a schedule object or a function "
                             f"epoch -> lr")
        return SCHEDULES[schedule]()
    if isinstance(schedule, _Schedule):
        return schedule
    if callable(schedule):
        return Callable(schedule)
    raise TypeError(f"lr_schedule must be a name, a schedule object or a function epoch -> "
                    f"lr, got {schedule!r}")
