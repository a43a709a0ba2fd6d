"""save / load: a plain .npz round trip that never unpickles."""

import pickle

import numpy as np
import pytest

import cbackprop
from conftest import make_case


def test_round_trip_predicts_and_continues_training_identically(tmp_path, dtype):
    net, X, Y, *_ = make_case([3, 5, 2], "relu", "softmax", "cross_entropy", dtype)
    net.train(X, Y, epochs=2, batch_size=4, momentum=0.9, shuffle=False)
    path = tmp_path / "model.npz"
    net.save(path)
    loaded = cbackprop.load(path)
    assert loaded.sizes == net.sizes and loaded.activations == net.activations
    assert loaded.loss_name == net.loss_name and loaded.dtype == net.dtype
    np.testing.assert_array_equal(loaded.forward(X), net.forward(X))
    net.train(X, Y, epochs=1, batch_size=4, momentum=0.9, shuffle=False)
    loaded.train(X, Y, epochs=1, batch_size=4, momentum=0.9, shuffle=False)
    np.testing.assert_array_equal(loaded.get_params(), net.get_params())


def test_load_refuses_pickles(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, format_version=np.array(1), sizes=np.array([1, 1]),
             activations=np.array(["sigmoid"]), loss=np.array("mse"),
             dtype=np.array("float64"), params=np.array([{"x": 1}], dtype=object),
             velocity=np.zeros(2))
    with pytest.raises(ValueError, match="pickle"):
        cbackprop.load(path)


def test_round_trip_continues_shuffled_training_identically(tmp_path):
    net, X, Y, *_ = make_case([3, 5, 2], "tanh", "sigmoid", "mse", np.float64)
    net.train(X, Y, epochs=2)
    net.save(tmp_path / "m.npz")
    loaded = cbackprop.load(tmp_path / "m.npz")
    net.train(X, Y, epochs=2)
    loaded.train(X, Y, epochs=2)
    np.testing.assert_array_equal(loaded.get_params(), net.get_params())


@pytest.mark.parametrize("damage", ["truncated", "not a zip", "missing key", "version",
                                    "wrong shape", "nan", "float sizes", "bool sizes",
                                    "huge sizes", "0-d activations", "big-endian params",
                                    "2-d version", "bad rng state", "float32 params",
                                    "wrong state shape", "training not json",
                                    "unknown optimizer", "negative steps"])
def test_load_rejects_bad_files(tmp_path, damage):
    net = cbackprop.Network([2, 3, 1], seed=0)
    path = tmp_path / "model.npz"
    net.save(path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "not a zip":
        path.write_bytes(pickle.dumps({"a": 1}))
    else:
        if damage == "missing key":
            del arrays["params"]
        elif damage == "version":
            arrays["format_version"] = np.array(99)
        elif damage == "wrong shape":
            arrays["params"] = np.zeros(5)
        elif damage == "nan":
            arrays["params"] = np.full_like(arrays["params"], np.nan)
        elif damage == "float sizes":
            arrays["sizes"] = np.array([2.9, 3.0, 1.7])
        elif damage == "bool sizes":
            arrays["sizes"] = np.array([True, True, True])
        elif damage == "huge sizes":
            arrays["sizes"] = np.array([100_000, 100_000, 1])
        elif damage == "0-d activations":
            arrays["activations"] = np.array("sigmoid")
        elif damage == "big-endian params":
            arrays["params"] = arrays["params"].astype(">f8")
        elif damage == "2-d version":
            arrays["format_version"] = np.array([1, 1])
        elif damage == "bad rng state":
            arrays["rng_state"] = np.array('{"bit_generator": "nonsense"}')
        elif damage == "float32 params":
            arrays["params"] = arrays["params"].astype(np.float32)
        elif damage == "wrong state shape":
            arrays["optimizer_state"] = np.zeros((3, arrays["params"].size))
        elif damage == "training not json":
            arrays["training"] = np.array("{steps: 1")
        elif damage == "unknown optimizer":
            arrays["training"] = np.array('{"optimizer": "lbfgs", "steps": 1, "epochs": 1}')
        elif damage == "negative steps":
            arrays["training"] = np.array('{"optimizer": "adam", "steps": -1, "epochs": 0}')
        np.savez(path, **arrays)
    with pytest.raises(ValueError, match="model"):
        cbackprop.load(path)


def test_a_newer_format_is_refused_with_a_way_forward(tmp_path):
    net = cbackprop.Network([2, 3, 1], seed=0)
    net.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as f:
        arrays = {k: f[k] for k in f.files}
    arrays["format_version"] = np.array(3)
    np.savez(tmp_path / "m.npz", **arrays)
    with pytest.raises(ValueError, match="version 3.*newer cbackprop"):
        cbackprop.load(tmp_path / "m.npz")


def test_a_version_1_file_loads_with_its_momentum(tmp_path):
    """Files written by cbackprop 0.1 (format 1: momentum velocities as "velocity")."""
    net = cbackprop.Network([2, 3, 1], seed=0)
    X, y = np.random.default_rng(0).uniform(size=(8, 2)), np.arange(8) % 2
    net.train(X, y, epochs=2, momentum=0.9, shuffle=False)
    velocity = net.optimizer_state["state"][0]
    np.savez(tmp_path / "v1.npz", format_version=np.array(1), sizes=np.array([2, 3, 1]),
             activations=np.array(["sigmoid", "sigmoid"]), loss=np.array("mse"),
             dtype=np.array("float64"), params=net.get_params(), velocity=velocity)
    old = cbackprop.load(tmp_path / "v1.npz")
    assert old.optimizer_state["optimizer"] == "sgd"
    old.train(X, y, epochs=1, momentum=0.9, shuffle=False)
    net.train(X, y, epochs=1, momentum=0.9, shuffle=False)
    np.testing.assert_array_equal(old.get_params(), net.get_params())
