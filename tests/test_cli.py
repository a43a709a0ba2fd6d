"""The command line (demo, train, predict, evaluate, bench) and cbackprop.datasets.

Every command runs in a fresh interpreter, started from a folder outside the source tree
with the cbackprop this session imported on PYTHONPATH (see test_dispatch.py). The runs that
do not depend on each other start together, so the file stays fast.
"""

import csv
import io
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import cbackprop
from cbackprop import datasets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

try:
    import matplotlib  # noqa: F401
    HAVE_MATPLOTLIB = True
except ImportError:
    HAVE_MATPLOTLIB = False

needs_matplotlib = pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib not installed")


# -- running commands ---------------------------------------------------------------------------

def _env(extra_path=None):
    env = dict(os.environ)
    where = os.path.dirname(os.path.dirname(cbackprop.__file__))
    paths = ([str(extra_path)] if extra_path else []) + [where, env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


# Runs many command lines in one interpreter, each through main() as the console script
# calls it: exit status, stdout and stderr per run, and any traceback an exception prints.
BATCH = r"""
import contextlib, io, json, sys, traceback
from cbackprop.__main__ import main
results = {}
for name, args in json.loads(sys.argv[1]).items():
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(args)
        except SystemExit as exc:
            status = exc.code
        except BaseException:
            traceback.print_exc()
            status = None
    results[name] = [status, out.getvalue(), err.getvalue()]
print(json.dumps(results))
"""


class Runs:
    """Start commands at once; collect each one's (status, stdout, stderr) when asked."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.processes, self.results, self.batches = {}, {}, {}

    def start(self, name, args, extra_path=None):
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "cbackprop"] + [str(a) for a in args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(extra_path),
            cwd=self.workdir)

    def start_batch(self, name, runs):
        """Run ``runs`` ({name: args}) one after another in one fresh interpreter (much
        cheaper than one each: most of a run's time is importing NumPy and SciPy)."""
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-c", BATCH, json.dumps(runs)], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=_env(), cwd=self.workdir)
        self.batches.update(dict.fromkeys(runs, name))

    def __call__(self, name):
        if name in self.batches:
            status, out, err = self(self.batches[name])
            assert status == 0 and err == "", err
            return tuple(json.loads(out)[name])
        if name not in self.results:
            out, err = self.processes[name].communicate(timeout=240)
            self.results[name] = self.processes[name].returncode, out, err
        return self.results[name]

    def close(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.communicate()


# -- data the tests write ---------------------------------------------------------------------

COLOURS = ["red", "green, dark", "blue"]         # text labels, one with a comma


def blobs(n=180, seed=0):
    """Three well-separated clusters in 3-D, labelled with text; plus an id column."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0], [4, 4, 0], [0, 4, 4]], dtype=float)
    k = np.arange(n) % 3
    X = centres[k] + rng.normal(0, 0.6, (n, 3))
    return X, np.array(COLOURS)[k]


def write_blobs(path, n=180, seed=0, columns=("width", "height", "depth"), target="colour"):
    X, labels = blobs(n, seed)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", *columns, target])
        for k in range(n):
            writer.writerow([1000 + k, *[repr(float(v)) for v in X[k]], labels[k]])
            if k == 5:
                f.write("\n")                   # a blank line is skipped
    return X, labels


def write_text(path, text):
    with open(path, "w", newline="") as f:
        f.write(text)


FAKE_MATPLOTLIB = "raise ImportError('No module named matplotlib (hidden by the test)')\n"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """The data files and a plain Network.save model the runs use."""
    d = tmp_path_factory.mktemp("cli")
    write_blobs(d / "colours.csv")
    write_blobs(d / "colours-test.csv", n=60, seed=1)
    X, labels = blobs(60, seed=1)
    # the test rows again, columns shuffled, no target, an extra text column
    with open(d / "colours-unlabelled.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["depth", "note", "width", "height"])
        for k in range(len(X)):
            writer.writerow([X[k, 2], "no label here", X[k, 0], X[k, 1]])
    X, y = datasets.sine(300, noise=0.05, seed=3)
    datasets.save_csv(d / "sine.csv", X, y, ["x"], "sin_x")
    X, y = datasets.two_spirals(noise=0.1, seed=0)
    np.savez(d / "spirals.npz", X=X, y=y)
    cbackprop.Network([3, 4, 3], seed=0).save(d / "plain.npz")
    write_text(d / "ragged.csv", "a,b,c\n1,2,x\n3,4\n")
    write_text(d / "unclosed.csv", 'a,b,c\n1,2,x\n3,4,"y\n5,6,z\n')
    write_text(d / "gap.csv", "a,b,c\n1,2,x\n3,NA,y\n5,6,x\n")
    write_text(d / "words.csv", "a,b,c\n1,2,x\n3,tall,y\n5,6,x\n")
    write_text(d / "one-label.csv", "a,b,c\n1,2,x\n3,4,x\n5,6,x\n")
    with open(d / "colours-purple.csv", "w") as f:       # one label the model never saw
        f.write("colour,width,height,depth,id\n" + "purple,0,4,4,1\n" + "red,0,0,0,2\n" * 3)
    X, _ = blobs(60, seed=1)
    np.savez(d / "colours-test.npz", X=X)                  # no names: columns by position
    rng = np.random.default_rng(7)                         # labels unrelated to the features
    datasets.save_csv(d / "noise.csv", rng.normal(size=(200, 5)),
                      rng.choice(["heads", "tails"], 200), target="coin")
    write_text(d / "huge.csv", "a,b,c\n1e300,1,x\n-1e300,2,y\n1e300,3,x\n")
    write_text(d / "far.csv", "x1,x2\n1,2\n1e308,-1e308\n")
    write_text(d / "empty.csv", "")
    write_text(d / "sine-text.csv", "x,label\n0.5,red\n1.5,blue\n")
    write_text(d / "notes.txt", "this is not a model\n")
    np.savez(d / "no-x.npz", features=np.ones((3, 2)))
    np.save(d / "one-array.npy", np.ones(3))
    os.rename(d / "one-array.npy", d / "one-array.npz")      # a .npy named .npz
    np.savez(d / "three-columns.npz", X=np.ones((4, 3)))
    (d / "nomatplotlib").mkdir()
    write_text(d / "nomatplotlib" / "matplotlib.py", FAKE_MATPLOTLIB)
    return d


def start_errors(r, work, first_wave):
    """Error runs: a few in processes of their own, the rest in one batch per wave."""
    batch = {}
    for name, args in ERRORS.items():
        if name.startswith("model:") == first_wave:
            continue
        if name in OWN_PROCESS:
            r.start(name, args, extra_path=work / "nomatplotlib" if "nomatplotlib" in name
                    else None)
        else:
            batch[name] = args
    r.start_batch("errors-1" if first_wave else "errors-2", batch)


@pytest.fixture(scope="module")
def runs(work):
    """First wave: everything that needs no model trained by another run."""
    r = Runs(work)
    r.start("demo-default", ["demo"])                        # the slowest: first
    r.start("train-colours", ["train", "colours.csv", "--target", "colour", "--drop", "id",
                              "--layers", "8", "--epochs", "60", "--out", "colours.npz"])
    r.start("train-sine", ["train", "sine.csv", "--target", "sin_x", "--layers", "16,16",
                           "--epochs", "150", "--lr", "0.01", "--out", "sine.npz"])
    r.start("demo-short", ["demo", "--epochs", "100"])
    r.start("bench", ["bench", "--seconds", "0.3"])
    r.start("train-npz", ["train", "spirals.npz", "--layers", "8", "--epochs", "5",
                          "--activation", "relu",
                          "--validation-split", "0", "--optimizer", "rprop", "--dtype",
                          "float32", "--out", "spirals-model.npz"])
    if HAVE_MATPLOTLIB:
        r.start("demo-plot", ["demo", "--epochs", "50", "--plot", "demo.png"])
        r.start("train-plot", ["train", "sine.csv", "--target", "sin_x", "--epochs", "5",
                               "--out", "sine-plot.npz", "--plot", "loss.png"])
    start_errors(r, work, first_wave=True)
    r.start_batch("more-1", {"diverges": ["train", "sine.csv", "--target", "sin_x",
                                          "--optimizer", "sgd", "--lr", "1e6",
                                          "--out", "diverged.npz"]})
    for command in HELP:
        r.start(f"help-{command}", [command, "--help"] if command else ["--help"])
    yield r
    r.close()


@pytest.fixture(scope="module")
def modelled(runs):
    """Second wave: predict and evaluate with the models the first wave trained."""
    for name in ("train-colours", "train-sine", "train-npz"):
        status, out, err = runs(name)
        assert status == 0, err
    r = Runs(runs.workdir)
    r.start("predict-stdout", ["predict", "colours.npz", "colours-test.csv"])
    r.start("predict-unlabelled", ["predict", "colours.npz", "colours-unlabelled.csv",
                                   "--probabilities", "--out", "probabilities.csv"])
    r.start("evaluate-colours", ["evaluate", "colours.npz", "colours-test.csv"])
    r.start("evaluate-sine", ["evaluate", "sine.npz", "sine.csv"])
    r.start("predict-sine", ["predict", "sine.npz", "sine.csv"])
    start_errors(r, runs.workdir, first_wave=False)
    r.start_batch("more-2", {
        "evaluate-purple": ["evaluate", "colours.npz", "colours-purple.csv"],
        "predict-npz": ["predict", "colours.npz", "colours-test.npz"],
        "train-patience": ["train", "noise.csv", "--target", "coin", "--epochs", "300",
                           "--patience", "3", "--lr", "0.01", "--out", "noise.npz"]})
    yield r
    r.close()


# -- demo ---------------------------------------------------------------------------------------

def spiral_accuracy(out):
    match = re.search(r"final: loss [\d.]+, accuracy ([\d.]+)% \((\d+) of 194 points\)", out)
    assert match, out
    return float(match.group(1)) / 100


def test_demo_default_reaches_95_percent_on_two_spirals(runs):
    status, out, err = runs("demo-default")
    assert status == 0, err
    assert err == ""
    assert spiral_accuracy(out) >= 0.95
    # one progress line per tenth of the run, not one per epoch
    assert len(re.findall(r"^   epoch +\d+/6000 ", out, re.M)) == 10


def test_demo_teaches_and_times_both_engines(runs):
    status, out, err = runs("demo-short")
    assert status == 0, err
    assert err == ""
    assert "XOR" in out and "Lang and Witbrock 1988" in out
    assert "outputs for (0,0) (0,1) (1,0) (1,1)" in out
    assert "accuracy 100%" in out                       # XOR is always learned
    assert re.findall(r"^   epoch +\d+/100 ", out, re.M) == \
        [f"   epoch {e:3d}/100 " for e in range(10, 101, 10)]
    spiral_accuracy(out)
    match = re.search(r"compiled ([\d,]+) samples/s,\s+NumPy reference ([\d,]+) samples/s", out)
    assert match, out
    compiled, plain = (int(g.replace(",", "")) for g in match.groups())
    assert compiled > plain > 0
    assert f"Kernels: {cbackprop.kernel_level};" in out


@needs_matplotlib
def test_demo_plot_writes_a_png(runs, work):
    status, out, err = runs("demo-plot")
    assert status == 0, err
    assert "plot: demo.png" in out
    assert (work / "demo.png").read_bytes()[:8] == PNG_MAGIC


def test_the_console_script_runs_main(work):
    with open(os.path.join(ROOT, "pyproject.toml")) as f:      # (tomllib is Python 3.11+)
        target = re.search(r'^cbackprop = "([\w.:]+)"$', f.read(), re.M).group(1)
    module, function = target.split(":")
    result = subprocess.run(
        [sys.executable, "-c", f"import sys; from {module} import {function}; "
                               f"sys.exit({function}(['demo', '--help']))"],
        capture_output=True, text=True, env=_env(), cwd=work)
    assert result.returncode == 0, result.stderr
    assert "usage: cbackprop demo" in result.stdout


# -- train, predict, evaluate -----------------------------------------------------------------

def progress_lines(out):
    return re.findall(r"^  epoch +\d+/\d+ .*$", out, re.M)


def test_train_classifies_text_labels_and_saves_a_loadable_model(runs, work):
    status, out, err = runs("train-colours")
    assert status == 0, err
    assert err == ""
    assert "colours.csv: 180 rows, 3 features; target 'colour': classification, 3 labels" in out
    assert "'blue' 60, 'green, dark' 60, 'red' 60" in out
    assert "network 3-8-3: tanh hidden layer, softmax output, cross_entropy loss" in out
    assert "144 rows, 36 held out for validation" in out
    assert len(progress_lines(out)) == 10
    assert "val_accuracy" in progress_lines(out)[-1]
    accuracy = re.search(r"^validation \(36 rows\): loss [\d.]+  accuracy ([\d.]+)%", out, re.M)
    assert accuracy and float(accuracy.group(1)) >= 90, out
    # the Network part loads with cbackprop.load, format version 2, with every key save writes
    net = cbackprop.load(work / "colours.npz")
    assert net.sizes == (3, 8, 3) and net.activations == ("tanh", "softmax")
    with np.load(work / "colours.npz", allow_pickle=False) as data:
        assert int(data["format_version"]) == 2
        net.save(work / "resaved.npz")
        with np.load(work / "resaved.npz") as plain:
            assert set(data.files) == set(plain.files) | {
                "cli_metadata", "cli_feature_mean", "cli_feature_std"}
        meta = json.loads(str(data["cli_metadata"]))
        mean, std = data["cli_feature_mean"], data["cli_feature_std"]
    assert meta["task"] == "classification" and meta["target"] == "colour"
    assert meta["features"] == ["width", "height", "depth"]
    assert meta["labels"] == sorted(COLOURS)
    # standardisation fitted on the training rows only (36 of 180 held out): close to, but
    # not exactly, the statistics of all rows
    X, _ = blobs(180, 0)
    np.testing.assert_allclose(mean, X.mean(axis=0), atol=0.5)
    assert not np.allclose(mean, X.mean(axis=0), rtol=1e-12, atol=0)
    assert (std > 0).all()


def test_train_regression_reports_rmse_in_the_targets_units(runs):
    status, out, err = runs("train-sine")
    assert status == 0, err
    assert "target 'sin_x': regression" in out
    assert "linear output, mse loss" in out and "targets too" in out
    assert "val_rmse" in progress_lines(out)[-1]
    rmse = float(re.search(r"^validation \(60 rows\): loss [\d.]+  RMSE ([\d.e-]+)", out,
                           re.M).group(1))
    assert rmse < 0.2


def test_train_reads_npz_with_rprop_in_float32(runs, work):
    status, out, err = runs("train-npz")
    assert status == 0, err
    assert "spirals.npz: 194 rows, 2 features; target 'y': classification, 2 labels" in out
    assert "rprop, full batch" in out
    assert len(progress_lines(out)) == 5
    assert cbackprop.load(work / "spirals-model.npz").dtype == np.float32


@needs_matplotlib
def test_train_plot_writes_a_png(runs, work):
    status, out, err = runs("train-plot")
    assert status == 0, err
    assert (work / "loss.png").read_bytes()[:8] == PNG_MAGIC


def read_csv_text(text):
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


def test_predict_writes_labels_as_csv_to_stdout(modelled, work):
    status, out, err = modelled("predict-stdout")
    assert status == 0, err
    assert err == ""
    header, rows = read_csv_text(out)
    assert header == ["colour"]
    predicted = [r[0] for r in rows]
    _, truth = blobs(60, seed=1)
    assert len(predicted) == 60 and set(predicted) <= set(COLOURS)
    assert np.mean(np.array(predicted) == truth) >= 0.9
    # the same as the network and the stored standardisation give in this process
    net = cbackprop.load(work / "colours.npz")
    with np.load(work / "colours.npz") as data:
        mean, std = data["cli_feature_mean"], data["cli_feature_std"]
    X, _ = blobs(60, seed=1)
    expected = np.array(sorted(COLOURS))[net.forward((X - mean) / std).argmax(axis=1)]
    assert predicted == expected.tolist()


def test_predict_takes_columns_by_name_and_writes_probabilities(modelled, work):
    status, out, err = modelled("predict-unlabelled")
    assert status == 0, err
    assert out == "wrote 60 predictions of 'colour' to probabilities.csv\n"
    with open(work / "probabilities.csv", newline="") as f:
        header, rows = read_csv_text(f.read())
    assert header == ["colour"] + [f"p_{c}" for c in sorted(COLOURS)]
    p = np.array([[float(v) for v in r[1:]] for r in rows])
    np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-5)
    assert [r[0] for r in rows] == [sorted(COLOURS)[k] for k in p.argmax(axis=1)]
    # the same rows, reordered columns and no target: the same labels as predict-stdout
    assert [r[0] for r in rows] == [r[0] for r in read_csv_text(modelled("predict-stdout")[1])[1]]


def test_evaluate_prints_accuracy_and_a_confusion_matrix(modelled):
    status, out, err = modelled("evaluate-colours")
    assert status == 0, err
    assert "colours.npz on colours-test.csv (60 rows): classification of 'colour'" in out
    accuracy = re.search(r"accuracy ([\d.]+)% \((\d+) of 60\)", out)
    assert accuracy
    lines = out.splitlines()
    top = lines.index("confusion matrix (rows: true label, columns: predicted label)")
    assert lines[top + 1].split() == ["blue", "green,", "dark", "red", "recall"]
    matrix = [[int(v) for v in re.findall(r"\s(\d+)(?=\s)", line + " ")[:3]]
              for line in lines[top + 2:top + 5]]
    assert np.sum(matrix) == 60 and [sum(row) for row in matrix] == [20, 20, 20]
    assert np.trace(matrix) == int(accuracy.group(2))
    assert lines[top + 5].split()[0] == "precision"


def test_evaluate_and_predict_a_regressor(modelled):
    status, out, err = modelled("evaluate-sine")
    assert status == 0, err
    m = re.search(r"RMSE ([\d.e-]+)   MAE ([\d.e-]+)   R(?:²|\^2) ([\d.-]+)", out)
    assert m, out
    rmse, mae, r2 = map(float, m.groups())
    assert r2 > 0.9 and 0 < mae <= rmse < 0.2
    status, out, err = modelled("predict-sine")
    assert status == 0, err
    header, rows = read_csv_text(out)
    X, y = datasets.sine(300, noise=0.05, seed=3)
    predicted = np.array([float(r[0]) for r in rows])
    assert header == ["sin_x"] and predicted.shape == (300,)
    assert np.sqrt(np.mean((predicted - y) ** 2)) == pytest.approx(rmse, rel=1e-3)


def test_evaluate_counts_labels_the_model_never_saw_as_errors(modelled):
    status, out, err = modelled("evaluate-purple")
    assert status == 0, err
    assert "accuracy 75.0% (3 of 4)" in out
    assert "note: 1 row has labels the model was not trained on ('purple'); it counts as " \
           "errors" in out
    purple = [line for line in out.splitlines() if line.startswith("  purple")]
    assert len(purple) == 1 and purple[0].split()[1:] == ["1", "0", "0", "-"]   # (0, 4, 4): blue


def test_predict_reads_unnamed_npz_columns_by_position(modelled):
    status, out, err = modelled("predict-npz")
    assert status == 0, err
    assert out == modelled("predict-stdout")[1]


def test_patience_stops_early_and_keeps_the_best_epoch(modelled, work):
    status, out, err = modelled("train-patience")
    assert status == 0, err
    best = re.search(r"stopped early: no better validation loss for 3 epochs; the model keeps "
                     r"epoch (\d+), the best", out)
    assert best, out
    last = progress_lines(out)[-1]
    assert int(re.search(r"epoch +(\d+)/300", last).group(1)) == int(best.group(1)) + 3
    assert (work / "noise.npz").exists()


def test_a_diverging_run_stops_with_one_line_status_1_and_no_model(runs, work):
    status, out, err = runs("diverges")
    assert status == 1
    assert err.startswith("cbackprop train: training diverged in epoch ")
    assert len(err.splitlines()) == 1 and "try a smaller lr" in err
    assert not (work / "diverged.npz").exists()


def test_the_datasets_docstring_examples_run():
    import doctest
    assert doctest.testmod(datasets).failed == 0


# -- bench --------------------------------------------------------------------------------------

def test_bench_prints_a_table_of_both_engines(runs):
    status, out, err = runs("bench")
    assert status == 0, err
    rows = re.findall(r"^(\d+-\d+-\d+) +(\d+)  (float32|float64) +(\S+) +(\S+) +([\d.,]+)x  "
                      r"(\w+)$", out, re.M)
    assert len(rows) == 12, out
    assert {(r[0], r[1], r[2]) for r in rows} == {
        (n, b, d) for n in ("2-8-1", "64-30-10", "784-128-10") for b in ("1", "64")
        for d in ("float32", "float64")}
    assert all(r[6] == "yes" for r in rows)              # both engines reach the same weights
    # online SGD: compiled is 10-300 times faster; the median, as one row of a run this
    # short can meet a busy moment of the machine
    assert np.median([float(r[5].replace(",", "")) for r in rows if r[1] == "1"]) > 1


# -- help -----------------------------------------------------------------------------------------

HELP = ["", "demo", "train", "predict", "evaluate", "bench"]


@pytest.mark.parametrize("command", HELP, ids=[c or "top" for c in HELP])
def test_help_shows_an_example(runs, command):
    status, out, err = runs(f"help-{command}")
    assert status == 0 and err == ""
    assert "example" in out
    assert f"cbackprop {command}" in out.split("example", 1)[1]
    if command == "train":
        assert "--layers gives only the HIDDEN layers" in " ".join(out.split())


# -- errors: one line, exit status 2, no traceback --------------------------------------------

ERRORS = {
    # name: command line (names starting "model:" need the trained models)
    "missing-file": ["train", "no-such.csv", "--target", "c", "--out", "m.npz"],
    "ragged-row": ["train", "ragged.csv", "--target", "c", "--out", "m.npz"],
    "unclosed-quote": ["train", "unclosed.csv", "--target", "c", "--out", "m.npz"],
    "missing-value": ["train", "gap.csv", "--target", "c", "--out", "m.npz"],
    "non-numeric-feature": ["train", "words.csv", "--target", "c", "--out", "m.npz"],
    "no-such-target": ["train", "colours.csv", "--target", "color", "--out", "m.npz"],
    "no-target-given": ["train", "colours.csv", "--out", "m.npz"],
    "one-label": ["train", "one-label.csv", "--target", "c", "--out", "m.npz"],
    "empty-csv": ["train", "empty.csv", "--target", "c", "--out", "m.npz"],
    "npz-without-X": ["train", "no-x.npz", "--out", "m.npz"],
    "too-large": ["train", "huge.csv", "--target", "c", "--out", "m.npz"],
    "npy-as-npz": ["train", "one-array.npz", "--out", "m.npz"],
    "epochs-zero": ["train", "colours.csv", "--target", "colour", "--epochs", "0",
                    "--out", "m.npz"],
    "epochs-not-int": ["train", "colours.csv", "--target", "colour", "--epochs", "ten",
                       "--out", "m.npz"],
    "negative-lr": ["train", "colours.csv", "--target", "colour", "--lr", "-1",
                    "--out", "m.npz"],
    "bad-layers": ["train", "colours.csv", "--target", "colour", "--layers", "8,x",
                   "--out", "m.npz"],
    "bad-activation": ["train", "colours.csv", "--target", "colour", "--activation",
                       "softmax", "--out", "m.npz"],
    "bad-optimizer": ["train", "colours.csv", "--target", "colour", "--optimizer", "lbfgs",
                      "--out", "m.npz"],
    "bad-split": ["train", "colours.csv", "--target", "colour", "--validation-split", "1",
                  "--out", "m.npz"],
    "rprop-with-lr": ["train", "colours.csv", "--target", "colour", "--optimizer", "rprop",
                      "--lr", "0.1", "--out", "m.npz"],
    "out-folder-missing": ["train", "colours.csv", "--target", "colour", "--out",
                           "no-such-folder/m.npz"],
    "out-over-data": ["train", "spirals.npz", "--out", "spirals.npz"],
    "negative-seed": ["train", "colours.csv", "--target", "colour", "--seed", "-1",
                      "--out", "m.npz"],
    "unknown-option": ["train", "colours.csv", "--target", "colour", "--out", "m.npz",
                       "--verbose"],
    "no-out": ["train", "colours.csv", "--target", "colour"],
    "plot-nomatplotlib": ["train", "colours.csv", "--target", "colour", "--out", "m.npz",
                          "--plot", "loss.png"],
    "demo-plot-nomatplotlib": ["demo", "--plot", "demo.png"],
    "demo-epochs-zero": ["demo", "--epochs", "0"],
    "bench-seconds-zero": ["bench", "--seconds", "0"],
    "no-command": [],
    "unknown-command": ["fit"],
    "not-a-model": ["predict", "notes.txt", "colours.csv"],
    "csv-as-model": ["predict", "colours.csv", "colours.csv"],
    "plain-network": ["predict", "plain.npz", "colours.csv"],
    "missing-model": ["evaluate", "no-such.npz", "colours.csv"],
    "model:missing-features": ["predict", "colours.npz", "sine.csv"],
    "model:no-target-in-data": ["evaluate", "colours.npz", "colours-unlabelled.csv"],
    "model:probabilities-of-regressor": ["predict", "sine.npz", "sine.csv",
                                         "--probabilities"],
    "model:text-target-for-regressor": ["evaluate", "sine.npz", "sine-text.csv", "--target",
                                        "label"],
    "model:predict-out-over-model": ["predict", "sine.npz", "sine.csv", "--out", "sine.npz"],
    "model:outputs-overflow": ["predict", "spirals-model.npz", "far.csv"],
    "model:unnamed-columns": ["predict", "spirals-model.npz", "three-columns.npz"],
}

# Each run in a process of its own, as a person would start it (the others share one
# interpreter through main()); matplotlib is hidden in the nomatplotlib ones.
OWN_PROCESS = {"missing-file", "epochs-not-int", "no-command", "plot-nomatplotlib",
               "demo-plot-nomatplotlib", "not-a-model", "model:missing-features"}

ERROR_MESSAGES = {
    "missing-file": "cbackprop train: error: no-such.csv: no such file",
    "ragged-row": "cbackprop train: error: ragged.csv, line 3: 2 fields, but the header names "
                  "3 columns",
    "unclosed-quote": "cbackprop train: error: unclosed.csv, line 3: malformed CSV (unexpected "
                      "end of data - an unclosed quote?)",
    "missing-value": "cbackprop train: error: gap.csv, line 3: column 'b' has a missing value "
                     "('NA')",
    "non-numeric-feature": "cbackprop train: error: words.csv, line 3: column 'b' holds "
                           "'tall', not a number",
    "no-such-target": "cbackprop train: error: colours.csv has no column 'color' (did you mean "
                      "'colour'?); its columns are 'id', 'width', 'height', 'depth', 'colour'",
    "no-target-given": "--target is required for CSV data",
    "one-label": "the target 'c' has the same label ('x') in every row",
    "empty-csv": "empty.csv is empty",
    "npz-without-X": "no-x.npz has no array 'X' (it has 'features')",
    "too-large": "the spread of column 'a' overflows float64",
    "npy-as-npz": "one-array.npz holds a single array (.npy); give an .npz with arrays X and y",
    "epochs-zero": "cbackprop train: error: --epochs must be >= 1, got 0",
    "epochs-not-int": "cbackprop train: error: argument --epochs: invalid int value: 'ten'",
    "negative-lr": "cbackprop train: error: --lr must be a number > 0, got -1.0",
    "bad-layers": "--layers takes hidden-layer widths such as 64,30,10, got '8,x'",
    "bad-activation": "--activation 'softmax' is not one of tanh, relu, sigmoid, linear",
    "bad-optimizer": "argument --optimizer: invalid choice: 'lbfgs'",
    "bad-split": "--validation-split must be in [0, 1), got 1.0",
    "rprop-with-lr": "--lr does not apply to rprop",
    "out-folder-missing": "--out no-such-folder/m.npz: the folder",
    "out-over-data": "--out spirals.npz would overwrite the input spirals.npz",
    "negative-seed": "cbackprop train: error: --seed must be >= 0, got -1",
    "unknown-option": "cbackprop train: error: unrecognized arguments: --verbose",
    "no-out": "the following arguments are required: --out",
    "plot-nomatplotlib": "--plot needs matplotlib, which is not installed",
    "demo-plot-nomatplotlib": "cbackprop demo: error: --plot needs matplotlib",
    "demo-epochs-zero": "cbackprop demo: error: --epochs must be >= 1",
    "bench-seconds-zero": "cbackprop bench: error: --seconds must be in (0, 3600], got 0.0",
    "no-command": "cbackprop: error: the following arguments are required: COMMAND",
    "unknown-command": "cbackprop: error: argument COMMAND: invalid choice: 'fit'",
    "not-a-model": "cbackprop predict: error: notes.txt is not a cbackprop model",
    "csv-as-model": "cbackprop predict: error: colours.csv is not a cbackprop model",
    "plain-network": "plain.npz is a network saved by Network.save, without the description "
                     "of its data",
    "missing-model": "cbackprop evaluate: error: no-such.npz: no such file",
    "model:missing-features": "sine.csv lacks the columns 'width', 'height', 'depth'",
    "model:no-target-in-data": "colours-unlabelled.csv has no column 'colour'",
    "model:probabilities-of-regressor": "--probabilities is for classifiers",
    "model:text-target-for-regressor": "'label' holds text such as 'red'; this model predicts "
                                       "numbers",
    "model:predict-out-over-model": "--out sine.npz would overwrite the input sine.npz",
    "model:unnamed-columns": "three-columns.npz: X has 3 columns and no feature_names; the "
                             "model takes 2 (x1, x2)",
    "model:outputs-overflow": "far.csv: X has values beyond the range of float32 once "
                              "standardised as in training",
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_errors_are_one_line_with_exit_status_2(runs, modelled, name):
    status, out, err = (modelled if name.startswith("model:") else runs)(name)
    assert "Traceback" not in err
    assert status == 2, (out, err)
    assert len(err.splitlines()) == 1, err
    assert ERROR_MESSAGES[name] in err, err
    assert out == ""                                   # nothing printed before the mistake
    assert re.match(r"cbackprop( \w+)?: error: ", err)


def test_every_error_case_has_a_message():
    assert set(ERRORS) == set(ERROR_MESSAGES)


def test_errors_leave_no_model_behind(runs, work):
    for name in ERRORS:
        if not name.startswith("model:"):
            runs(name)
    assert not (work / "m.npz").exists()


# -- datasets -------------------------------------------------------------------------------------

def test_xor():
    X, y = datasets.xor()
    assert X.shape == (4, 2) and y.tolist() == [0, 1, 1, 0]
    assert datasets.xor(np.float32)[0].dtype == np.float32


def test_two_spirals_is_lang_and_witbrocks_set():
    X, y = datasets.two_spirals()
    assert X.shape == (194, 2) and y.shape == (194,)
    assert np.bincount(y).tolist() == [97, 97]
    np.testing.assert_allclose(X[0], [0, 6.5])                  # i = 0: angle 0, radius 6.5
    np.testing.assert_allclose(X[97:], -X[:97])                 # the second is the first, turned
    radius = np.hypot(*X[:97].T)
    np.testing.assert_allclose(radius, 6.5 * (104 - np.arange(97)) / 104)


def test_two_spirals_noise_is_seeded():
    a, _ = datasets.two_spirals(100, noise=0.3, seed=4)
    b, _ = datasets.two_spirals(100, noise=0.3, seed=4)
    c, _ = datasets.two_spirals(100, noise=0.3, seed=5)
    assert a.shape == (100, 2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_sine_shapes_values_and_seeds():
    X, y = datasets.sine(101)
    assert X.shape == (101, 1) and y.shape == (101,)
    assert X[0, 0] == -np.pi and X[-1, 0] == np.pi
    np.testing.assert_allclose(y, np.sin(X[:, 0]))
    a = datasets.sine(2000, noise=0.5, seed=1)[1]
    np.testing.assert_array_equal(a, datasets.sine(2000, noise=0.5, seed=1)[1])
    assert not np.array_equal(a, datasets.sine(2000, noise=0.5, seed=2)[1])
    assert np.std(a - np.sin(datasets.sine(2000)[0][:, 0])) == pytest.approx(0.5, rel=0.1)
    assert datasets.sine(3, dtype=np.float32)[0].dtype == np.float32
    for bad in (dict(n=0), dict(n=2.5), dict(n=5, noise=-1), dict(n=5, noise=np.nan)):
        with pytest.raises(ValueError):
            datasets.sine(**bad)


def csv_file(tmp_path, text, name="data.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_load_csv_reads_quotes_blank_lines_bom_and_text_labels(tmp_path):
    path = csv_file(tmp_path, '\ufeffwidth, "height, cm",kind\r\n1.5,20,tree\r\n\r\n'
                              '  \r\n0.2,  0.5 ,"grass, tall"\r\n-3e2,7,"line\nbreak"\r\n')
    X, y, names = datasets.load_csv(path, target="kind")
    assert names == ["width", "height, cm"]
    assert X.dtype == np.float64 and X.tolist() == [[1.5, 20], [0.2, 0.5], [-300, 7]]
    assert y.tolist() == ["tree", "grass, tall", "line\nbreak"]


@pytest.mark.parametrize("values, kind, expected", [
    (["3", "-1", "03"], "i", [3, -1, 3]),
    (["3", "2.5", "1e-3"], "f", [3, 2.5, 0.001]),
    (["1.0", "0.0", "1.0"], "f", [1.0, 0.0, 1.0]),
    (["yes", "no", "3"], "U", ["yes", "no", "3"]),
])
def test_load_csv_target_kinds(tmp_path, values, kind, expected):
    path = csv_file(tmp_path, "a,t\n" + "".join(f"{k},{v}\n" for k, v in enumerate(values)))
    _, y, _ = datasets.load_csv(path, "t")
    assert y.dtype.kind == kind and y.tolist() == expected


def test_load_csv_selects_features_in_order_and_ignores_other_columns(tmp_path):
    path = csv_file(tmp_path, "a,b,note,c\n1,2,hello,3\n4,5,,6\n")
    X, y, names = datasets.load_csv(path, features=["c", "a"])
    assert y is None and names == ["c", "a"] and X.tolist() == [[3, 1], [6, 4]]
    X, y, names = datasets.load_csv(path, target="c", features=["b"], dtype=np.float32)
    assert X.dtype == np.float32 and y.tolist() == [3, 6]


@pytest.mark.parametrize("text, message", [
    ("a,b\n1,\n", "line 2: column 'b' has a missing value (an empty field)"),
    ("a,b\n1,2\n3,NA\n", "line 3: column 'b' has a missing value ('NA')"),
    ("a,b\n1,?\n", "line 2: column 'b' has a missing value ('?')"),
    ("a,b\n1,nan\n", "line 2: column 'b' has a missing value ('nan')"),
    ("a,b\nN/A,2\n", "line 2: column 'a' has a missing value ('N/A')"),
    ("a,b\n1,2\n\n\nx,2\n", "line 5: column 'a' holds 'x', not a number"),
    ("a,b\n1,1e999\n", "line 2: column 'b' holds '1e999', not a finite number"),
    ("a,b\n1,2,3\n", "line 2: 3 fields, but the header names 2 columns"),
    ('a,b\n1,"2\n', "malformed CSV (unexpected end of data - an unclosed quote?)"),
    ('a,b\n1,"2"x\n', "line 2: malformed CSV"),
    ("a,a\n1,2\n", "the header names column 'a' twice"),
    ("a,,c\n1,2,3\n", "column 2 of the header has no name"),
    ("a;b\n1;2\n", "cbackprop reads comma-separated values"),
    ("\n\n", "is empty"),
    ("a,b\n", "has a header but no data rows"),
], ids=["empty-field", "NA", "question-mark", "nan", "N/A", "text", "overflow", "extra-field",
        "unclosed-quote", "junk-after-quote", "duplicate", "unnamed", "semicolons",
        "empty-file", "header-only"])
def test_load_csv_refuses_bad_files_naming_line_and_column(tmp_path, text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        datasets.load_csv(csv_file(tmp_path, text), target="b" if "b" in text else None)


def test_load_csv_names_missing_columns(tmp_path):
    path = csv_file(tmp_path, "Width,height,kind\n1,2,x\n")
    with pytest.raises(ValueError, match=r"no column 'width' \(did you mean 'Width'\?\); its "
                                         r"columns are 'Width', 'height', 'kind'"):
        datasets.load_csv(path, target="width")
    with pytest.raises(ValueError, match="lacks the column 'depth'"):
        datasets.load_csv(path, features=["depth"])
    with pytest.raises(ValueError, match="both the target and a feature"):
        datasets.load_csv(path, target="kind", features=["kind"])


def test_load_csv_refuses_binary_files(tmp_path):
    path = csv_file(tmp_path, "")
    path.write_bytes(b"PK\x03\x04\xff\xfe\x00binary")
    with pytest.raises(ValueError, match="is not UTF-8 text"):
        datasets.load_csv(path)
    with pytest.raises(FileNotFoundError):
        datasets.load_csv(tmp_path / "absent.csv")


def test_save_csv_round_trips_exactly(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    y = np.array(["a", "b, c", 'say "hi"', "d"] * 5)
    datasets.save_csv(tmp_path / "t.csv", X, y, ["p", "q", "r s"], "label")
    X2, y2, names = datasets.load_csv(tmp_path / "t.csv", target="label")
    np.testing.assert_array_equal(X2, X)
    assert y2.tolist() == y.tolist() and names == ["p", "q", "r s"]
