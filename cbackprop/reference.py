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
    "gradients", "sgd_step", "adam_step", "rprop_step", "SGD", "Adam", "Rprop", "train_epoch",
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


def _mean_gradients(weights, activations, loss_name, hs, Y, sample_weight=None):
    """(dW, db) averaged over the rows, from a forward pass's outputs hs.

    With ``sample_weight`` (shape (n,)), row s contributes the gradient of weight_s J_s.
    """
    delta_out = output_delta(loss_name, activations[-1], hs[-1], Y)
    if sample_weight is not None:
        delta_out = delta_out * sample_weight[:, None]    # d(w_s J_s)/dz = w_s delta_s
    deltas = backward_pass(weights, activations, hs, delta_out)
    n = Y.shape[0]
    dW = [d.T @ h / n for d, h in zip(deltas, hs[:-1])]   # mean of delta^(l+1) h^(l)T
    db = [d.sum(axis=0) / n for d in deltas]               # mean of delta^(l+1)
    return dW, db


# -- optimizers ------------------------------------------------------------------------------
# Each one turns the gradient g of a step into new parameters, in place. The L2 penalty
# l2/2 ||W||^2 has been added to the gradient already (g = dJ/dW + l2 W, weights only).

def sgd_step(params, grads, velocities, lr, momentum=0.0, nesterov=False):
    """Stochastic gradient descent, with classical or Nesterov momentum, in place.

    ``v = momentum * v - lr * g``, then ``p = p + v`` (classical) or ``p = p + momentum * v
    - lr * g`` (Nesterov, Sutskever et al. 2013). With ``momentum = 0``: ``p = p - lr * g``.
    """
    for p, g, v in zip(params, grads, velocities):
        if momentum == 0:
            p -= lr * g
            continue
        v *= momentum
        v -= lr * g
        if nesterov:
            p += momentum * v - lr * g
        else:
            p += v


def adam_step(params, grads, moments, squares, t, lr, beta1=0.9, beta2=0.999, eps=1e-8,
              weight_decays=None):
    """Adam (Kingma and Ba 2015) step number ``t`` (1-based), in place.

    ``m = beta1 m + (1 - beta1) g`` and ``v = beta2 v + (1 - beta2) g^2``; with the
    bias corrections ``m_hat = m / (1 - beta1^t)`` and ``v_hat = v / (1 - beta2^t)``:
    ``p = p - lr * m_hat / (sqrt(v_hat) + eps)``. ``weight_decays`` (one per parameter array)
    gives AdamW's decoupled decay (Loshchilov and Hutter 2019): first ``p = p (1 - lr wd)``.
    """
    c1 = lr / (1 - beta1 ** t)                 # lr / (1 - beta1^t)
    c2 = 1 / np.sqrt(1 - beta2 ** t)           # 1 / sqrt(1 - beta2^t)
    if weight_decays is None:
        weight_decays = [0.0] * len(params)
    for p, g, m, v, wd in zip(params, grads, moments, squares, weight_decays):
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * (g * g)
        if wd:
            p *= 1 - lr * wd
        p -= c1 * m / (np.sqrt(v) * c2 + eps)


def rprop_step(params, grads, previous, step_sizes, increase=1.2, decrease=0.5, delta_min=0.0,
               delta_max=50.0):
    """iRprop- (Igel and Huesken 2000) on full-batch gradients, in place.

    Each parameter has its own step size. Where the gradient kept its sign, the step grows
    (``* increase``, at most ``delta_max``); where it changed sign, the step shrinks
    (``* decrease``, at least ``delta_min``) and this gradient is forgotten (set to 0, so
    the parameter does not move now and the next step grows nor shrinks nothing). Then
    ``p = p - sign(g) * step``; ``previous`` remembers ``g``.
    """
    for p, g, prev, step in zip(params, grads, previous, step_sizes):
        g = g.copy()
        same, flipped = prev * g > 0, prev * g < 0
        step[same] = np.minimum(step[same] * increase, delta_max)
        step[flipped] = np.maximum(step[flipped] * decrease, delta_min)
        g[flipped] = 0
        p -= np.sign(g) * step
        prev[...] = g


class SGD:
    """Plain SGD, or SGD with momentum: ``step(params, grads)`` runs :func:`sgd_step`."""

    def __init__(self, params, lr, momentum=0.0, nesterov=False, velocities=None):
        self.lr, self.momentum, self.nesterov = lr, momentum, nesterov
        self.velocities = ([np.zeros_like(p) for p in params] if velocities is None
                           else velocities)

    def step(self, params, grads):
        sgd_step(params, grads, self.velocities, self.lr, self.momentum, self.nesterov)


class Adam:
    """Adam or AdamW: ``step(params, grads)`` runs :func:`adam_step` and counts the steps.

    ``weight_decay`` applies to the weights only (the first ``n_weights`` arrays).
    """

    def __init__(self, params, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                 n_weights=None):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        n_weights = len(params) // 2 if n_weights is None else n_weights
        self.weight_decays = [weight_decay] * n_weights + [0.0] * (len(params) - n_weights)
        self.moments = [np.zeros_like(p) for p in params]
        self.squares = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, params, grads):
        self.t += 1
        adam_step(params, grads, self.moments, self.squares, self.t, self.lr, self.beta1,
                  self.beta2, self.eps, self.weight_decays)


class Rprop:
    """iRprop-: ``step(params, grads)`` runs :func:`rprop_step`; steps start at delta_zero."""

    def __init__(self, params, increase=1.2, decrease=0.5, delta_min=0.0, delta_max=50.0,
                 delta_zero=0.1):
        self.settings = (increase, decrease, delta_min, delta_max)
        self.previous = [np.zeros_like(p) for p in params]
        self.step_sizes = [np.full_like(p, delta_zero) for p in params]

    def step(self, params, grads):
        rprop_step(params, grads, self.previous, self.step_sizes, *self.settings)


def train_epoch(weights, biases, activations, loss_name, X, Y, lr, batch_size,
                momentum=0.0, velocities=None, order=None, *, optimizer=None, l2=0.0,
                sample_weight=None):
    """One epoch over the rows X[order], in place; returns the mean loss before each step.

    Each step moves every parameter by the mean gradient of its batch (a batch of 1 is online
    training), plus ``l2 * W`` for the weights (the gradient of the penalty l2/2 ||W||^2).
    ``optimizer`` is an object with ``step(params, grads)`` over ``weights + biases`` (one of
    :class:`SGD`, :class:`Adam`, :class:`Rprop`); by default SGD with ``lr``, ``momentum``
    and ``velocities`` (a list like ``weights + biases``, zeros when None). With
    ``sample_weight`` (shape (n,)), sample s counts as weight_s J_s in loss and gradient.
    Full-batch training (Rprop's) is ``batch_size = n``.
    """
    params = list(weights) + list(biases)
    if optimizer is None:
        optimizer = SGD(params, lr, momentum, velocities=velocities)
    n = X.shape[0]
    order = np.arange(n) if order is None else order
    total = 0.0
    for start in range(0, n, batch_size):
        rows = order[start:start + batch_size]
        Xb, Yb = X[rows], Y[rows]
        wb = None if sample_weight is None else sample_weight[rows]
        zs, hs = forward_pass(weights, biases, activations, Xb)
        J = sample_loss(loss_name, activations[-1], hs[-1], zs[-1], Yb)
        total += float(np.sum(J if wb is None else wb * J))
        dW, db = _mean_gradients(weights, activations, loss_name, hs, Yb, wb)
        if l2:
            dW = [g + l2 * W for g, W in zip(dW, weights)]
        optimizer.step(params, dW + db)
    return total / n
