"""Every optimizer, L2 and sample weights against the NumPy reference, step by step; and the
optimizer state that lets training resume exactly (across calls and across save/load)."""

import copy

import numpy as np
import pytest

import cbackprop
from cbackprop import reference
from cbackprop._dispatch import train_kernels
from cbackprop.optimizers import make_optimizer
from cbackprop.train import _check_plain_settings
from conftest import CONFIGS, CONFIG_IDS, assert_close, make_case

# (train() arguments, a factory for the reference's optimizer object over params)
OPTIMIZERS = {
    "sgd": (dict(optimizer="sgd", lr=0.1),
            lambda params, dt: reference.SGD(params, 0.1)),
    "momentum": (dict(optimizer="sgd", lr=0.05, momentum=0.9),
                 lambda params, dt: reference.SGD(params, 0.05, 0.9)),
    "nesterov": (dict(optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True),
                 lambda params, dt: reference.SGD(params, 0.05, 0.9, nesterov=True)),
    "adam": (dict(optimizer="adam", lr=0.01),
             lambda params, dt: reference.Adam(params, 0.01)),
    "adamw": (dict(optimizer=cbackprop.AdamW(beta1=0.8, beta2=0.99, weight_decay=0.1),
                   lr=0.01),
              lambda params, dt: reference.Adam(params, 0.01, 0.8, 0.99, 1e-8, 0.1)),
}


def _reference_run(W, b, acts, loss, X, Y, make_opt, batch_size, epochs, l2=0.0,
                   sample_weight=None):
    """Parameters after each epoch and the epoch losses of the NumPy reference."""
    opt = make_opt(W + b, X.dtype)
    snapshots, losses = [], []
    for _ in range(epochs):
        losses.append(reference.train_epoch(W, b, acts, loss, X, Y, None, batch_size,
                                            optimizer=opt, l2=l2,
                                            sample_weight=sample_weight))
        snapshots.append([p.copy() for p in W + b])
    return snapshots, losses


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("batch_size", [1, 4, 13], ids=["online", "mini", "full"])
@pytest.mark.parametrize("config", CONFIGS[:1] + CONFIGS[5:], ids=[CONFIG_IDS[0]] + CONFIG_IDS[5:])
def test_optimizer_matches_reference_epoch_by_epoch(name, batch_size, config, dtype):
    hidden, out, loss = config
    net, X, Y, W, b, acts = make_case([3, 5, 4, 2], hidden, out, loss, dtype)
    kwargs, make_opt = OPTIMIZERS[name]
    expected, losses = _reference_run(W, b, acts, loss, X, Y, make_opt, batch_size, 3)
    for epoch in range(3):
        history = net.train(X, Y, epochs=1, batch_size=batch_size, shuffle=False, **kwargs)
        assert_close(net.get_params(), _flat(expected[epoch]),
                     dtype)
        assert_close(history.loss[0], losses[epoch], dtype)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("batch_size", [1, 5])
def test_l2_and_sample_weight_match_reference(name, batch_size, dtype):
    net, X, Y, W, b, acts = make_case([3, 6, 2], "tanh", "sigmoid", "mse", dtype, n=11)
    weight = np.random.default_rng(4).uniform(0, 3, X.shape[0]).astype(dtype)
    weight[2] = 0                                     # a sample that must not count
    kwargs, make_opt = OPTIMIZERS[name]
    expected, losses = _reference_run(W, b, acts, "mse", X, Y, make_opt, batch_size, 2,
                                      l2=0.01, sample_weight=weight)
    penalty = 0.5 * 0.01 * sum(float(np.sum(w.astype(float) ** 2)) for w in net.weights)
    history = net.train(X, Y, epochs=2, batch_size=batch_size, shuffle=False, l2=0.01,
                        sample_weight=weight, **kwargs)
    assert_close(net.get_params(), _flat(expected[-1]), dtype)
    # the reported loss adds the penalty at the epoch's starting weights
    assert_close(history.loss[0], losses[0] + penalty, dtype)


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_rprop_matches_reference_step_by_step(config, dtype):
    hidden, out, loss = config
    net, X, Y, W, b, acts = make_case([4, 7, 3], hidden, out, loss, dtype)
    opt = reference.Rprop(W + b)
    for step in range(8):                        # one full-batch step per epoch
        reference.train_epoch(W, b, acts, loss, X, Y, None, X.shape[0],
                                         optimizer=opt, l2=0.001)
        net.train(X, Y, epochs=1, optimizer="rprop", l2=0.001)
        assert_close(net.get_params(), _flat(W + b), dtype)
    state = net.optimizer_state
    assert state["optimizer"] == "rprop" and state["steps"] == 8
    assert_close(state["state"][1], _flat(opt.step_sizes), dtype)


