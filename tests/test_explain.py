"""Network.explain / explain_bias, cbackprop.gradcheck and ``cbackprop explain``.

The explanation of one weight's gradient is checked against the compiled gradient of the same
single sample, against the NumPy reference's forward and backward passes (an independent
oracle for every factor and every term of a sum), and against its own central difference.
"""

import importlib
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import cbackprop
from cbackprop import reference
from conftest import CONFIG_IDS, CONFIGS, assert_close, make_case

explain_module = importlib.import_module("cbackprop.explain")

# Two hidden layers, so there is a first, a middle and an output weight layer; two outputs
# suit every loss (one-hot targets for softmax + cross-entropy come from make_case).
SIZES = [3, 4, 3, 2]
LAYERS = [1, 2, 3]
LAYER_IDS = ["first", "middle", "output"]
KINDS = ["weight", "bias"]


def sample_case(config, dtype, seed=0):
    """A [3, 4, 3, 2] network and one sample (x, y) of its dtype, plus the reference's copies."""
    hidden, out, loss = config
    net, X, Y, W, b, acts = make_case(SIZES, hidden, out, loss, dtype, n=1, seed=seed)
    return net, X[0], Y[0], W, b, acts


def indices(net, layer, kind):
    """Every (i, j) of the layer's weights, or every (i, None) of its biases (1-based)."""
    n_out, n_in = net.sizes[layer], net.sizes[layer - 1]
    if kind == "bias":
        return [(i, None) for i in range(1, n_out + 1)]
    return [(i, j) for i in range(1, n_out + 1) for j in range(1, n_in + 1)]


def explain(net, x, y, layer, i, j, **kwargs):
    if j is None:
        return net.explain_bias(x, y, layer, i, **kwargs)
    return net.explain(x, y, layer, i, j, **kwargs)


def relu_margin(W, b, acts, x):
    """The smallest |z| over the relu layers for this sample (inf without relu)."""
    zs, _ = reference.forward_pass([w.astype(np.float64) for w in W],
                                   [v.astype(np.float64) for v in b], acts,
                                   x.astype(np.float64)[None])
    margins = [np.abs(z).min() for z, a in zip(zs, acts) if a == "relu"]
    return min(margins, default=np.inf)


# -- 1. the chain's product is the compiled gradient -------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layer", LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_product_and_gradient_equal_the_compiled_gradient_entry(config, layer, kind, dtype):
    net, x, y, *_ = sample_case(config, dtype)
    dW, db = net.gradients(x[None], y[None])
    block = dW[layer - 1] if kind == "weight" else db[layer - 1]
    scale = max(1e-3, float(np.abs(block).max()))
    for i, j in indices(net, layer, kind):           # every index, the last ones included
        e = explain(net, x, y, layer, i, j)
        want = block[i - 1, j - 1] if kind == "weight" else block[i - 1]
        assert (e.layer, e.i, e.j) == (layer, i, j)
        assert e.parameter == (f"w_{i}{j}^({layer})" if j else f"b_{i}^({layer})")
        assert_close(e.product, want, dtype, scale=scale)
        assert_close(e.gradient, want, dtype, scale=scale)


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_loss_is_the_samples_loss(config, dtype):
    net, x, y, *_ = sample_case(config, dtype)
    e = net.explain(x, y, 2, 1, 1)
    assert_close(e.loss, net.loss(x[None], y[None]), dtype)


# -- 2. the central difference agrees ----------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layer", LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_central_difference_agrees_in_float64(config, layer, kind):
    net, x, y, W, b, acts = sample_case(config, np.float64)
    # the default step is ~6e-6 * max(1, |p|); a relu z this far from 0 cannot cross the kink
    assert relu_margin(W, b, acts, x) > 1e-3, "the sample lands near a relu kink: pick another"
    for i, j in indices(net, layer, kind):
        e = explain(net, x, y, layer, i, j)
        assert e.relative_difference < 1e-6, (i, j, e.gradient, e.finite_difference)
        assert e.eps > 0


