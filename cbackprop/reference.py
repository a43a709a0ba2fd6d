"""Plain-NumPy backpropagation: the twin of the compiled kernels, written to be read.

Every function here computes what a compiled kernel computes, with the same names and the
same arguments; the tests hold the compiled engine to these. Read it beside the tutorial.

Notation
--------
Layers are numbered from 1 (the input) to ``nl`` (the output). In code, lists are 0-based:
``weights[layer]`` is the tutorial's ``W^(layer+1)``, of shape ``(sizes[layer+1], sizes[layer])``,
so ``weights[layer][i, j]`` is ``w_ij``: ``i`` the unit it feeds in the next layer, ``j`` the
unit it leaves in the previous one. For one sample ``x``::

    h^(1)   = x
    z^(l+1) = W^(l) h^(l) + b^(l)                       (input sum of layer l+1)
    h^(l+1) = f(z^(l+1))                                (its output, the activation)
    J       = 1/2 ||y - h^(nl)||^2                      (loss "mse")
    delta^(nl) = -(y - h^(nl)) * f'(z^(nl))             (dJ/dz at the output)
    delta^(l)  = ((W^(l))^T delta^(l+1)) * f'(z^(l))    (the chain rule, one layer back)
    dJ/dW^(l)  = delta^(l+1) (h^(l))^T,   dJ/db^(l) = delta^(l+1)

Rows of a 2-D ``X`` are samples, so in code the column vectors above become rows and
``W h`` becomes ``H @ W.T``. Losses and gradients over many samples are means.
"""

import numpy as np

__all__ = [
    "ACTIVATIONS", "DERIVATIVES", "sigmoid", "softplus",
    "forward_pass", "forward", "sample_loss", "output_delta", "loss", "backward_pass",
    "gradients", "sgd_step", "train_epoch",
]


def sigmoid(z):
    """f(z) = 1 / (1 + e^-z), from e^-|z| so that no exponent overflows."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def softplus(t):
    """log(1 + e^t) = max(t, 0) + log1p(e^-|t|), stable for every t."""
    return np.maximum(t, 0) + np.log1p(np.exp(-np.abs(t)))


def _softmax(z):
    """h_k = e^z_k / sum_j e^z_j along the last axis, shifted by max z so e^ never overflows."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


ACTIVATIONS = {
    "sigmoid": sigmoid,
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "linear": lambda z: z,
    "softmax": _softmax,
}

# f'(z) written from the output h = f(z), as the tutorial does for the sigmoid.
# softmax has no elementwise derivative: its Jacobian is handled in output_delta.
DERIVATIVES = {
    "sigmoid": lambda h: h * (1 - h),
    "tanh": lambda h: 1 - h * h,
    "relu": lambda h: (h > 0).astype(h.dtype),
    "linear": lambda h: np.ones_like(h),
}


def forward_pass(weights, biases, activations, X):
    """Every layer's input sums and outputs for the rows of X.

    Parameters
    ----------
    weights : list of ndarray, weights[layer] of shape (n_out, n_in)
    biases : list of ndarray, biases[layer] of shape (n_out,)
    activations : list of str, one name per weight layer
    X : ndarray of shape (n, n_in)

    Returns
    -------
    zs : list of ndarray
        ``zs[layer]`` is z^(layer+2), shape (n, sizes[layer+1]).
    hs : list of ndarray
        ``hs[0]`` is X (= h^(1)) and ``hs[layer+1]`` is h^(layer+2) = f(z^(layer+2)).
    """
    hs, zs = [X], []
    for W, b, name in zip(weights, biases, activations):
        z = hs[-1] @ W.T + b              # z^(l+1) = W^(l) h^(l) + b^(l), one row per sample
        zs.append(z)
        hs.append(ACTIVATIONS[name](z))   # h^(l+1) = f(z^(l+1))
    return zs, hs


def forward(weights, biases, activations, X):
    """The network's output h^(nl) for each row of X, shape (n, n_out)."""
    return forward_pass(weights, biases, activations, X)[1][-1]


def sample_loss(loss_name, out_activation, h, z, Y):
    """The loss J of each sample (row), shape (n,).

    ``"mse"``: J = 1/2 sum_k (y_k - h_k)^2. ``"cross_entropy"``: with a softmax output
    J = -sum_k y_k log h_k = sum_k y_k (logsumexp(z) - z_k); with sigmoid outputs
    J = sum_k -y_k log h_k - (1 - y_k) log(1 - h_k) = sum_k y_k softplus(-z_k) +
    (1 - y_k) softplus(z_k). Both are computed from z, so no log of 0 is ever taken.
    """
    if loss_name == "mse":
        return 0.5 * np.sum((Y - h) ** 2, axis=-1)
    if out_activation == "softmax":
        zmax = z.max(axis=-1, keepdims=True)
        lse = zmax + np.log(np.exp(z - zmax).sum(axis=-1, keepdims=True))
        return np.sum(np.where(Y != 0, Y * (lse - z), 0), axis=-1)
    return np.sum(Y * softplus(-z) + (1 - Y) * softplus(z), axis=-1)


