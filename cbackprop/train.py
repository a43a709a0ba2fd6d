"""The training loop: Python loops over epochs; each epoch is one call into compiled code."""

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ._dispatch import train_kernels as _train
from ._config import check_int, check_positive_finite, check_real


@dataclass
class History:
    """What happened during :meth:`Network.train`, one entry per epoch.

    Attributes
    ----------
    loss : list of float
        Mean training loss of each epoch, each sample's loss taken before its step.
    epoch_time : list of float
        Wall time of each epoch in seconds.
    """

    loss: list = field(default_factory=list)
    epoch_time: list = field(default_factory=list)

    def __len__(self):
        return len(self.loss)


def train(net, X, Y, epochs=1, lr=0.1, batch_size=1, momentum=0.0, shuffle=True, seed=None):
    """Train ``net`` by stochastic gradient descent on (X, Y).

    Each step moves every parameter by the mean gradient ``g`` of its batch::

        v = momentum * v - lr * g
        W = W + v

    ``batch_size=1`` is online SGD (matrix-vector kernels, one weight row read once per
    sample for both delta propagation and update); larger batches use BLAS gemm.

    Parameters
    ----------
    net : Network
    X : array-like of shape (n, n_in)
    Y : array-like of shape (n, n_out), or (n,) integer labels (n_out > 1) or targets (n_out == 1)
    epochs : int, default=1
        Passes over the data (0 trains nothing).
    lr : float, default=0.1
        Learning rate, finite and > 0.
    batch_size : int, default=1
        Samples per step, >= 1. The last batch of an epoch may be smaller.
    momentum : float, default=0.0
        In [0, 1). Velocities are kept in the network between calls.
    shuffle : bool, default=True
        Visit the samples in a new random order each epoch.
    seed : int or None, default=None
        Seeds the shuffling; None uses the network's own generator (seeded at creation).

    Returns
    -------
    History

    Raises
    ------
    ValueError, TypeError
        Invalid data or hyper-parameters, before any weight changes.
    FloatingPointError
        The loss became NaN or infinite; the weights are restored to those before that epoch.
    """
    epochs = check_int(epochs, "epochs", 0)
    lr = check_positive_finite(lr, "lr", net.dtype)
    batch_size = check_int(batch_size, "batch_size", 1)
    momentum = check_real(momentum, "momentum")
    # checked as the kernels will see it: 0.99999999 is 1.0 in float32
    if not (math.isfinite(momentum) and 0 <= momentum and net.dtype.type(momentum) < 1):
        raise ValueError(f"momentum must be in [0, 1) in {net.dtype.name}, got {momentum!r}")
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
    if seed is not None:
        seed = check_int(seed, "seed", 0)
    X, Y = net._check_data(X, Y)
    net._check_params_finite()
    rng = net._rng if seed is None else np.random.default_rng(seed)
    batch_size = min(batch_size, X.shape[0])   # a batch larger than the data is all of it

    n = X.shape[0]
    history = History()
    sequential_order = np.arange(n, dtype=np.intp)
    if net.dtype.type(momentum) == 0:
        net._velocity[...] = 0
    work = np.empty(_train.workspace_size(net._spec, batch_size, n, not shuffle), net.dtype)
    saved = np.empty_like(net._params), np.empty_like(net._velocity)
    for epoch in range(epochs):
        order = rng.permutation(n).astype(np.intp) if shuffle else sequential_order
        saved[0][...], saved[1][...] = net._params, net._velocity
        start = time.perf_counter()
        total = _train.train_epoch(net._spec, net._params, net._velocity, X, Y, order,
                                   not shuffle, lr, batch_size, float(momentum), work)
        history.epoch_time.append(time.perf_counter() - start)
        mean_loss = total / n
        if not (math.isfinite(mean_loss) and np.isfinite(net._params).all()):
            net._params[...], net._velocity[...] = saved
            raise FloatingPointError(
                f"training diverged in epoch {epoch + 1}: the loss became {mean_loss}; the "
                f"weights were restored to those before that epoch (try a smaller lr)")
        history.loss.append(mean_loss)
    return history