# -- 3. factors, sums and terms ----------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layer", LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_factor_values_multiply_to_the_product(config, layer, kind, dtype):
    net, x, y, *_ = sample_case(config, dtype)
    for i, j in indices(net, layer, kind):
        e = explain(net, x, y, layer, i, j)
        assert len(e.factors) in (2, 3)
        assert math.prod(f.value for f in e.factors) == pytest.approx(e.product, rel=1e-12,
                                                                      abs=1e-300)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layer", [1, 2], ids=["first", "middle"])
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_hidden_sum_has_one_term_per_next_layer_node(config, layer, kind, dtype):
    net, x, y, W, b, acts = sample_case(config, dtype)
    # independent oracle for delta^(l+2): the NumPy reference's backward pass
    _, hs = reference.forward_pass(W, b, acts, x[None])
    deltas = reference.backward_pass(W, acts, hs, reference.output_delta(
        net.loss_name, acts[-1], hs[-1], y[None]))
    L = layer + 1
    for i, j in indices(net, layer, kind):
        e = explain(net, x, y, layer, i, j)
        sums = [f for f in e.factors if f.terms]
        assert len(sums) == 1 and sums[0] is e.factors[0]
        factor = sums[0]
        assert factor.symbol == f"dJ/dh_{i}^({L})"
        assert factor.formula == f"sum_k w_k{i}^({L}) delta_k^({L + 1})"
        assert len(factor.terms) == net.sizes[layer + 1]
        for k, term in enumerate(factor.terms):
            w, d = term.values
            assert term.symbol == f"w_{k + 1}{i}^({L}) delta_{k + 1}^({L + 1})"
            assert w == net.weights[layer][k, i - 1]            # w_ki^(l+1), exactly
            assert_close(d, deltas[layer][0, k], dtype)           # delta_k^(l+2)
            assert term.value == pytest.approx(w * d, rel=1e-12, abs=1e-300)
        assert factor.value == pytest.approx(sum(t.value for t in factor.terms), rel=1e-12,
                                             abs=1e-300)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layer", LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_factors_match_the_reference_passes(config, layer, kind, dtype):
    """dz/dw = h_j^(l), dh/dz = f'(z) and the output's dJ/dh or dJ/dz, from the reference."""
    net, x, y, W, b, acts = sample_case(config, dtype)
    _, hs = reference.forward_pass(W, b, acts, x[None])
    delta_out = reference.output_delta(net.loss_name, acts[-1], hs[-1], y[None])[0]
    activation, output = acts[layer - 1], layer == len(SIZES) - 1
    one_factor_dz = output and (net.loss_name == "cross_entropy" or activation == "softmax")
    for i, j in indices(net, layer, kind):
        e = explain(net, x, y, layer, i, j)
        last = e.factors[-1]
        assert_close(last.value, 1.0 if j is None else hs[layer - 1][0, j - 1], dtype)
        if one_factor_dz:
            assert len(e.factors) == 2
            assert e.factors[0].symbol == f"dJ/dz_{i}^({layer + 1})"
            assert_close(e.factors[0].value, delta_out[i - 1], dtype)
            if activation == "softmax" and net.loss_name == "mse":
                assert len(e.factors[0].terms) == net.sizes[-1]   # the Jacobian's row
                assert e.factors[0].value == pytest.approx(
                    sum(t.value for t in e.factors[0].terms), rel=1e-12, abs=1e-300)
            continue
        assert len(e.factors) == 3
        h = hs[layer][0, i - 1]
        assert_close(e.factors[1].value, reference.DERIVATIVES[activation](h), dtype)
        if output:
            assert e.factors[0].terms == []
            assert_close(e.factors[0].value, h - y[i - 1], dtype)


# -- 4. the printed form -----------------------------------------------------------------------

X3 = np.array([0.1, 0.5, 0.9])


def three_three_one(activation="sigmoid", seed=0):
    net = cbackprop.Network([3, 3, 1], activation, seed=seed)
    net.biases = [np.array([0.3, -0.2, 0.1]), np.array([0.25])]   # relu: away from its kink
    return net