def test_rprop_loss_is_the_full_batch_loss_before_its_step(dtype):
    net, X, Y, W, b, acts = make_case([3, 4, 2], "sigmoid", "sigmoid", "mse", dtype)
    before = net.loss(X, Y) + 0.5 * 0.01 * sum(float(np.sum(w.astype(float) ** 2))
                                               for w in net.weights)
    history = net.train(X, Y, epochs=1, optimizer="rprop", l2=0.01)
    assert_close(history.loss[0], before, dtype)
    assert history.lr == []


def test_rprop_follows_the_published_rule_on_sign_changes():
    # One parameter, gradients chosen by hand: +, +, -, +, 0 with FANN's defaults.
    p, prev, step = np.array([0.0]), np.array([0.0]), np.array([0.1])
    trace = []
    for g in [1.0, 2.0, -1.0, 3.0, 0.0]:
        reference.rprop_step([p], [np.array([g])], [prev], [step])
        trace.append((p[0], step[0], prev[0]))
    expected = [
        (-0.1, 0.1, 1.0),             # no previous gradient: step kept, w -= sign(g) 0.1
        (-0.22, 0.12, 2.0),           # same sign: step * 1.2
        (-0.22, 0.06, 0.0),           # sign flip: step * 0.5, no move, gradient forgotten
        (-0.28, 0.06, 3.0),           # after a forgotten gradient: step kept
        (-0.28, 0.06, 0.0),           # zero gradient: nothing moves
    ]
    np.testing.assert_allclose(trace, expected, rtol=1e-12)


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam", "adamw", "rprop"])
def test_apply_step_is_the_reference_rule(name, dtype):
    """The compiled rule on one step from a given gradient and state (the kernel hook)."""
    net = cbackprop.Network([3, 4, 2], dtype=dtype, seed=1)
    rng = np.random.default_rng(2)
    grad = rng.normal(size=net._params.shape).astype(dtype)
    params = [p.copy() for p in list(net.weights) + list(net.biases)]
    dW = [g.copy() for g in net._views(grad)[0]]
    db = [g.copy() for g in net._views(grad)[1]]
    l2 = 0.01
    grads = [g + l2 * w for g, w in zip(dW, params[:2])] + db
    state = np.zeros((2, net._params.size), dtype)
    if name == "rprop":
        opt_obj = cbackprop.Rprop()
        state[0] = rng.normal(size=state.shape[1])        # a previous gradient
        state[1] = rng.uniform(0.01, 1, state.shape[1])   # step sizes
        prev = [p.copy() for p in _split(net, state[0])]
        steps = [p.copy() for p in _split(net, state[1])]
        reference.rprop_step(params, grads, prev, steps)
        hyper = opt_obj.hyper(0.0, l2)
        t = 1
    else:
        kwargs = OPTIMIZERS[name][0]
        opt_obj = make_optimizer(kwargs["optimizer"], kwargs.get("momentum", 0.0),
                                 kwargs.get("nesterov", False), dtype)
        state[0] = rng.normal(size=state.shape[1]) * 0.1
        state[1] = rng.uniform(0, 0.1, state.shape[1])
        s0 = [p.copy() for p in _split(net, state[0])]
        s1 = [p.copy() for p in _split(net, state[1])]
        lr, t = kwargs["lr"], 3
        if isinstance(opt_obj, cbackprop.Adam):
            wd = getattr(opt_obj, "weight_decay", 0.0)
            reference.adam_step(params, grads, s0, s1, t, lr, opt_obj.beta1, opt_obj.beta2,
                                opt_obj.eps, [wd, wd, 0.0, 0.0])
        else:
            reference.sgd_step(params, grads, s0, lr, opt_obj.momentum, opt_obj.nesterov)
        hyper = opt_obj.hyper(lr, l2)
    train_kernels.apply_step(net._spec, net._params, state, grad, hyper, t)
    assert_close(net._params, _flat(params), dtype)


