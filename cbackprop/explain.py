"""The chain rule, made visible: one weight's gradient factor by factor, and gradient checks.

For one sample and one weight ``w_ij^(l)`` (the tutorial's 1-based notation: ``l`` the weight
layer, ``i`` the node it feeds in layer ``l+1``, ``j`` the node it leaves in layer ``l``)::

    dJ/dw_ij^(l) = dJ/dh_i^(l+1) * dh_i^(l+1)/dz_i^(l+1) * dz_i^(l+1)/dw_ij^(l)

- ``dz_i^(l+1)/dw_ij^(l) = h_j^(l)``, because ``z^(l+1) = W^(l) h^(l) + b^(l)``;
- ``dh_i^(l+1)/dz_i^(l+1) = f'(z_i^(l+1))``, written from the output (sigmoid: ``h (1 - h)``);
- at the output layer, ``dJ/dh_i^(nl)`` is the loss's derivative (``-(y_i - h_i^(nl))`` for
  ``J = 1/2 ||y - h||^2``); in a hidden layer it is the sum over the paths through the next
  layer, ``sum_k w_ki^(l+1) delta_k^(l+2)``, and ``delta_i^(l+1) = dJ/dh_i^(l+1) f'(z_i^(l+1))``.

The widely copied form of the output-layer equation writes the middle factor as
``dh_1^(3)/dz_1^(2)``; with ``z^(l+1) = W^(l) h^(l) + b^(l)`` the input sum of output node 1
is ``z_1^(3)``, and that is the index used here.

A softmax output couples every output to every input sum, so its ``dJ/dz_i`` is a sum over
the outputs; cross-entropy with a softmax or sigmoid output cancels the activation's
derivative (``dJ/dz_i = h_i - y_i`` for one-hot targets). Those two cases show ``dJ/dz_i``
as one factor, with its terms.

Every number comes from the compiled passes that train the network (``_backward.trace``);
the product is checked against :meth:`Network.gradients` and a central finite difference.
"""

from dataclasses import dataclass, field

import numpy as np

from ._config import check_int, check_positive_finite
from ._dispatch import backward_kernels as _backward, forward_kernels as _forward


# -- symbols, in plain text and in LaTeX ----------------------------------------------------

def _sym(name, sub, layer, latex):
    """``name_sub^(layer)``: e.g. h_2^(3), or h_{2}^{(3)} in LaTeX."""
    if latex:
        return f"{name}_{{{sub}}}^{{({layer})}}"
    return f"{name}_{sub}^({layer})"


def _d(top, bottom, latex):
    return f"\\frac{{\\partial {top}}}{{\\partial {bottom}}}" if latex else f"d{top}/d{bottom}"


_TIMES = {False: " * ", True: " \\cdot "}


def _derivative_formula(activation, i, layer, latex):
    """f'(z_i^(layer)) written from the output h, as the tutorial writes it."""
    h = _sym("h", i, layer, latex)
    if activation == "sigmoid":
        return f"{h}(1 - {h})"
    if activation == "tanh":
        return f"1 - ({h})^2"
    if activation == "relu":
        z = _sym("z", i, layer, latex)
        return f"\\mathbb{{1}}[{z} > 0]" if latex else f"1[{z} > 0]"
    return "1"


def _derivative_value(activation, h):
    if activation == "sigmoid":
        return h * (1 - h)
    if activation == "tanh":
        return 1 - h * h
    if activation == "relu":
        return float(h > 0)
    return 1.0


@dataclass
class Term:
    """One path of a sum in the chain rule: ``coefficient * delta`` (or a Jacobian term)."""

    symbol: str
    latex: str
    values: tuple
    value: float


@dataclass
class Factor:
    """One factor of the chain: its symbol, its formula, its value, and the terms of a sum."""

    symbol: str
    formula: str
    value: float
    latex_symbol: str = ""
    latex_formula: str = ""
    terms: list = field(default_factory=list)
    note: str = ""


