"""Data and model files for the command line (``cbackprop train``, ``predict``, ``evaluate``).

A model written by ``cbackprop train`` is the Network's own ``.npz`` (``cbackprop.load``
reads it) with three more arrays that describe the data around it:

- ``cli_metadata``: JSON with ``task`` (``"classification"`` or ``"regression"``), the
  ``features`` (column names, in input order), the ``target`` column, the class ``labels``
  (output ``k`` is label ``k``) or the regression target's ``target_mean``/``target_std``;
- ``cli_feature_mean``, ``cli_feature_std``: the standardisation fitted on the training rows,
  ``x_scaled = (x - mean) / std``.

``Network.load`` reads only the keys it knows, so the extra arrays travel with the model
without a second file. The file is written atomically, as ``Network.save`` writes it.
"""

import csv
import json
import math
import os
import tempfile
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .datasets import load_csv
from .network import _HeaderCheckedNpz, _write_atomically, load

TASKS = ("classification", "regression")
METADATA_FORMAT = 1


class CommandError(Exception):
    """A mistake in the user's input or files: printed as one line, exit status 2."""


@dataclass
class Table:
    """Rows read from a CSV or .npz file."""

    X: np.ndarray                 # (n, n_features) float64
    y: np.ndarray                 # (n,) or None
    feature_names: list
    target: str                   # None when no target was read
    path: str


def read_table(path, target=None, features=None, drop=(), need_target=False):
    """Read DATA for a command: CSV (header row) or .npz (arrays ``X`` and ``y``).

    ``features`` selects and orders the feature columns (by name; for an .npz without
    ``feature_names``, by position ``x1, x2, ...``); otherwise every column but the target
    and those in ``drop``.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CommandError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CommandError(f"{path} is a folder, not a data file")
    if path.lower().endswith(".npz"):
        return _read_npz(path, target, features, drop, need_target)
    if need_target and target is None:
        header = _csv_header(path)
        raise CommandError(f"--target is required for CSV data: name the column to "
                           f"predict, one of {', '.join(map(repr, header[:12]))}")
    try:
        if features is None and drop:
            header = _csv_header(path)
            unknown = [c for c in drop if c not in header]
            if unknown:
                raise CommandError(f"--drop names {', '.join(map(repr, unknown))}, not a "
                                   f"column of {path}")
            features = [c for c in header if c != target and c not in drop]
        X, y, names = load_csv(path, target=target, features=features)
    except (ValueError, OSError) as exc:
        raise CommandError(_message(exc, path)) from None
    return Table(X, y, names, target, path)


def _csv_header(path):
    """The column names on the first non-blank line of a CSV file (the rest unread)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            for row in csv.reader(f):
                if any(field.strip() for field in row):
                    return [field.strip() for field in row]
    except (OSError, ValueError, csv.Error) as exc:
        raise CommandError(_message(exc, path)) from None
    raise CommandError(f"{path} is empty: a CSV file needs a header row naming the columns")


def _message(exc, path):
    """One line for an exception from reading ``path``."""
    if isinstance(exc, OSError):
        return f"cannot read {path}: {exc.strerror or exc}"
    return " ".join(str(exc).split("\n"))