def _flat(arrays):
    """[W^(1), ..., b^(1), ...] as one vector in the network's layout: W^(1), b^(1), W^(2), ..."""
    n = len(arrays) // 2
    return np.concatenate([a.ravel() for pair in zip(arrays[:n], arrays[n:]) for a in pair])


def _split(net, flat):
    """[W0, W1, b0, b1] views of a flat vector laid out like the parameters."""
    W, b = net._views(flat)
    return list(W) + list(b)


# -- resuming: the state lives in the network --------------------------------------------------

@pytest.mark.parametrize("kwargs", [
    dict(optimizer="sgd", momentum=0.9, nesterov=True, batch_size=1),
    dict(optimizer="adam", batch_size=1),
    dict(optimizer="adamw", batch_size=3, lr_schedule="plateau"),
    dict(optimizer="sgd", momentum=0.5, batch_size=4, lr_schedule=cbackprop.StepDecay(1, 0.5)),
    dict(optimizer="rprop"),
], ids=["nesterov-online", "adam-online", "adamw-mini-plateau", "momentum-step", "rprop"])
@pytest.mark.parametrize("shuffle", [False, True])
def test_two_calls_equal_one_call_bit_for_bit(kwargs, shuffle, dtype):
    net, X, Y, *_ = make_case([3, 5, 2], "tanh", "sigmoid", "mse", dtype, n=17)
    twin = _clone(net)
    one = net.train(X, Y, epochs=4, shuffle=shuffle, **kwargs)
    parts = [twin.train(X, Y, epochs=e, shuffle=shuffle, **kwargs) for e in (1, 3)]
    np.testing.assert_array_equal(twin.get_params(), net.get_params())
    np.testing.assert_array_equal(twin.optimizer_state["state"], net.optimizer_state["state"])
    assert twin.optimizer_state["steps"] == net.optimizer_state["steps"] > 0
    assert parts[0].lr + parts[1].lr == one.lr


def _clone(net):
    return copy.deepcopy(net)


@pytest.mark.parametrize("optimizer", ["adam", "rprop", "sgd"])
def test_save_and_load_keep_the_optimizer_state(optimizer, tmp_path, dtype):
    net, X, Y, *_ = make_case([3, 5, 2], "sigmoid", "sigmoid", "mse", dtype, n=9)
    twin = _clone(net)
    extra = {} if optimizer != "sgd" else {"momentum": 0.9}
    net.train(X, Y, epochs=3, optimizer=optimizer, shuffle=False, **extra)
    twin.train(X, Y, epochs=1, optimizer=optimizer, shuffle=False, **extra)
    twin.save(tmp_path / "m.npz")
    loaded = cbackprop.load(tmp_path / "m.npz")
    assert loaded.optimizer_state["optimizer"] == optimizer
    loaded.train(X, Y, epochs=2, optimizer=optimizer, shuffle=False, **extra)
    np.testing.assert_array_equal(loaded.get_params(), net.get_params())


def test_switching_optimizer_starts_its_state_afresh():
    net, X, Y, *_ = make_case([3, 5, 2], "sigmoid", "sigmoid", "mse", np.float64, n=9)
    net.train(X, Y, epochs=2, optimizer="adam")
    assert net.optimizer_state["steps"] == 18
    fresh = _clone(net)
    fresh.reset_optimizer()
    net.train(X, Y, epochs=1, optimizer="sgd", momentum=0.9, shuffle=False)
    fresh.train(X, Y, epochs=1, optimizer="sgd", momentum=0.9, shuffle=False)
    np.testing.assert_array_equal(net.get_params(), fresh.get_params())
    assert net.optimizer_state["optimizer"] == "sgd" and net.optimizer_state["steps"] == 9


def test_assigning_weights_resets_the_optimizer():
    net, X, Y, *_ = make_case([3, 5, 2], "sigmoid", "sigmoid", "mse", np.float64, n=9)
    net.train(X, Y, epochs=1, optimizer="adam")
    net.weights[0] = net.weights[0] * 1.0
    state = net.optimizer_state
    assert state["optimizer"] is None and state["steps"] == 0 and not state["state"].any()