@dataclass
class Explanation:
    """The gradient of one sample's loss with respect to one weight or bias, factor by factor.

    Attributes
    ----------
    parameter : str
        ``"w_ij^(l)"`` or ``"b_i^(l)"`` (1-based, the tutorial's notation).
    layer, i, j : int
        The weight layer and the nodes (``j`` is None for a bias).
    factors : list of Factor
        The chain, left to right; ``product`` is the product of their values.
    product : float
        The derivative as the chain computes it.
    gradient : float
        The same entry of the compiled gradient (``Network.gradients`` on this sample).
    finite_difference : float
        ``(J(p + eps) - J(p - eps)) / (2 eps)`` with the compiled loss.
    relative_difference : float
        ``|gradient - finite_difference| / max(|gradient|, |finite_difference|)`` (0 when
        both are 0).
    eps : float
    loss : float
        The sample's loss J.
    """

    parameter: str
    latex_parameter: str
    layer: int
    i: int
    j: int
    factors: list
    product: float
    gradient: float
    finite_difference: float
    relative_difference: float
    eps: float
    loss: float
    values: dict = field(default_factory=dict)

    def _lines(self, latex):
        times = _TIMES[latex]
        head = _d("J", self.latex_parameter if latex else self.parameter, latex)
        symbols = times.join(f.latex_symbol if latex else f.symbol for f in self.factors)
        formulas = times.join(_paren(f.latex_formula if latex else f.formula)
                              for f in self.factors)
        numbers = times.join(_paren(_num(f.value)) for f in self.factors)
        return head, [symbols, formulas, numbers, _num(self.product)]

    def __str__(self):
        head, rhs = self._lines(False)
        pad = " " * len(head)
        lines = [f"{head} = {rhs[0]}"] + [f"{pad} = {r}" for r in rhs[1:]]
        if self.values.get("known"):
            lines.append("  with " + ", ".join(f"{name} = {_num(value)}"
                                               for name, value in self.values["known"]))
        for f in self.factors:
            if f.terms:
                lines.append(f"  where {f.symbol} = {f.formula}")
                sub = " " * (len(f"  where {f.symbol}"))
                lines.append(f"{sub} = " + " + ".join(t.symbol for t in f.terms))
                lines.append(f"{sub} = " + " + ".join(
                    "(" + " * ".join(_num(v) for v in t.values) + ")" for t in f.terms))
                lines.append(f"{sub} = {_num(f.value)}")
            if f.note:
                lines.append(f"  ({f.symbol}: {f.note})")
        lines.append(f"  compiled gradient {_num(self.gradient)}; central difference "
                     f"{_num(self.finite_difference)} (eps {self.eps:.1e}); relative "
                     f"difference {self.relative_difference:.1e}")
        return "\n".join(lines)

    def _repr_latex_(self):
        head, rhs = self._lines(True)
        body = " \\\\\n  &= ".join(rhs)
        extra = []
        for f in self.factors:
            if f.terms:
                extra.append(f"{f.latex_symbol} &= {f.latex_formula} = " + " + ".join(
                    t.latex for t in f.terms) + f" = {_num(f.value)}")
        rows = f"{head} &= {body}" + "".join(f" \\\\\n{e}" for e in extra)
        return f"$$\\begin{{aligned}}\n{rows}\n\\end{{aligned}}$$"

    def _repr_markdown_(self):
        return (self._repr_latex_() + "\n\n" +
                f"compiled gradient `{_num(self.gradient)}`, central difference "
                f"`{_num(self.finite_difference)}`, relative difference "
                f"`{self.relative_difference:.1e}`")


def _paren(text):
    """Parenthesise a formula or number that would not read as one factor."""
    return f"({text})" if (" " in text or text.startswith("-")) else text


def _num(value):
    return "0" if value == 0 else f"{value:.6g}"      # never "-0"