def _read_npz(path, target, features, drop, need_target):
    key = "y" if target is None else target
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise CommandError(f"{path} holds a single array (.npy); give an .npz with "
                               f"arrays X and y (numpy.savez(path, X=X, y=y))")
        with data:
            files = list(data.files)
            if "X" not in files:
                raise CommandError(f"{path} has no array 'X' (it has "
                                   f"{', '.join(map(repr, files)) or 'none'})")
            X = data["X"]
            y = data[key] if key in files else None
            names = data["feature_names"] if "feature_names" in files else None
    except CommandError:
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise CommandError(f"{path} is not a readable .npz file of arrays "
                           f"({' '.join(str(exc).split())})") from None
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0 or X.dtype.kind not in "biuf":
        raise CommandError(f"{path}: X must be a non-empty 2-D array of numbers, got "
                           f"{X.dtype} of shape {X.shape}")
    X = X.astype(np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise CommandError(f"{path}: X[{row}, {column}] is {X[row, column]}, not a finite "
                           f"number")
    if names is None and features is not None:
        if len(features) != X.shape[1]:
            raise CommandError(f"{path}: X has {X.shape[1]} columns and no feature_names; "
                               f"the model takes {len(features)} ({', '.join(features)})")
        names = list(features)       # unnamed columns, as many as asked for: by position
    elif names is None:
        names = [f"x{k + 1}" for k in range(X.shape[1])]
    elif names.shape != (X.shape[1],) or names.dtype.kind != "U":
        raise CommandError(f"{path}: feature_names must be {X.shape[1]} strings, one per "
                           f"column of X")
    else:
        names = [str(n) for n in names]
    if need_target and y is None:
        raise CommandError(f"{path} has no array {key!r} of targets")
    if y is not None:
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise CommandError(f"{path}: {key} must have shape ({X.shape[0]},), one target "
                               f"per row of X, got {y.shape}")
        if y.dtype.kind not in "biufU":
            raise CommandError(f"{path}: {key} must hold numbers or text labels, got "
                               f"{y.dtype}")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise CommandError(f"{path}: {key}[{int(np.argmax(~np.isfinite(y)))}] is not a "
                               f"finite number")
    if features is None and drop:
        unknown = [c for c in drop if c not in names]
        if unknown:
            raise CommandError(f"--drop names {', '.join(map(repr, unknown))}, not a "
                               f"feature of {path} (its features are {', '.join(names)})")
        features = [c for c in names if c not in drop]
    if features is not None:
        missing = [f for f in features if f not in names]
        if missing:
            raise CommandError(f"{path} lacks the feature{'s' * (len(missing) > 1)} "
                               f"{', '.join(map(repr, missing))} (its features are "
                               f"{', '.join(names)})")
        X = X[:, [names.index(f) for f in features]]
        names = list(features)
    return Table(np.ascontiguousarray(X), y, names, key if y is not None else None, path)


# -- what the model knows about its data ------------------------------------------------------

@dataclass
class DataInfo:
    """Everything besides the network that predictions need: scaling, names and labels."""

    task: str
    feature_names: list
    target: str
    feature_mean: np.ndarray
    feature_std: np.ndarray
    labels: list = field(default_factory=list)       # classification: output k is labels[k]
    target_mean: float = 0.0                         # regression: y = output * std + mean
    target_std: float = 1.0

    @classmethod
    def fit(cls, task, table, train_rows):
        """Standardisation fitted on ``table.X[train_rows]``; labels from every row."""
        X = table.X[train_rows]
        with np.errstate(over="ignore", invalid="ignore"):
            mean, std = X.mean(axis=0), X.std(axis=0)
        for values, name in ((mean, "mean"), (std, "spread")):
            if not np.isfinite(values).all():
                column = table.feature_names[int(np.argmax(~np.isfinite(values)))]
                raise CommandError(f"the {name} of column {column!r} overflows float64: "
                                   f"rescale it (its values are too large to standardise)")
        std[std == 0] = 1.0                          # a constant column stays constant: 0
        info = cls(task, list(table.feature_names), table.target, mean, std)
        if task == "classification":
            info.labels = np.unique(table.y).tolist()
        else:
            y = table.y[train_rows].astype(np.float64)
            with np.errstate(over="ignore", invalid="ignore"):
                info.target_mean, info.target_std = float(y.mean()), float(y.std())
            if not (math.isfinite(info.target_mean) and math.isfinite(info.target_std)):
                raise CommandError(f"the values of {table.target!r} are too large to "
                                   f"standardise in float64: rescale them")
            info.target_std = info.target_std or 1.0
        return info

    @property
    def n_outputs(self):
        return len(self.labels) if self.task == "classification" else 1

    def scale(self, X):
        """Inputs as the network saw them in training: ``(X - mean) / std``."""
        return (X - self.feature_mean) / self.feature_std

    def targets(self, y):
        """What the network is trained on: label indices, or standardised values."""
        if self.task == "classification":
            return label_indices(self.labels, y)
        return (np.asarray(y, dtype=np.float64) - self.target_mean) / self.target_std

    def decode(self, outputs):
        """Predicted labels (classification) or values (regression) from network outputs."""
        if self.task == "classification":
            return np.array(self.labels, dtype=object)[np.argmax(outputs, axis=1)]
        return outputs[:, 0].astype(np.float64) * self.target_std + self.target_mean

    def to_arrays(self):
        meta = {"format": METADATA_FORMAT, "task": self.task,
                "features": self.feature_names, "target": self.target}
        if self.task == "classification":
            meta["labels"] = self.labels
        else:
            meta["target_mean"], meta["target_std"] = self.target_mean, self.target_std
        return {"cli_metadata": np.array(json.dumps(meta), dtype=str),
                "cli_feature_mean": np.asarray(self.feature_mean, dtype=np.float64),
                "cli_feature_std": np.asarray(self.feature_std, dtype=np.float64)}


def label_key(value):
    """A label's identity across files: ``3``, ``3.0`` and ``"3"`` are the same label."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        value = float(value) if not isinstance(value, (int, np.integer)) else int(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value)
    return str(value)


def label_indices(labels, y):
    """Index of each value of ``y`` in ``labels``, -1 for a label not among them."""
    index = {label_key(v): k for k, v in enumerate(labels)}
    return np.array([index.get(label_key(v), -1) for v in np.asarray(y).tolist()],
                    dtype=np.intp)


def choose_task(y, task, target):
    """The task for targets ``y`` ("auto": labels when integer or text, else regression)."""
    if task == "regression":
        if y.dtype.kind not in "biuf":
            example = next(v for v in y.tolist() if not is_number(v))
            raise CommandError(f"--task regression needs numbers in {target!r}, which holds "
                               f"text such as {example!r}")
        return "regression"
    if task == "auto" and y.dtype.kind == "f":
        return "regression"
    labels = np.unique(y)
    if len(labels) < 2:
        raise CommandError(f"the target {target!r} has the same label ({labels.tolist()[0]!r}) in "
                           f"every row: there is nothing to learn")
    if task == "auto" and len(labels) > max(20, len(y) // 2):
        hint = ""
        if y.dtype.kind == "U":
            text = [v for v in y.tolist() if not is_number(v)]
            if len(text) < len(y) / 2:
                hint = f" - it is mostly numbers, but holds {text[0]!r}"
        raise CommandError(
            f"the target {target!r} has {len(labels)} different labels in {len(y)} rows, "
            f"more like values than classes{hint}; pass --task classification to train a "
            f"classifier anyway")
    return "classification"


def is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


# -- model files ---------------------------------------------------------------------------

def save_model(path, net, info):
    """Write ``net`` (exactly as ``net.save`` would) plus ``info``'s arrays to one .npz."""
    path = os.fspath(path)
    with tempfile.TemporaryDirectory(prefix="cbackprop-") as folder:
        plain = os.path.join(folder, "network.npz")
        net.save(plain)
        with np.load(plain, allow_pickle=False) as saved:
            arrays = {key: saved[key] for key in saved.files}
    extra = info.to_arrays()
    clash = sorted(set(arrays) & set(extra))
    if clash:                        # a future Network.save using our names: fail loudly
        raise RuntimeError(f"Network.save now writes {clash}; rename the CLI's metadata keys")
    arrays.update(extra)
    _write_atomically(path, lambda f: np.savez(f, **arrays))


def load_model(path):
    """(network, DataInfo) from a file written by :func:`save_model`; CommandError if not."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CommandError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CommandError(f"{path} is a folder, not a model file")
    if not zipfile.is_zipfile(path):
        raise CommandError(f"{path} is not a cbackprop model (a model is an .npz file "
                           f"written by 'cbackprop train')")
    try:
        net = load(path)
    except ValueError as exc:
        raise CommandError(" ".join(str(exc).split())) from None
    with np.load(path, allow_pickle=False) as data:
        if "cli_metadata" not in data.files:
            raise CommandError(
                f"{path} is a network saved by Network.save, without the description of "
                f"its data (column names, scaling, labels) that `cbackprop train` stores; "
                f"predict and evaluate need a model written by `cbackprop train`")
        try:
            # headers first: a file claiming a huge shape is refused before allocating
            checked, n_in = _HeaderCheckedNpz(data, path), net.sizes[0]
            meta = json.loads(str(checked.read("cli_metadata", 1 << 24)[()]))
            mean = checked.read("cli_feature_mean", 8 * n_in)
            std = checked.read("cli_feature_std", 8 * n_in)
        except (KeyError, ValueError, TypeError, OSError, zipfile.BadZipFile) as exc:
            raise CommandError(f"{path}: unreadable data description ({exc})") from None
    try:
        return net, _check_info(meta, mean, std, net)
    except (KeyError, TypeError, ValueError) as exc:
        raise CommandError(f"{path}: invalid data description: {exc}") from None


def _check_info(meta, mean, std, net):
    if not isinstance(meta, dict):
        raise ValueError("not a JSON object")
    if meta.get("format") != METADATA_FORMAT:
        raise ValueError(f"format {meta.get('format')!r}; this cbackprop reads format "
                         f"{METADATA_FORMAT} (a newer file needs a newer cbackprop)")
    task, names, target = meta["task"], meta["features"], meta["target"]
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}")
    n_in = net.sizes[0]
    if not (isinstance(names, list) and len(names) == n_in and
            all(isinstance(n, str) for n in names)):
        raise ValueError(f"features must be {n_in} column names")
    if not isinstance(target, str):
        raise ValueError("target must be a column name")
    for name, arr in (("cli_feature_mean", mean), ("cli_feature_std", std)):
        if arr.shape != (n_in,) or arr.dtype != np.float64 or not np.isfinite(arr).all():
            raise ValueError(f"{name} must be {n_in} finite float64 numbers")
    if not (std > 0).all():
        raise ValueError("cli_feature_std must be > 0")
    info = DataInfo(task, names, target, mean, std)
    if task == "classification":
        labels = meta["labels"]
        if not (isinstance(labels, list) and len(labels) == net.sizes[-1] >= 2 and
                all(isinstance(v, (str, int, float, bool)) for v in labels)):
            raise ValueError(f"labels must be {net.sizes[-1]} labels, one per output")
        info.labels = labels
    else:
        info.target_mean, info.target_std = float(meta["target_mean"]), \
            float(meta["target_std"])
        if net.sizes[-1] != 1 or not (math.isfinite(info.target_mean) and
                                      math.isfinite(info.target_std) and info.target_std > 0):
            raise ValueError("a regression model needs one output and a finite target "
                             "scaling")
    return info


# -- results ---------------------------------------------------------------------------------

def format_value(value, dtype):
    """A predicted number printed with the digits its dtype holds, no more."""
    return str(np.float32(value)) if np.dtype(dtype) == np.float32 else repr(float(value))


def regression_metrics(y, prediction):
    """RMSE, MAE and R^2 (None when the true values are all equal)."""
    y = np.asarray(y, dtype=np.float64)
    error = prediction - y
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1 - float(np.sum(error ** 2)) / ss_tot if ss_tot > 0 else None
    return {"rmse": float(np.sqrt(np.mean(error ** 2))),
            "mae": float(np.mean(np.abs(error))), "r2": r2}


def confusion(labels, y, predicted_index):
    """(row labels, matrix): rows the true labels (the model's, then unknown ones), columns
    the model's labels."""
    true_index = label_indices(labels, y)
    rows = list(labels)
    unknown = {}
    for value, k in zip(np.asarray(y).tolist(), true_index):
        if k < 0:
            unknown.setdefault(label_key(value), value)
    rows += list(unknown.values())
    row_of = {label_key(v): r for r, v in enumerate(rows)}
    matrix = np.zeros((len(rows), len(labels)), dtype=np.int64)
    for value, p in zip(np.asarray(y).tolist(), predicted_index):
        matrix[row_of[label_key(value)], p] += 1
    return rows, matrix