def output_delta(loss_name, out_activation, h, Y):
    """delta^(nl) = dJ/dz^(nl) for each row, shape (n, n_out)."""
    if loss_name == "mse":
        error = h - Y                                  # dJ/dh^(nl) = -(y - h^(nl))
        if out_activation == "softmax":
            # dh_k/dz_i = h_k (1[k = i] - h_i), so dJ/dz_i = h_i (error_i - sum_k error_k h_k)
            return h * (error - np.sum(error * h, axis=-1, keepdims=True))
        return error * DERIVATIVES[out_activation](h)  # times f'(z^(nl))
    if out_activation == "softmax":
        return h * Y.sum(axis=-1, keepdims=True) - Y   # = h - y for one-hot y
    return h - Y                                       # sigmoid: f'(z) cancels


def loss(weights, biases, activations, loss_name, X, Y):
    """The mean over the rows of X of the per-sample loss J."""
    zs, hs = forward_pass(weights, biases, activations, X)
    return float(np.mean(sample_loss(loss_name, activations[-1], hs[-1], zs[-1], Y)))


def backward_pass(weights, activations, hs, delta_out):
    """Per-sample deltas of every layer by the chain rule, from the output delta.

    Returns ``deltas`` with ``deltas[layer]`` = delta^(layer+2), shape (n, sizes[layer+1]):
    the delta of weight layer ``layer``'s outputs.
    """
    deltas = [delta_out]
    for layer in range(len(weights) - 1, 0, -1):
        back = deltas[0] @ weights[layer]              # (W^(l))^T delta^(l+1), one row per sample
        deltas.insert(0, back * DERIVATIVES[activations[layer - 1]](hs[layer]))  # * f'(z^(l))
    return deltas


def gradients(weights, biases, activations, loss_name, X, Y):
    """The gradient of ``loss(...)``: mean over rows of dJ/dW^(l) = delta^(l+1) h^(l)T.

    Returns
    -------
    dW : list of ndarray, shaped like ``weights``
    db : list of ndarray, shaped like ``biases``
    """
    zs, hs = forward_pass(weights, biases, activations, X)
    return _mean_gradients(weights, activations, loss_name, hs, Y)


def _mean_gradients(weights, activations, loss_name, hs, Y):
    """(dW, db) averaged over the rows, from a forward pass's outputs hs."""
    deltas = backward_pass(weights, activations, hs,
                           output_delta(loss_name, activations[-1], hs[-1], Y))
    n = Y.shape[0]
    dW = [d.T @ h / n for d, h in zip(deltas, hs[:-1])]   # mean of delta^(l+1) h^(l)T
    db = [d.sum(axis=0) / n for d in deltas]               # mean of delta^(l+1)
    return dW, db


def sgd_step(params, grads, velocities, lr, momentum):
    """v = momentum * v - lr * g;  p = p + v, for each parameter array, in place."""
    for p, g, v in zip(params, grads, velocities):
        v *= momentum
        v -= lr * g
        p += v


def train_epoch(weights, biases, activations, loss_name, X, Y, lr, batch_size,
                momentum=0.0, velocities=None, order=None):
    """One epoch of SGD over the rows X[order], in place; returns the mean loss before each step.

    Each step moves every parameter by the mean gradient of its batch (a batch of 1 is online
    SGD). ``velocities`` is a list like ``weights + biases`` (zeros when None).
    """
    params = list(weights) + list(biases)
    if velocities is None:
        velocities = [np.zeros_like(p) for p in params]
    n = X.shape[0]
    order = np.arange(n) if order is None else order
    total = 0.0
    for start in range(0, n, batch_size):
        rows = order[start:start + batch_size]
        Xb, Yb = X[rows], Y[rows]
        zs, hs = forward_pass(weights, biases, activations, Xb)
        total += float(np.sum(sample_loss(loss_name, activations[-1], hs[-1], zs[-1], Yb)))
        dW, db = _mean_gradients(weights, activations, loss_name, hs, Yb)
        sgd_step(params, dW + db, velocities, lr, momentum)
    return total / n