def _default_eps(dtype, value):
    """Central-difference step: cube root of the machine epsilon, scaled by the value."""
    return float(np.finfo(dtype).eps ** (1 / 3) * max(1.0, abs(value)))


def _check_step(dtype, value, eps):
    """Refuse a step that the dtype rounds away: the difference would divide by zero."""
    if dtype.type(value + dtype.type(eps)) == value or dtype.type(value - dtype.type(eps)) == value:
        raise ValueError(f"eps={eps!r} is too small to change a parameter of value "
                         f"{float(value):.6g} in {dtype.name}; use a larger eps (or None)")


def _relative(a, b):
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale


def _check_index(value, name, high):
    value = check_int(value, name, 1)
    if value > high:
        raise ValueError(f"{name} must be between 1 and {high}, got {value}")
    return value


def _trace(net, X, Y):
    """h, delta of every layer (lists by 0-based weight layer) and the gradient, compiled."""
    n_units = sum(net.sizes[1:])
    H = np.empty(n_units, net.dtype)
    D = np.empty(n_units, net.dtype)
    grad = np.empty_like(net._params)
    J = _backward.trace(net._spec, net._params, X, Y, H, D, grad)
    offsets = np.cumsum([0] + list(net.sizes[1:]))
    hs = [X[0]] + [H[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
    deltas = [D[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
    return hs, deltas, grad, J


def _central_difference(net, params, flat, eps, X, Y):
    """(J(p + eps) - J(p - eps)) / (2 eps) for parameter ``flat`` of the summed loss, on
    ``params``, a private copy of the network's parameters: the network itself never
    changes, so other threads can use it meanwhile. The steps are taken as the dtype rounds
    them, and ``params[flat]`` is restored before returning."""
    original = params[flat]
    _check_step(net.dtype, original, eps)
    try:
        params[flat] = original + net.dtype.type(eps)
        up = _forward.loss_sum(net._spec, params, X, Y)
        step_up = float(params[flat]) - float(original)
        params[flat] = original - net.dtype.type(eps)
        down = _forward.loss_sum(net._spec, params, X, Y)
        step_down = float(original) - float(params[flat])
    finally:
        params[flat] = original
    return (up - down) / (step_up + step_down)


def explain(net, x, y, layer, i, j=None, eps=None):
    """Explain ``dJ/dw_ij^(layer)`` (or ``dJ/db_i^(layer)`` when ``j`` is None) for one sample.

    See :meth:`cbackprop.Network.explain`.
    """
    X, Y = net._check_data(x, y)
    if X.shape[0] != 1:
        raise ValueError(f"explain takes one sample, got {X.shape[0]}")
    n_layers = len(net.sizes) - 1
    layer = _check_index(layer, "layer", n_layers)
    i = _check_index(i, "i", net.sizes[layer])
    if j is not None:
        j = _check_index(j, "j", net.sizes[layer - 1])
    if eps is not None:
        eps = check_positive_finite(eps, "eps", net.dtype)

    hs, deltas, grad, J = _trace(net, X, Y)
    L, nl = layer + 1, n_layers + 1               # the layer fed, the output layer (1-based)
    acts = net.activations
    activation = acts[layer - 1]
    h_out = [float(v) for v in hs[layer]]         # h^(L), L = layer + 1
    y_row = [float(v) for v in Y[0]]
    factors = []
    # dJ/dh_i^(L) * dh_i^(L)/dz_i^(L), or dJ/dz_i^(L) as one factor
    hi, hi_tex = _sym("h", i, L, False), _sym("h", i, L, True)
    zi, zi_tex = _sym("z", i, L, False), _sym("z", i, L, True)
    if L == nl and (net.loss_name == "cross_entropy" or activation == "softmax"):
        factors.append(_output_dz_factor(net, i, nl, h_out, y_row))
    else:
        if L == nl:
            dJ_dh = h_out[i - 1] - y_row[i - 1]
            yi = f"y_{i}"
            factors.append(Factor(
                _d("J", hi, False), f"-({yi} - {hi})", dJ_dh,
                _d("J", hi_tex, True), f"-(y_{{{i}}} - {hi_tex})",
                note="the derivative of J = 1/2 ||y - h||^2"))
        else:
            factors.append(_hidden_sum_factor(net, layer, i, deltas))
        factors.append(Factor(
            _d(hi, zi, False), _derivative_formula(activation, i, L, False),
            _derivative_value(activation, h_out[i - 1]),
            _d(hi_tex, zi_tex, True), _derivative_formula(activation, i, L, True),
            note=f"f'(z) of {activation}, written from its output h = f(z)"))
    if j is None:
        parameter, latex_parameter = f"b_{i}^({layer})", f"b_{{{i}}}^{{({layer})}}"
        factors.append(Factor(_d(zi, parameter, False), "1", 1.0,
                              _d(zi_tex, latex_parameter, True), "1"))
        flat = net._offsets()[1][layer - 1] + i - 1
    else:
        parameter, latex_parameter = _wsym(i, j, layer, False), _wsym(i, j, layer, True)
        hj, hj_tex = _sym("h", j, layer, False), _sym("h", j, layer, True)
        factors.append(Factor(_d(zi, parameter, False), hj, float(hs[layer - 1][j - 1]),
                              _d(zi_tex, latex_parameter, True), hj_tex,
                              note=f"z^({L}) = W^({layer}) h^({layer}) + b^({layer})"))
        flat = net._offsets()[0][layer - 1] + (i - 1) * net.sizes[layer - 1] + (j - 1)
    product = 1.0
    for f in factors:
        product *= f.value
    # the quantities the formulas name, as the forward pass computed them
    known = []
    if L == nl:
        known += [(f"y_{k + 1}", y_row[k]) for k in range(len(y_row))
                  if k == i - 1 or activation == "softmax"]
        known += [(_sym("h", k + 1, L, False), h_out[k]) for k in range(len(h_out))
                  if k == i - 1 or activation == "softmax"]
    else:
        known.append((hi, h_out[i - 1]))
    if activation == "relu":
        known.append((zi, float(np.dot(net.weights[layer - 1][i - 1], hs[layer - 1])
                                + net.biases[layer - 1][i - 1])))
    if j is not None:
        known.append((_sym("h", j, layer, False), float(hs[layer - 1][j - 1])))

    eps = _default_eps(net.dtype, float(net._params[flat])) if eps is None else eps
    fd = _central_difference(net, net._params.copy(), flat, eps, X, Y)
    gradient = float(grad[flat])
    return Explanation(parameter, latex_parameter, layer, i, j, factors, product, gradient,
                       fd, _relative(gradient, fd), eps, float(J),
                       {"known": known, "x": X[0].copy(), "y": Y[0].copy(),
                        "h": [h.copy() for h in hs], "delta": [d.copy() for d in deltas]})


def _hidden_sum_factor(net, layer, i, deltas):
    """dJ/dh_i^(l+1) = sum_k w_ki^(l+1) delta_k^(l+2): every path through the next layer."""
    L = layer + 1
    W_next = net.weights[layer]                     # W^(l+1), shape (sizes[L], sizes[L-1])
    d_next = deltas[layer]                          # delta^(l+2)
    terms = []
    for k in range(W_next.shape[0]):
        w, d = float(W_next[k, i - 1]), float(d_next[k])
        delta, delta_tex = _sym("delta", k + 1, L + 1, False), _sym(r"\delta", k + 1, L + 1, True)
        terms.append(Term(f"{_wsym(k + 1, i, L, False)} {delta}",
                          f"{_wsym(k + 1, i, L, True)} {delta_tex}", (w, d), w * d))
    hi = _sym("h", i, L, False)
    hi_tex = _sym("h", i, L, True)
    ki = f"k{i}" if i < 10 else f"k,{i}"
    return Factor(_d("J", hi, False), f"sum_k w_{ki}^({L}) delta_k^({L + 1})",
                  sum(t.value for t in terms), _d("J", hi_tex, True),
                  f"\\sum_k w_{{{ki}}}^{{({L})}} \\delta_k^{{({L + 1})}}", terms,
                  note=f"each delta_k^({L + 1}) = dJ/dz_k^({L + 1}) is already known from "
                       f"the layer above")


def _wsym(a, b, layer, latex):
    """w_ab^(layer); a comma between the indices once one has two digits."""
    sub = f"{a}{b}" if max(a, b) < 10 else f"{a},{b}"
    return f"w_{{{sub}}}^{{({layer})}}" if latex else f"w_{sub}^({layer})"


def _output_dz_factor(net, i, nl, h, y):
    """dJ/dz_i^(nl) as one factor: softmax outputs, or cross-entropy's cancellation."""
    zi, zi_tex = _sym("z", i, nl, False), _sym("z", i, nl, True)
    hi, hi_tex = _sym("h", i, nl, False), _sym("h", i, nl, True)
    out = net.activations[-1]
    if net.loss_name == "cross_entropy" and out == "sigmoid":
        return Factor(_d("J", zi, False), f"{hi} - y_{i}", h[i - 1] - y[i - 1],
                      _d("J", zi_tex, True), f"{hi_tex} - y_{{{i}}}",
                      note="for J = -y log h - (1 - y) log(1 - h), dJ/dh = (h - y) / (h(1 - h)) "
                           "and the sigmoid's h(1 - h) cancels")
    if net.loss_name == "cross_entropy":
        total = sum(y)
        return Factor(_d("J", zi, False), f"{hi} sum_k y_k - y_{i}", h[i - 1] * total - y[i - 1],
                      _d("J", zi_tex, True), f"{hi_tex} \\sum_k y_k - y_{{{i}}}",
                      note="for J = -sum_k y_k log h_k with softmax h, the Jacobian's terms "
                           "sum to this (h_i - y_i for one-hot y)")
    # softmax with mse: dJ/dz_i = sum_k dJ/dh_k dh_k/dz_i, dh_k/dz_i = h_k (1[k = i] - h_i)
    terms = []
    for k in range(len(h)):
        dJ_dh = h[k] - y[k]
        dh_dz = h[k] * ((1.0 if k == i - 1 else 0.0) - h[i - 1])
        terms.append(Term(f"{_d('J', _sym('h', k + 1, nl, False), False)} "
                          f"{_d(_sym('h', k + 1, nl, False), zi, False)}",
                          f"{_d('J', _sym('h', k + 1, nl, True), True)} "
                          f"{_d(_sym('h', k + 1, nl, True), zi_tex, True)}",
                          (dJ_dh, dh_dz), dJ_dh * dh_dz))
    return Factor(_d("J", zi, False),
                  f"sum_k -(y_k - h_k^({nl})) h_k^({nl}) (1[k = {i}] - {hi})",
                  sum(t.value for t in terms), _d("J", zi_tex, True),
                  f"\\sum_k -(y_k - h_k^{{({nl})}}) h_k^{{({nl})}} "
                  f"(\\mathbb{{1}}[k = {i}] - {hi_tex})", terms,
                  note="softmax couples every output h_k to every input sum z_i")


# -- gradient checking ----------------------------------------------------------------------

@dataclass
class GradientCheck:
    """Central differences against the compiled gradient, per layer and overall.

    Attributes
    ----------
    max_error : float
        The largest relative error over every checked parameter.
    layer_errors : list of dict
        Per weight layer (0-based list, tutorial layer ``l = index + 1``): the largest
        relative error of its weights (``"W"``) and of its biases (``"b"``).
    checked : int
        How many parameters were checked (all of them, or a random subset).
    eps : float
    tolerance : float
    passed : bool
        ``max_error <= tolerance``.
    """

    max_error: float
    layer_errors: list
    checked: int
    eps: float
    tolerance: float
    passed: bool

    def __str__(self):
        lines = [f"gradient check: {self.checked} parameters, eps {self.eps:.1e}, "
                 f"max relative error {self.max_error:.2e} "
                 f"({'passed' if self.passed else 'FAILED'} at {self.tolerance:.0e})"]
        for index, errors in enumerate(self.layer_errors):
            lines.append(f"  W^({index + 1}) {errors['W']:.2e}   b^({index + 1}) "
                         f"{errors['b']:.2e}")
        return "\n".join(lines)


def gradcheck(net, X, Y, eps=None, max_parameters=2000, tolerance=None, seed=0):
    """Check the compiled gradient of ``net.loss(X, Y)`` against central differences.

    Parameters
    ----------
    net : Network
    X, Y : array-like
        As for :meth:`Network.loss`.
    eps : float, optional
        The difference step; default ``eps_machine^(1/3) * max(1, |p|)`` per parameter.
    max_parameters : int, default=2000
        Check about this many parameters, drawn at random (every layer's weights and biases
        sampled in proportion, and at least one of each, so a few more than this can be
        checked); all of them when the network has no more than this.
    tolerance : float, optional
        The largest relative error that passes: default 1e-6 in float64, 2e-2 in float32.
    seed : int, default=0
        Seeds the subset.

    Returns
    -------
    GradientCheck

    Notes
    -----
    The relative error of a parameter is ``|g - fd| / max(|g|, |fd|, floor)``, with a floor
    (1e-8 in float64, 1e-4 in float32) so that gradients near 0 are judged absolutely. relu
    has a kink at 0: where a perturbation moves some ``z`` across 0 the two one-sided slopes
    differ and the central difference is wrong there, not the gradient. With random data
    that is rare at the default step; a check that fails only on a relu network is worth
    repeating with a smaller ``eps``.
    """
    X, Y = net._check_data(X, Y)
    max_parameters = check_int(max_parameters, "max_parameters", 1)
    seed = check_int(seed, "seed", 0)
    if eps is not None:
        eps = check_positive_finite(eps, "eps", net.dtype)
    f64 = net.dtype == np.float64
    tolerance = (1e-6 if f64 else 2e-2) if tolerance is None else \
        check_positive_finite(tolerance, "tolerance")
    floor = 1e-8 if f64 else 1e-4
    grad = np.empty_like(net._params)
    _backward.gradients(net._spec, net._params, X, Y, grad)
    n = X.shape[0]
    rng = np.random.default_rng(seed)
    n_layers = len(net.sizes) - 1
    w_off, b_off = net._offsets()
    total = net._params.size
    blocks = []                                   # (layer, "W"/"b", start, length)
    for layer in range(n_layers):
        blocks.append((layer, "W", w_off[layer], b_off[layer] - w_off[layer]))
        blocks.append((layer, "b", b_off[layer], net.sizes[layer + 1]))
    layer_errors = [{"W": 0.0, "b": 0.0} for _ in range(n_layers)]
    checked, used_eps = 0, []
    params = net._params.copy()
    for layer, kind, start, length in blocks:
        count = length if total <= max_parameters else \
            max(1, int(round(max_parameters * length / total)))
        picks = np.arange(length) if count >= length else rng.choice(length, count,
                                                                      replace=False)
        for p in start + picks:
            step = _default_eps(net.dtype, float(params[p])) if eps is None else eps
            used_eps.append(step)
            fd = _central_difference(net, params, p, step, X, Y) / n
            g = float(grad[p])
            error = abs(g - fd) / max(abs(g), abs(fd), floor)
            layer_errors[layer][kind] = max(layer_errors[layer][kind], error)
            checked += 1
    max_error = max(max(e.values()) for e in layer_errors)
    return GradientCheck(max_error, layer_errors, checked, float(np.median(used_eps)),
                         tolerance, max_error <= tolerance)