def test_integer_sample_weights_are_repeated_samples():
    """Full batch, weight 2 on a sample = that sample twice (lr rescaled to the new mean)."""
    net, X, Y, *_ = make_case([3, 4, 2], "tanh", "sigmoid", "mse", np.float64, n=6)
    twin = _clone(net)
    weight = np.array([2, 1, 1, 0, 1, 3])
    net.train(X, Y, epochs=3, lr=0.3, batch_size=6, sample_weight=weight, shuffle=False)
    rows = np.repeat(np.arange(6), weight)
    twin.train(X[rows], Y[rows], epochs=3, lr=0.3 * len(rows) / 6, batch_size=len(rows),
               shuffle=False)
    np.testing.assert_allclose(net.get_params(), twin.get_params(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["momentum", "nesterov", "adam", "adamw"])
def test_optimizers_match_torch_optim(name):
    """An independent oracle: torch.optim on the same network, data and batches."""
    torch = pytest.importorskip("torch")
    net, X, Y, *_ = make_case([3, 5, 2], "tanh", "softmax", "cross_entropy", np.float64, n=24)
    layers = [torch.nn.Linear(3, 5).double(), torch.nn.Linear(5, 2).double()]
    with torch.no_grad():
        for layer, W, b in zip(layers, net.weights, net.biases):
            layer.weight.copy_(torch.from_numpy(W.copy()))
            layer.bias.copy_(torch.from_numpy(b.copy()))
    model = torch.nn.Sequential(layers[0], torch.nn.Tanh(), layers[1])
    weights = [layer.weight for layer in layers]
    biases = [layer.bias for layer in layers]
    kwargs = OPTIMIZERS[name][0]
    if name in ("momentum", "nesterov"):
        opt = torch.optim.SGD(model.parameters(), lr=kwargs["lr"], momentum=0.9,
                              nesterov=name == "nesterov")
    elif name == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=kwargs["lr"])
    else:   # cbackprop decays weights only: biases go in a group without decay
        opt = torch.optim.AdamW([{"params": weights, "weight_decay": 0.1},
                                 {"params": biases, "weight_decay": 0.0}],
                                lr=kwargs["lr"], betas=(0.8, 0.99))
    Xt, labels = torch.from_numpy(X), torch.from_numpy(Y.argmax(axis=1))
    for _ in range(3):
        for start in range(0, 24, 6):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(Xt[start:start + 6]),
                                              labels[start:start + 6]).backward()
            opt.step()
    net.train(X, Y, epochs=3, batch_size=6, shuffle=False, **kwargs)
    expected = [p.detach().numpy() for p in weights + biases]
    np.testing.assert_allclose(net.get_params(), _flat(expected), rtol=1e-10, atol=1e-12)


def test_validated_settings_are_reused_only_for_equal_settings_of_the_same_type():
    # train() keeps the validation of plain settings: a later call with momentum=False
    # (a bool, refused) must not be served the one validated for momentum=0
    net = cbackprop.Network([2, 3, 1], seed=0)
    X, Y = np.zeros((4, 2)), np.zeros((4, 1))
    net.train(X, Y, momentum=0)
    with pytest.raises(TypeError, match="momentum"):
        net.train(X, Y, momentum=False)
    with pytest.raises(ValueError, match="nesterov"):
        net.train(X, Y, momentum=0, nesterov=True)
    args = (1, None, None, 0.5, True, None, "sgd", False, 0.0, "constant", False, 10, 0.0, None,
            0.0)
    a = _check_plain_settings(np.dtype(np.float64), *args)
    assert _check_plain_settings(np.dtype(np.float64), *args) is a
    assert _check_plain_settings(np.dtype(np.float32), *args) is not a
    hits = _check_plain_settings.cache_info().hits
    net.train(X, Y, momentum=0.25)
    net.train(X, Y, momentum=0.25)                 # (train() itself is served the second)
    assert _check_plain_settings.cache_info().hits == hits + 1
    opt = a[1]
    hyper = opt.hyper(0.1, 0.0)
    assert opt.hyper(0.1, 0.0) is hyper and not hyper.flags.writeable


def test_an_optimizer_object_is_validated_again_at_every_call():
    # objects can change between calls: only settings of plain types are validated once
    net = cbackprop.Network([2, 3, 1], seed=0)
    X, Y = np.zeros((4, 2)), np.zeros((4, 1))
    opt = cbackprop.SGD(momentum=0.5)
    net.train(X, Y, optimizer=opt)
    opt.momentum = 1.5
    before = net.get_params()
    with pytest.raises(ValueError, match="momentum"):
        net.train(X, Y, optimizer=opt)
    np.testing.assert_array_equal(net.get_params(), before)