def test_output_weight_prints_the_tutorial_equation_with_its_numbers():
    net = three_three_one()
    e = net.explain(X3, 1.0, layer=2, i=1, j=2)
    text = str(e)
    lines = text.splitlines()
    assert lines[0] == "dJ/dw_12^(2) = dJ/dh_1^(3) * dh_1^(3)/dz_1^(3) * dz_1^(3)/dw_12^(2)"
    assert "-(y_1 - h_1^(3))" in lines[1]
    assert "h_1^(3)(1 - h_1^(3))" in lines[1]
    # the consistent index: output node 1's input sum is z_1^(3), never z_1^(2)
    assert "z_1^(2)" not in text
    # the numbers, from the NumPy reference: h^(3) - y, h^(3)(1 - h^(3)), h_2^(2), product
    _, hs = reference.forward_pass(list(net.weights), list(net.biases), net.activations,
                                   X3[None])
    h3, h22 = hs[2][0, 0], hs[1][0, 1]
    numbers = [h3 - 1.0, h3 * (1 - h3), h22]
    for value in numbers:
        assert f"{value:.6g}" in lines[2]
    assert lines[3].strip() == f"= {math.prod(numbers):.6g}"
    assert f"compiled gradient {e.gradient:.6g}" in text


@pytest.mark.parametrize("activation, formula", [("tanh", "1 - (h_1^(3))^2"),
                                                  ("relu", "1[z_1^(3) > 0]")],
                         ids=["tanh", "relu"])
def test_output_derivative_is_written_for_the_activation(activation, formula):
    net = three_three_one(activation)
    text = str(net.explain(X3, 0.5, layer=2, i=1, j=2))
    assert ("1 - (h_" if activation == "tanh" else "1[z_") in text
    assert formula in text.splitlines()[1]


def test_hidden_weight_prints_the_sum_over_the_next_layer():
    net = three_three_one()
    text = str(net.explain(X3, 1.0, layer=1, i=2, j=3))
    lines = text.splitlines()
    assert lines[0] == "dJ/dw_23^(1) = dJ/dh_2^(2) * dh_2^(2)/dz_2^(2) * dz_2^(2)/dw_23^(1)"
    assert "sum_k w_k" in text
    assert "where dJ/dh_2^(2) = sum_k w_k2^(2) delta_k^(3)" in text
    assert "w_12^(2) delta_1^(3)" in text


def test_latex_and_markdown_forms():
    e = three_three_one().explain(X3, 1.0, layer=2, i=1, j=2)
    latex = e._repr_latex_()
    assert latex.startswith("$$") and latex.endswith("$$")
    assert r"\frac{\partial J}{\partial w_{12}^{(2)}}" in latex
    assert r"\frac{\partial h_{1}^{(3)}}{\partial z_{1}^{(3)}}" in latex
    markdown = e._repr_markdown_()
    assert latex in markdown
    assert f"{e.gradient:.6g}" in markdown


def test_latex_terms_separate_two_digit_indices():
    net = cbackprop.Network([2, 11, 3], seed=0)
    latex = net.explain([0.2, -0.4], [0.1, 0.5, 0.9], layer=1, i=11, j=2)._repr_latex_()
    assert r"w_{1,11}^{(2)}" in latex


# -- 5. the network is left as it was ----------------------------------------------------------

@pytest.mark.parametrize("eps", [None, 1e-4], ids=["default-eps", "eps=1e-4"])
@pytest.mark.parametrize("config", [CONFIGS[0], CONFIGS[5]], ids=[CONFIG_IDS[0], CONFIG_IDS[5]])
def test_explain_leaves_the_network_unchanged_bit_for_bit(config, eps, dtype):
    net, x, y, *_ = sample_case(config, dtype)
    # a bias far smaller than the step: p + eps - eps does not give it back, so the test
    # catches an explain that undoes its perturbation arithmetically instead of restoring
    biases = [b.copy() for b in net.biases]
    biases[0][0] = 1.2345e-7
    net.biases = biases
    before = net.get_params()
    p = before[net.weights[0].size]
    step = dtype(np.finfo(dtype).eps ** (1 / 3) if eps is None else eps)
    assert p == dtype(1.2345e-7) and (p + step) - step != p
    for layer in LAYERS:
        for kind in KINDS:
            for i, j in indices(net, layer, kind):
                explain(net, x, y, layer, i, j, eps=eps)
    assert net.get_params().tobytes() == before.tobytes()
    assert net.get_params().dtype == dtype


# -- 6. bad input raises before anything runs --------------------------------------------------

class NoKernels:
    """Stands in for the kernel modules: touching one fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"a kernel ({name}) ran before the input was checked")


@pytest.fixture
def guarded_net(monkeypatch):
    net, x, y, *_ = sample_case(CONFIGS[0], np.float64)
    monkeypatch.setattr(explain_module, "_backward", NoKernels())
    monkeypatch.setattr(explain_module, "_forward", NoKernels())
    return net, x, y


X_OK = object()   # placeholders: the fixture's sample
Y_OK = object()

BAD_CALLS = [
    ("layer-0", "explain", (X_OK, Y_OK, 0, 1, 1), {}, ValueError, "layer"),
    ("layer-too-big", "explain", (X_OK, Y_OK, 4, 1, 1), {}, ValueError, "layer"),
    ("bias-layer-too-big", "explain_bias", (X_OK, Y_OK, 4, 1), {}, ValueError, "layer"),
    ("i-0", "explain", (X_OK, Y_OK, 1, 0, 1), {}, ValueError, "i must"),
    ("i-too-big", "explain", (X_OK, Y_OK, 1, 5, 1), {}, ValueError, "i must"),
    ("bias-i-too-big", "explain_bias", (X_OK, Y_OK, 3, 3), {}, ValueError, "i must"),
    ("j-0", "explain", (X_OK, Y_OK, 1, 1, 0), {}, ValueError, "j must"),
    ("j-too-big", "explain", (X_OK, Y_OK, 1, 1, 4), {}, ValueError, "j must"),
    ("j-too-big-output", "explain", (X_OK, Y_OK, 3, 2, 4), {}, ValueError, "j must"),
    ("float-layer", "explain", (X_OK, Y_OK, 1.0, 1, 1), {}, TypeError, "layer"),
    ("float-i", "explain", (X_OK, Y_OK, 1, 1.5, 1), {}, TypeError, "i must"),
    ("str-j", "explain", (X_OK, Y_OK, 1, 1, "2"), {}, TypeError, "j must"),
    ("bool-i", "explain", (X_OK, Y_OK, 1, True, 1), {}, TypeError, "i must"),
    ("j-None", "explain", (X_OK, Y_OK, 1, 1, None), {}, TypeError, "explain_bias"),
    ("two-samples", "explain", (np.zeros((2, 3)), np.zeros((2, 2)), 1, 1, 1), {},
     ValueError, "one sample"),
    ("wrong-feature-count", "explain", (np.zeros(4), Y_OK, 1, 1, 1), {}, ValueError,
     "features"),
    ("eps-0", "explain", (X_OK, Y_OK, 1, 1, 1), {"eps": 0.0}, ValueError, "eps"),
    ("eps-negative", "explain", (X_OK, Y_OK, 1, 1, 1), {"eps": -1e-4}, ValueError, "eps"),
    ("eps-nan", "explain_bias", (X_OK, Y_OK, 1, 1), {"eps": float("nan")}, ValueError, "eps"),
    ("eps-inf", "explain", (X_OK, Y_OK, 1, 1, 1), {"eps": float("inf")}, ValueError, "eps"),
]


@pytest.mark.parametrize("method, args, kwargs, error, match",
                         [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS])
def test_bad_input_raises_before_any_kernel_runs(guarded_net, method, args, kwargs, error,
                                                 match):
    net, x, y = guarded_net
    args = [x if a is X_OK else y if a is Y_OK else a for a in args]
    before = net.get_params()
    with pytest.raises(error, match=match):
        getattr(net, method)(*args, **kwargs)
    assert net.get_params().tobytes() == before.tobytes()


def test_numpy_integer_indices_are_accepted():
    net, x, y, *_ = sample_case(CONFIGS[0], np.float64)
    e = net.explain(x, y, np.int64(3), np.int32(2), np.int64(3))
    assert e.product == net.explain(x, y, 3, 2, 3).product


@pytest.mark.parametrize("api", ["explain", "gradcheck"])
@pytest.mark.parametrize("dtype_, eps", [(np.float64, 1e-300), (np.float32, 1e-10)],
                         ids=["float64", "float32"])
def test_eps_too_small_to_move_the_parameter_is_refused(dtype_, eps, api):
    net = cbackprop.Network([3, 3, 1], seed=0, dtype=dtype_)
    with pytest.raises(ValueError, match="eps"):
        if api == "explain":
            net.explain(X3, 1.0, 1, 1, 1, eps=eps)
        else:
            cbackprop.gradcheck(net, X3[None], [[1.0]], eps=eps)


# -- 7. gradcheck ------------------------------------------------------------------------------

@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_gradcheck_passes_in_float64(config):
    hidden, out, loss = config
    net, X, Y, *_ = make_case(SIZES, hidden, out, loss, np.float64, n=8)
    before = net.get_params()
    result = cbackprop.gradcheck(net, X, Y)
    assert result.passed and result.max_error <= 1e-6, str(result)
    assert result.tolerance == 1e-6
    assert len(result.layer_errors) == len(SIZES) - 1
    assert all(set(errors) == {"W", "b"} for errors in result.layer_errors)
    assert result.max_error == max(max(errors.values()) for errors in result.layer_errors)
    assert result.checked == net.get_params().size == 39   # 16 + 15 + 8
    assert net.get_params().tobytes() == before.tobytes()


def test_gradcheck_float32_passes_at_its_tolerance():
    net, X, Y, *_ = make_case(SIZES, "tanh", "sigmoid", "mse", np.float32, n=8)
    result = cbackprop.gradcheck(net, X, Y)
    assert result.passed and result.tolerance == 2e-2 and result.max_error <= 2e-2


def test_gradcheck_samples_a_reproducible_subset_of_every_block():
    net, X, Y, *_ = make_case([50, 40, 10], "tanh", "sigmoid", "mse", np.float64, n=8)
    result = cbackprop.gradcheck(net, X, Y, max_parameters=20, seed=3)
    # blocks of 2000, 40, 400 and 10 of 2450 parameters: round(20 * share), at least 1 each
    # -> 16 + 1 + 3 + 1 = 21
    assert 20 <= result.checked <= 24
    assert result.checked == 21
    assert len(result.layer_errors) == 2
    assert all(errors["W"] > 0 and errors["b"] > 0 for errors in result.layer_errors)
    assert cbackprop.gradcheck(net, X, Y, max_parameters=20, seed=3) == result
    assert cbackprop.gradcheck(net, X, Y, max_parameters=20, seed=4) != result


class ScaledBackward:
    """The real backward kernels, with the gradient scaled by 1.01: a 1% gradient bug."""

    def __init__(self, real):
        self.real = real

    def gradients(self, spec, params, X, Y, grad):
        self.real.gradients(spec, params, X, Y, grad)
        grad *= 1.01


def test_gradcheck_catches_a_one_percent_gradient_error(monkeypatch):
    net, X, Y, *_ = make_case([3, 4, 2], "sigmoid", "sigmoid", "mse", np.float64, n=8)
    assert cbackprop.gradcheck(net, X, Y).passed
    monkeypatch.setattr(explain_module, "_backward", ScaledBackward(explain_module._backward))
    result = cbackprop.gradcheck(net, X, Y)
    assert not result.passed
    assert result.max_error == pytest.approx(0.01, abs=1e-3)     # 0.01 / 1.01
    text = str(result)
    assert "max relative error" in text and "FAILED" in text
    assert text.count("W^(") == 2 and text.count("b^(") == 2


def test_gradcheck_str_reports_a_pass():
    net, X, Y, *_ = make_case([3, 4, 2], "tanh", "tanh", "mse", np.float64, n=8)
    text = str(cbackprop.gradcheck(net, X, Y))
    assert text.startswith("gradient check: 26 parameters")
    assert "max relative error" in text and "passed" in text


# -- 8. the command line -----------------------------------------------------------------------

MODEL_X, MODEL_Y = "0.1,-0.2,0.3", "0.25,0.75"

CLI_RUNS = {
    "default": [],
    "bias": ["--bias", "1,2"],
    "tanh": ["--weight", "1,1,2", "--sizes", "3,3,1", "--activation", "tanh", "--loss", "mse"],
    "model": ["--model", "{model}", "--x", MODEL_X, "--y", MODEL_Y, "--weight", "1,2,3"],
    "layer-too-big": ["--weight", "3,1,2", "--sizes", "3,3,1"],
    "two-numbers": ["--weight", "1,2"],
    "model-without-x": ["--model", "{model}"],
    "missing-model": ["--model", "{missing}", "--x", "0.1,0.5,0.9", "--y", "1"],
    "bad-sizes": ["--sizes", "3,x,1"],
}


def saved_model():
    return cbackprop.Network([3, 4, 2], ["tanh", "sigmoid"], "mse", seed=5)


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """Start every command-line run at once (each is a fresh interpreter); results on demand."""
    workdir = tmp_path_factory.mktemp("cli")
    saved_model().save(workdir / "net.npz")
    env = dict(os.environ)
    # import the cbackprop this session imported (see test_dispatch.py), not a source tree
    where = os.path.dirname(os.path.dirname(cbackprop.__file__))
    env["PYTHONPATH"] = where + os.pathsep + env.get("PYTHONPATH", "")
    paths = {"model": str(workdir / "net.npz"), "missing": str(workdir / "no-such.npz")}
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", "cbackprop", "explain"] + [a.format(**paths) for a in args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=workdir)
        for name, args in CLI_RUNS.items()}
    results = {}

    def run(name):
        if name not in results:
            out, err = processes[name].communicate(timeout=120)
            results[name] = processes[name].returncode, out, err
        return results[name]

    yield run
    for process in processes.values():
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.mark.parametrize("name, first_line", [
    ("default", "dJ/dw_12^(2) = dJ/dh_1^(3) * dh_1^(3)/dz_1^(3) * dz_1^(3)/dw_12^(2)"),
    ("bias", "dJ/db_2^(1) = dJ/dh_2^(2) * dh_2^(2)/dz_2^(2) * dz_2^(2)/db_2^(1)"),
    ("tanh", "dJ/dw_12^(1) = dJ/dh_1^(2) * dh_1^(2)/dz_1^(2) * dz_1^(2)/dw_12^(1)"),
], ids=["default", "bias", "tanh"])
def test_cli_prints_the_chain(cli, name, first_line):
    status, out, err = cli(name)
    assert status == 0, err
    assert err == ""
    assert first_line in out.splitlines()
    assert "compiled gradient" in out
    if name == "tanh":
        assert "network 3-3-1 tanh, loss mse" in out
        assert "1 - (h_1^(2))^2" in out


def test_cli_explains_a_saved_model_as_explain_does_in_process(cli):
    status, out, err = cli("model")
    assert status == 0, err
    x = np.array([float(v) for v in MODEL_X.split(",")])
    y = np.array([float(v) for v in MODEL_Y.split(",")])
    e = saved_model().explain(x, y, 1, 2, 3)
    printed = float(re.search(r"compiled gradient (\S+);", out).group(1))
    assert printed == pytest.approx(e.gradient, rel=1e-5)
    assert str(e) in out
    assert "network 3-4-2 tanh/sigmoid, loss mse" in out


@pytest.mark.parametrize("name, problem", [
    ("layer-too-big", "layer must be between 1 and 2, got 3"),
    ("two-numbers", "--weight takes l,i,j"),
    ("model-without-x", "--model needs the sample"),
    ("missing-model", "no-such.npz is not a readable cbackprop model file"),
    ("bad-sizes", "--sizes must be a comma-separated list of ints, got '3,x,1'"),
], ids=["layer-too-big", "two-numbers", "model-without-x", "missing-model", "bad-sizes"])
def test_cli_errors_exit_2_with_one_line_and_no_traceback(cli, name, problem):
    status, out, err = cli(name)
    assert status == 2
    assert out == ""
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert errors == [err.splitlines()[-1]]
    assert errors[0].startswith("cbackprop explain: error: ")
    assert problem in errors[0]


def test_the_command_line_takes_one_activation_per_layer(capsys):
    from cbackprop.__main__ import main
    assert main(["explain", "--sizes", "3,3,2", "--activation", "tanh,softmax",
                 "--loss", "cross_entropy", "--weight", "2,2,3"]) == 0
    out = capsys.readouterr().out
    assert "tanh/softmax" in out and "dJ/dz_2^(3) * dz_2^(3)/dw_23^(2)" in out


def test_the_command_line_names_a_negative_seed(capsys):
    from cbackprop.__main__ import main
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", "--seed", "-1"])
    assert exit_info.value.code == 2 and "--seed" in capsys.readouterr().err
