"""cbackprop on the command line: demo, train, predict, evaluate, bench and explain.

Also ``python -m cbackprop``. Exit status: 0 done; 2 a mistake in the command line or its
files (one line on stderr); 1 training diverged; 130 interrupted by Ctrl-C.
"""

import argparse
import csv
import io
import math
import os
import platform
import sys
import time

import numpy as np

from . import reference
from ._dispatch import kernel_level
from .cli_data import (CommandError, DataInfo, choose_task, confusion, format_value,
                       is_number, label_indices, load_model, read_table, regression_metrics,
                       save_model)
from .datasets import two_spirals, xor
from .network import Network, _write_atomically
from .optimizers import OPTIMIZERS

EXAMPLES = """\
examples:
  cbackprop demo                                   XOR and the two spirals, no files needed
  cbackprop train iris.csv --target species --layers 16 --out iris.npz
  cbackprop predict iris.npz new-flowers.csv --out predictions.csv
  cbackprop evaluate iris.npz test.csv
  cbackprop bench --seconds 20
  cbackprop explain --sizes 3,3,1 --weight 2,1,2

'cbackprop COMMAND --help' describes a command and its options. Exit status: 0 done, 2 a
mistake in the command or its files (one line on stderr), 1 training diverged, 130 Ctrl-C."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr, with exit status 2.

    ``one_line=False`` keeps argparse's usage line before the error (the explain command's
    form, unchanged).
    """

    def __init__(self, *args, one_line=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.one_line = one_line

    def error(self, message):
        if not self.one_line:
            super().error(message)
        self.exit(2, f"{self.prog}: error: {' '.join(str(message).split())}\n")


# -- demo --------------------------------------------------------------------------------------

def _accuracy(net, X, y):
    return float(np.mean((net.forward(X)[:, 0] > 0.5) == (y > 0.5)))


def _samples_per_second(net, X, y, lr, momentum, epochs):
    """Online SGD throughput of the compiled engine and of the NumPy reference, same task."""
    Y = np.asarray(y, dtype=net.dtype).reshape(-1, 1)
    W = [w.copy() for w in net.weights]
    b = [v.copy() for v in net.biases]
    velocities = [np.zeros_like(p) for p in W + b]
    start = time.perf_counter()
    for _ in range(epochs):
        reference.train_epoch(W, b, net.activations, net.loss_name, X, Y, lr, 1, momentum,
                              velocities)
    reference_rate = epochs * len(X) / (time.perf_counter() - start)
    probe = Network(net.sizes, net.activations, net.loss_name, net.dtype, seed=0)
    history = probe.train(X, y, epochs=epochs * 20, lr=lr, momentum=momentum)
    compiled_rate = epochs * 20 * len(X) / sum(history.epoch_time)
    return compiled_rate, reference_rate


def _train_in_chunks(net, X, y, epochs, lines, **settings):
    """Train ``epochs`` epochs, printing a line after each of about ``lines`` chunks;
    returns the loss of every epoch."""
    chunk = max(1, math.ceil(epochs / lines))
    losses, done = [], 0
    while done < epochs:
        step = min(chunk, epochs - done)
        history = net.train(X, y, epochs=step, **settings)
        losses += history.loss
        done += step
        print(f"   epoch {done:{len(str(epochs))}d}/{epochs}  loss {history.loss[-1]:.4f}  "
              f"accuracy {_accuracy(net, X, y):6.1%}", flush=True)
    return losses


def demo(args):
    if args.plot:
        plt = _pyplot(args.plot, "--plot")
    print("cbackprop demo: backpropagation in compiled code, on two tasks generated in code "
          "(no files, no network)\n")
    print("1. XOR: the output is 1 when exactly one input is 1. No straight line separates "
          "the two\n   classes, so the network needs a hidden layer: 2 inputs, 4 sigmoid "
          "hidden units, 1 sigmoid\n   output (2-4-1), trained by online SGD (a weight update "
          "after every sample, lr 2.0)\n   on the squared error J = 1/2 (y - h)^2.")
    X, y = xor()
    net = Network([2, 4, 1], "sigmoid", seed=args.seed)
    xor_losses = _train_in_chunks(net, X, y, 3000, 5, lr=2.0)
    outputs = " ".join(f"{v:.3f}" for v in net.forward(X)[:, 0])
    print(f"   outputs for (0,0) (0,1) (1,0) (1,1): {outputs}; accuracy "
          f"{_accuracy(net, X, y):.0%}\n")

    X, y = two_spirals()
    X = X * (3 / 6.5)   # the original coordinates, scaled into [-3, 3]
    sizes, lr, momentum = [2, 40, 40, 1], 0.002, 0.9
    print(f"2. Two spirals (Lang and Witbrock 1988): {len(X)} points on two spirals that wind "
          f"three times\n   around each other, a classic hard task for backpropagation. "
          f"Network {'-'.join(map(str, sizes))}: two tanh\n   hidden layers, a sigmoid output "
          f"(the probability of spiral 1), cross-entropy loss, online\n   SGD lr {lr} with "
          f"momentum {momentum}, {args.epochs} epochs.")
    net = Network(sizes, ["tanh", "tanh", "sigmoid"], "cross_entropy", seed=args.seed)
    start = time.perf_counter()
    spiral_losses = _train_in_chunks(net, X, y, args.epochs, 10, lr=lr, momentum=momentum)
    seconds = time.perf_counter() - start
    correct = int(round(_accuracy(net, X, y) * len(X)))
    print(f"   final: loss {spiral_losses[-1]:.4f}, accuracy {correct / len(X):.1%} ({correct} "
          f"of {len(X)} points), trained in {seconds:.2f} s\n")

    compiled, ref = _samples_per_second(net, X, y, lr, momentum, epochs=10)
    print(f"3. Speed of that training on this machine (online SGD, float64): compiled "
          f"{compiled:,.0f} samples/s,\n   NumPy reference {ref:,.0f} samples/s: "
          f"{compiled / ref:.0f}x. The reference is cbackprop.reference, the same\n"
          f"   mathematics in plain NumPy. Kernels: {kernel_level}; 'cbackprop bench' "
          f"measures more sizes.")
    if args.plot:
        _save_figure(_demo_figure(plt, net, X, y, xor_losses, spiral_losses), args.plot)
        print(f"\nplot: {args.plot} (loss per epoch; the decision regions the network learned)")
    print("\nNext: 'cbackprop train DATA.csv --target COLUMN --out model.npz' trains on your "
          "own table.")
    return 0


def _demo_figure(plt, net, X, y, xor_losses, spiral_losses):
    """Loss curves of both tasks and the spirals' learned decision regions."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6))
    left.plot(np.arange(1, len(xor_losses) + 1), xor_losses, label="XOR (2-4-1, mse)")
    left.plot(np.arange(1, len(spiral_losses) + 1), spiral_losses,
              label="two spirals (2-40-40-1, cross-entropy)")
    left.set_yscale("log")
    left.set_xlabel("epoch")
    left.set_ylabel("mean training loss")
    left.set_title("Loss per epoch")
    left.legend()
    extent = 3.5
    grid = np.linspace(-extent, extent, 300)
    gx, gy = np.meshgrid(grid, grid)
    p = net.forward(np.column_stack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
    right.contourf(gx, gy, p, levels=[0, 0.5, 1], colors=["#cfe0f3", "#f6d5c0"])
    right.contour(gx, gy, p, levels=[0.5], colors="k", linewidths=0.8)
    for label, color, marker in ((0, "C0", "o"), (1, "C1", "s")):
        right.scatter(*X[y == label].T, c=color, marker=marker, s=14, edgecolors="k",
                      linewidths=0.4, label=f"spiral {label}")
    right.set_aspect("equal")
    right.set_title(f"Two spirals: decision regions ({_accuracy(net, X, y):.0%} correct)")
    right.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return fig


# -- train, predict, evaluate --------------------------------------------------------------

def _names(text):
    return [n.strip() for n in text.split(",") if n.strip()] if text else []


def _layers(text):
    if text.strip().lower() in ("", "none", "0"):
        return []
    try:
        widths = [int(v) for v in text.split(",")]
    except ValueError:
        raise CommandError(f"--layers takes hidden-layer widths such as 64,30,10, got "
                           f"{text!r}") from None
    if any(w < 1 for w in widths):
        raise CommandError(f"--layers widths must be >= 1, got {text!r}")
    return widths


def _hidden_activations(text, n_hidden):
    names = _names(text)
    if len(names) not in (1, n_hidden) and n_hidden:
        raise CommandError(f"--activation takes one name or one per hidden layer "
                           f"({n_hidden}), got {text!r}")
    for name in names:
        if name not in HIDDEN_ACTIVATIONS:
            raise CommandError(f"--activation {name!r} is not one of "
                               f"{', '.join(HIDDEN_ACTIVATIONS)}")
    return names * n_hidden if len(names) == 1 else names


HIDDEN_ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")


def _check_output(path, option, inputs=()):
    """Fail before the work, not after it, when ``path`` cannot be written."""
    if os.path.isdir(path):
        raise CommandError(f"{option} {path} is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CommandError(f"{option} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise CommandError(f"{option} {path}: cannot write in {folder}")
    for given in inputs:
        if os.path.exists(given) and os.path.exists(path) and os.path.samefile(given, path):
            raise CommandError(f"{option} {path} would overwrite the input {given}")


def _pyplot(path, option):
    """matplotlib.pyplot drawing to files, after checking ``path`` can take a figure."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise CommandError(f"{option} needs matplotlib, which is not installed "
                           f"(pip install matplotlib)") from None
    extension = os.path.splitext(path)[1][1:].lower()
    formats = FigureCanvasBase.get_supported_filetypes()
    if extension not in formats:
        raise CommandError(f"{option} {path}: name an image file ending in .png, .svg or "
                           f".pdf (matplotlib writes {', '.join(sorted(formats))})")
    _check_output(path, option)
    return plt


def _save_figure(fig, path):
    extension = os.path.splitext(path)[1][1:].lower()
    try:
        _write_atomically(path, lambda f: fig.savefig(f, format=extension, dpi=100))
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None


def _percent(x):
    return f"{x:.1%}"


def _loss(x):
    """A loss with four decimals, or four digits once it is large (a diverging run)."""
    return f"{x:.4f}" if abs(x) < 1000 else f"{x:.4g}"


def _label_counts(labels, y, limit=8):
    counts = np.bincount(label_indices(labels, y), minlength=len(labels))
    shown = [f"{label!r} {count}" for label, count in zip(labels[:limit], counts)]
    return ", ".join(shown) + (f" and {len(labels) - limit} more" if len(labels) > limit
                               else "")


def _score(net, info, X, Y):
    """(loss, accuracy or RMSE in the target's units) of the network on prepared rows."""
    loss = net.loss(X, Y)
    out = net.forward(X)
    if info.task == "classification":
        return loss, float(np.mean(np.argmax(out, axis=1) == Y))
    return loss, float(np.sqrt(np.mean((out[:, 0] - Y) ** 2))) * info.target_std


def _check_train_options(args):
    """Every option of train checked before any data is read: (hidden widths, activations)."""
    if args.epochs < 1:
        raise CommandError(f"--epochs must be >= 1, got {args.epochs}")
    if not 0 <= args.validation_split < 1:
        raise CommandError(f"--validation-split must be in [0, 1), got "
                           f"{args.validation_split}")
    if args.optimizer == "rprop":
        for given, option in ((args.lr, "--lr"), (args.batch_size, "--batch-size")):
            if given is not None:
                raise CommandError(f"{option} does not apply to rprop, which adapts its own "
                                   f"steps on the whole data set")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        raise CommandError(f"--lr must be a number > 0, got {args.lr}")
    if not 0 <= args.momentum < 1:
        raise CommandError(f"--momentum must be in [0, 1), got {args.momentum}")
    if args.momentum and args.optimizer != "sgd":
        raise CommandError(f"--momentum is for --optimizer sgd, not {args.optimizer}")
    if args.batch_size is not None and args.batch_size < 1:
        raise CommandError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.patience is not None and (args.patience < 1 or not args.validation_split):
        raise CommandError("--patience needs a number >= 1 and a --validation-split to "
                           "watch")
    if args.features and args.drop:
        raise CommandError("give --features or --drop, not both")
    hidden = _layers(args.layers)
    return hidden, _hidden_activations(args.activation, len(hidden))


def _describe_data(table, info, train_rows):
    """The data's first lines of the report: rows, features, the target, useless columns."""
    n, d = table.X.shape
    if info.task == "classification":
        target = (f"classification, {len(info.labels)} labels "
                  f"({_label_counts(info.labels, table.y)})")
    else:
        y = table.y.astype(np.float64)
        target = (f"regression (mean {y.mean():.4g}, std {y.std():.4g}, from {y.min():.4g} "
                  f"to {y.max():.4g})")
    print(f"{table.path}: {n} rows, {d} feature{'s' * (d != 1)}; target {table.target!r}: "
          f"{target}")
    constant = [name for name, column in zip(info.feature_names, table.X[train_rows].T)
                if np.ptp(column) == 0]
    if constant:
        print(f"note: {', '.join(map(repr, constant))} never change{'s' * (len(constant) == 1)}"
              f" in the training rows, so the model cannot use them")


# A long run shows a progress line at least this often (at the end of an epoch).
PROGRESS_SECONDS = 30


def _progress_printer(info, epochs):
    """A train() callback printing one line per tenth of the run, and after any epoch that
    ends PROGRESS_SECONDS or more after the last line; ``.printed`` lists the epochs shown.

    Training loss, accuracy and RMSE are as the epoch saw them (each sample scored before
    its step); val_ values are measured after the epoch. RMSE is in the target's units:
    ``sqrt(2 J) * std`` for the standardised J = 1/2 (y - h)^2.
    """
    every, width, start = max(1, math.ceil(epochs / 10)), len(str(epochs)), time.perf_counter()
    last = [start]

    def progress(epoch, history, final=False):
        now = time.perf_counter()
        if epoch % every and epoch != epochs and not final and \
                now - last[0] < PROGRESS_SECONDS:
            return
        last[0] = now
        progress.printed.append(epoch)
        k = epoch - 1
        parts = [f"epoch {epoch:{width}d}/{epochs}", f"loss {_loss(history.loss[k])}"]
        if info.task == "classification":
            parts.append(f"accuracy {_percent(history.accuracy[k]):>6}")
        else:
            parts.append(f"rmse {math.sqrt(2 * history.loss[k]) * info.target_std:.4g}")
        if history.val_loss:
            parts.append(f"val_loss {_loss(history.val_loss[k])}")
            if info.task == "classification":
                parts.append(f"val_accuracy {_percent(history.val_accuracy[k]):>6}")
            else:
                rmse = math.sqrt(2 * history.val_loss[k]) * info.target_std
                parts.append(f"val_rmse {rmse:.4g}")
        parts.append(f"{now - start:.2f} s")
        print("  " + "  ".join(parts), flush=True)

    progress.printed = []
    return progress


def train_command(args):
    hidden, activations = _check_train_options(args)
    _check_output(args.out, "--out", [args.data])
    plt = _pyplot(args.plot, "--plot") if args.plot else None
    table = read_table(args.data, target=args.target,
                       features=_names(args.features) or None, drop=_names(args.drop),
                       need_target=True)
    task = choose_task(table.y, args.task, table.target)
    n = len(table.X)
    n_val = math.ceil(args.validation_split * n) if args.validation_split else 0
    if n_val and n_val >= n:
        raise CommandError(f"--validation-split {args.validation_split} leaves no training "
                           f"rows out of {n}")
    # validation rows are held out before the standardisation is fitted: no peeking
    order = np.random.default_rng(args.seed).permutation(n)
    val_rows, train_rows = np.sort(order[:n_val]), np.sort(order[n_val:])
    info = DataInfo.fit(task, table, train_rows)
    X, Y = info.scale(table.X), info.targets(table.y)
    output, loss = ("softmax", "cross_entropy") if task == "classification" else ("linear", "mse")
    loss = args.loss or loss
    sizes = [X.shape[1], *hidden, info.n_outputs]
    try:
        net = Network(sizes, activations + [output], loss, dtype=np.dtype(args.dtype),
                      seed=args.seed)
    except (ValueError, TypeError) as exc:
        raise CommandError(str(exc)) from None

    _describe_data(table, info, train_rows)
    batch = None if args.optimizer == "rprop" else (args.batch_size or 32)
    lr = args.lr if args.lr is not None else OPTIMIZERS[args.optimizer].default_lr
    settings = ", ".join(
        [args.optimizer] + ([f"lr {lr:g}"] if lr is not None else []) +
        ([f"momentum {args.momentum}"] if args.momentum else []) +
        ([f"batch {batch}"] if batch else ["full batch"]))
    hidden_text = (f"{'/'.join(dict.fromkeys(activations))} hidden layer"
                   f"{'s' * (len(hidden) != 1)}, " if hidden else "no hidden layer, ")
    print(f"network {'-'.join(map(str, sizes))}: {hidden_text}{output} output, {loss} loss; "
          f"{settings}; {args.epochs} epochs on {len(train_rows)} rows"
          + (f", {n_val} held out for validation" if n_val else "") +
          f" (inputs standardised{', targets too' if task == 'regression' else ''})")

    progress = _progress_printer(info, args.epochs)
    start = time.perf_counter()
    try:
        history = net.train(X[train_rows], Y[train_rows], epochs=args.epochs, lr=args.lr,
                            batch_size=batch, momentum=args.momentum, optimizer=args.optimizer,
                            validation_data=(X[val_rows], Y[val_rows]) if n_val else None,
                            early_stopping=args.patience is not None,
                            patience=args.patience or 10, callbacks=[progress], verbose=False)
    except (ValueError, TypeError) as exc:
        raise CommandError(str(exc)) from None
    seconds = time.perf_counter() - start
    if len(history) not in progress.printed:            # stopped early: show the last epoch
        progress(len(history), history, final=True)
    rate = len(history) * len(train_rows) / max(sum(history.epoch_time), 1e-12)
    print(f"trained {len(history)} epochs in {seconds:.2f} s ({rate:,.0f} samples/s)")
    if history.stop_reason == "early_stopping":
        print(f"stopped early: no better validation loss for {args.patience} epochs; the "
              f"model keeps epoch {history.best_epoch}, the best")
    measure = "accuracy" if task == "classification" else "RMSE"
    for name, rows in (("training", train_rows), ("validation", val_rows)):
        if len(rows):
            value, score = _score(net, info, X[rows], Y[rows])
            shown = _percent(score) if task == "classification" else f"{score:.4g}"
            print(f"{name:<10} ({len(rows)} rows): loss {_loss(value)}  {measure} {shown}")
    try:
        save_model(args.out, net, info)
    except OSError as exc:
        raise CommandError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    what = (f"its {len(info.labels)} labels" if task == "classification"
            else f"the scale of {table.target!r}")
    print(f"saved {args.out}: the network, the standardisation of its inputs and {what}")
    if plt is not None:
        _save_figure(history.plot(), args.plot)
        print(f"plot: {args.plot}")
    return 0


def _write_rows(path, header, rows):
    """CSV to ``path`` (atomically) or to stdout when ``path`` is None."""
    if path is None:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        sys.stdout.flush()
        return

    def write(f):
        text = io.TextIOWrapper(f, encoding="utf-8", newline="")
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        text.flush()
        text.detach()
    try:
        _write_atomically(path, write)
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None


def _outputs(net, info, table):
    """The network's outputs for the rows of DATA, scaled as in training."""
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            outputs = net.forward(info.scale(table.X))
    except ValueError as exc:              # e.g. scaled values beyond float32's range
        raise CommandError(f"{table.path}: {' '.join(str(exc).split())} once standardised "
                           f"as in training") from None
    except FloatingPointError:
        outputs = None
    if outputs is None or not np.isfinite(outputs).all():
        raise CommandError(f"{table.path}: the network's outputs overflow for some rows "
                           f"(values far outside the training data?)")
    return outputs


def predict_command(args):
    net, info = load_model(args.model)
    if args.probabilities and info.task != "classification":
        raise CommandError("--probabilities is for classifiers; this model is a regressor")
    if args.out:
        _check_output(args.out, "--out", [args.model, args.data])
    table = read_table(args.data, features=info.feature_names)
    outputs = _outputs(net, info, table)
    predicted = info.decode(outputs)
    if info.task == "classification":
        header = [info.target]
        rows = [[label] for label in predicted.tolist()]
        if args.probabilities:
            header += [f"p_{label}" for label in info.labels]
            rows = [row + [f"{p:.6g}" for p in out] for row, out in zip(rows, outputs.tolist())]
    else:
        header = [info.target]
        rows = [[format_value(v, net.dtype)] for v in predicted]
    _write_rows(args.out, header, rows)
    if args.out:
        print(f"wrote {len(rows)} predictions of {info.target!r} to {args.out}")
    return 0


def _r_squared():
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "R²".encode(encoding)
        return "R²"
    except (UnicodeEncodeError, LookupError):
        return "R^2"


def evaluate_command(args):
    net, info = load_model(args.model)
    target = args.target or info.target
    table = read_table(args.data, target=target, features=info.feature_names,
                       need_target=True)
    if info.task == "regression" and table.y.dtype.kind not in "biuf":
        example = next(v for v in table.y.tolist() if not is_number(v))
        raise CommandError(f"{target!r} holds text such as {example!r}; this model predicts "
                           f"numbers")
    outputs = _outputs(net, info, table)
    n = len(table.X)
    print(f"{args.model} on {table.path} ({n} rows): {info.task} of {target!r}")
    if info.task == "regression":
        m = regression_metrics(table.y, info.decode(outputs))
        r2 = "n/a (the true values are all equal)" if m["r2"] is None else f"{m['r2']:.4f}"
        print(f"RMSE {m['rmse']:.4g}   MAE {m['mae']:.4g}   {_r_squared()} {r2}")
        return 0
    predicted = np.argmax(outputs, axis=1)
    truth = label_indices(info.labels, table.y)
    correct = int(np.sum(predicted == truth))
    print(f"accuracy {correct / n:.1%} ({correct} of {n})")
    unknown = int(np.sum(truth < 0))
    rows, matrix = confusion(info.labels, table.y, predicted)
    if unknown:
        print(f"note: {unknown} row{'s have' if unknown > 1 else ' has'} labels the model "
              f"was not trained on ({', '.join(map(repr, rows[len(info.labels):][:5]))}); "
              f"{'they count' if unknown > 1 else 'it counts'} as errors")
    names = [str(v) for v in rows]
    width = max(len("precision"), *(len(s) for s in names))
    cells = max(8, *(len(str(v)) + 2 for v in info.labels), len(str(matrix.max())) + 2)
    print("\nconfusion matrix (rows: true label, columns: predicted label)")
    print(" " * (width + 2) + "".join(f"{str(v):>{cells}}" for v in info.labels) +
          f"{'recall':>9}")
    for r, (name, counts) in enumerate(zip(names, matrix)):
        # rows past the model's labels hold labels it never saw: no recall to give
        recall = counts[r] / counts.sum() if r < len(info.labels) and counts.sum() else None
        print(f"  {name:<{width}}" + "".join(f"{c:>{cells}d}" for c in counts) +
              (f"{_percent(recall):>9}" if recall is not None else f"{'-':>9}"))
    predicted_totals = matrix.sum(axis=0)
    precision = [matrix[k, k] / t if t else None for k, t in enumerate(predicted_totals)]
    print(f"  {'precision':<{width}}" + "".join(
        f"{_percent(p) if p is not None else '-':>{cells}}" for p in precision))
    return 0


# -- bench -----------------------------------------------------------------------------------

BENCH_NETWORKS = ((2, 8, 1), (64, 30, 10), (784, 128, 10))
BENCH_BATCHES = (1, 64)
BENCH_DTYPES = (np.float32, np.float64)
BENCH_LR = 0.1
# Settings that change how fast BLAS runs (mini-batches): shown when set.
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                  "OPENBLAS_CORETYPE")


def _measure(run, budget):
    """Samples per second of ``run(count)`` (which trains about ``count`` samples and
    returns how many it did): the median over calls of about a tenth of ``budget`` seconds
    each, so that a moment when another process takes the CPU does not decide the result."""
    count, spent = 16, 0.0
    while True:                 # warm up, and grow the calls to a tenth of the budget
        t0 = time.perf_counter()
        run(count)
        dt = time.perf_counter() - t0
        spent += dt
        # (256 samples at least: 4 mini-batches, so train()'s fixed cost per call is shared)
        if (dt >= budget / 10 and count >= 256) or count >= 1 << 24:
            break
        count *= 2
    rates = []
    while spent < budget or not rates:
        t0 = time.perf_counter()
        done = run(count)
        dt = time.perf_counter() - t0
        rates.append(done / dt)
        spent += dt
    return float(np.median(rates))


def _short(rate):
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if rate >= limit:
            return f"{rate / limit:.3g}{suffix}"
    return f"{rate:.3g}"


def _ratio(x):
    return f"{x:,.0f}x" if x >= 100 else f"{x:.3g}x"


def _bench_row(sizes, batch, dtype, budget, rng):
    """(compiled rate, reference rate, same weights after one epoch) for one workload."""
    n = min(20000, 2_000_000 // sizes[0])
    X = rng.uniform(-1, 1, (n, sizes[0])).astype(dtype)
    Y = rng.uniform(0, 1, (n, sizes[-1])).astype(dtype)
    net = Network(sizes, "sigmoid", "mse", dtype=dtype, seed=0)
    W = [w.copy() for w in net.weights]
    b = [v.copy() for v in net.biases]

    # the two engines agree: one epoch over 2 batches' worth of rows, from the same weights
    m = min(n, 2 * batch + 3)
    check = Network(sizes, "sigmoid", "mse", dtype=dtype, seed=0)
    check.train(X[:m], Y[:m], epochs=1, lr=BENCH_LR, batch_size=batch, shuffle=False,
                verbose=False)
    Wr, br = [w.copy() for w in W], [v.copy() for v in b]
    reference.train_epoch(Wr, br, net.activations, "mse", X[:m], Y[:m], BENCH_LR, batch)
    rtol = 1e-4 if dtype == np.float32 else 1e-9
    same = all(np.allclose(a, e, rtol=rtol, atol=rtol * max(1.0, float(np.abs(e).max())))
               for a, e in zip(list(check.weights) + list(check.biases), Wr + br))

    def compiled(count):
        rows, epochs = min(count, n), max(1, count // n)
        net.train(X[:rows], Y[:rows], epochs=epochs, lr=BENCH_LR, batch_size=batch,
                  shuffle=False, verbose=False)
        return rows * epochs

    def plain(count):
        rows, epochs = min(count, n), max(1, count // n)
        for _ in range(epochs):
            reference.train_epoch(W, b, net.activations, "mse", X[:rows], Y[:rows],
                                  BENCH_LR, batch)
        return rows * epochs

    return _measure(compiled, budget), _measure(plain, budget), same


def bench_command(args):
    if not 0 < args.seconds <= 3600:
        raise CommandError(f"--seconds must be in (0, 3600], got {args.seconds}")
    if args.threads is None:
        return _bench(args)
    if args.threads < 1:
        raise CommandError(f"--threads must be >= 1, got {args.threads}")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise CommandError("--threads needs threadpoolctl (pip install threadpoolctl)") \
            from None
    with threadpool_limits(limits=args.threads, user_api="blas"):
        return _bench(args)


def _bench(args):
    rows = [(s, b, d) for s in BENCH_NETWORKS for b in BENCH_BATCHES for d in BENCH_DTYPES]
    budget = args.seconds / (2 * len(rows))
    print(f"cbackprop bench: SGD training, compiled engine vs the NumPy reference "
          f"(cbackprop.reference.train_epoch), about {args.seconds:g} s")
    print(f"sigmoid layers, squared error, lr {BENCH_LR}, no shuffling; samples per second "
          f"of wall time\n(median over repeated calls, after warm-up)")
    blas = [f"{k}={os.environ[k]}" for k in BLAS_VARIABLES if os.environ.get(k)]
    threads = f"; BLAS threads {args.threads}" if args.threads else ""
    print(f"machine: {os.cpu_count()} CPUs, kernels {kernel_level}, Python "
          f"{platform.python_version()}, NumPy {np.__version__}{threads}"
          f"{'; ' + ' '.join(blas) if blas else ''}\n")
    header = f"{'network':<12}{'batch':>6}  {'dtype':<8}{'compiled':>10} {'reference':>10} " \
             f"{'ratio':>7}  same weights"
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    mismatches = 0
    for sizes, batch, dtype in rows:
        compiled, plain, same = _bench_row(sizes, batch, dtype, budget, rng)
        mismatches += not same
        print(f"{'-'.join(map(str, sizes)):<12}{batch:>6}  {np.dtype(dtype).name:<8}"
              f"{_short(compiled):>10} {_short(plain):>10} {_ratio(compiled / plain):>7}  "
              f"{'yes' if same else 'NO'}", flush=True)
    print("\nsame weights: after one epoch from the same start, the compiled weights equal "
          "the reference's\n(relative 1e-4 in float32, 1e-9 in float64). Batch 1 is online "
          "SGD; batch 64 is matrix\nproducts in both (BLAS's, and cbackprop's own for the "
          "first layer with one BLAS thread\non AVX-512), so the ratio there is smaller, and "
          "BLAS's threads make those rows swing\non a busy machine: compare with --threads 1.")
    return 1 if mismatches else 0


# -- explain -----------------------------------------------------------------------------------

def _numbers(text, name, parser, kind=float):
    try:
        return [kind(v) for v in text.split(",") if v.strip() != ""]
    except ValueError:
        parser.error(f"{name} must be a comma-separated list of {kind.__name__}s, got {text!r}")


def explain(args, parser):
    """Print the chain rule for one weight (or bias) of a network built or loaded."""
    from .network import load
    if args.model:
        try:
            net = load(args.model)
        except ValueError as exc:
            parser.error(str(exc))
    else:
        sizes = _numbers(args.sizes, "--sizes", parser, int)
        activations = args.activation.split(",") if "," in args.activation else args.activation
        try:
            net = Network(sizes, activations, args.loss, np.dtype(args.dtype), seed=args.seed)
        except (ValueError, TypeError) as exc:
            parser.error(str(exc))
    rng = np.random.default_rng(args.seed)
    if args.x is not None:
        x = np.array(_numbers(args.x, "--x", parser))
    elif args.model:
        parser.error("--model needs the sample: --x and --y")
    else:
        x = np.round(rng.uniform(0, 1, net.sizes[0]), 2)
    if args.y is not None:
        y = np.array(_numbers(args.y, "--y", parser))
    elif args.model:
        parser.error("--model needs the sample: --x and --y")
    else:
        y = np.eye(net.sizes[-1])[0]            # the first output is the target class
    where = args.bias if args.bias else args.weight
    index = _numbers(where, "--bias" if args.bias else "--weight", parser, int)
    if len(index) != (2 if args.bias else 3):
        parser.error("--weight takes l,i,j and --bias takes l,i (1-based, tutorial notation)")
    try:
        if args.bias:
            e = net.explain_bias(x, y, *index)
        else:
            e = net.explain(x, y, *index)
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    acts = "/".join(dict.fromkeys(net.activations))
    print(f"network {'-'.join(map(str, net.sizes))} {acts}, loss {net.loss_name}, "
          f"{net.dtype.name}; sample x = {np.array2string(np.asarray(x), separator=', ')}, "
          f"y = {np.array2string(np.asarray(y), separator=', ')}; J = {e.loss:.6g}\n")
    print(e)
    return 0


# -- the parser --------------------------------------------------------------------------------

def _command(commands, name, help, examples, description=None):
    return commands.add_parser(
        name, help=help, description=(description or help[0].upper() + help[1:] + "."),
        epilog="example" + ("s" if "\n" in examples else "") + ":\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser():
    parser = _Parser(prog="cbackprop", description=__doc__.split("\n\n")[0],
                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = _command(commands, "demo", "train XOR and the two spirals; print loss, accuracy, speed",
                 "  cbackprop demo\n  cbackprop demo --epochs 3000 --seed 1 --plot demo.png",
                 "Train XOR and the two spirals (Lang and Witbrock 1988) from data generated "
                 "in code, print\nprogress, final loss and accuracy, and the speed of the "
                 "compiled engine next to the NumPy\nreference on the same task. No files, "
                 "no network.")
    p.add_argument("--epochs", type=int, default=6000, help="two-spirals epochs (default 6000)")
    p.add_argument("--seed", type=int, default=0, help="initialisation seed (default 0)")
    p.add_argument("--plot", metavar="FILE.png",
                   help="also draw the loss curves and the spirals' decision regions "
                        "(needs matplotlib)")

    p = _command(
        commands, "train", "train a network on a CSV or .npz file and save it",
        "  cbackprop train iris.csv --target species --layers 16 --out iris.npz\n"
        "  cbackprop train houses.csv --target price --drop id --layers 64,32 --activation relu"
        " \\\n      --epochs 300 --validation-split 0.2 --out houses.npz --plot loss.png",
        "Train a network on DATA and save it, with the standardisation of its inputs, to "
        "--out.\n\nDATA is a CSV file with a header row (the target column named by "
        "--target, every other\ncolumn a numeric feature unless --features or --drop say "
        "otherwise) or an .npz file with\narrays X (rows, features) and y (and optionally "
        "feature_names). A target of integers or\ntext is a classification (softmax output, "
        "one unit per label, cross-entropy loss); one\nof other numbers is a regression "
        "(linear output, squared error; the target is\nstandardised too). --layers gives "
        "only the HIDDEN layers: the input width is the number\nof features and the output "
        "width the number of labels (1 for a regression).\n\nEach feature is standardised "
        "with the mean and standard deviation of the training rows\n(the validation rows "
        "are held out first); the model file keeps them, so predict and\nevaluate scale new "
        "data the same way. The file loads with cbackprop.load() as well.\n\nA progress "
        "line follows each tenth of the run (and at least every 30 s): the loss,\naccuracy "
        "and RMSE as they were during the epoch (each sample scored before its step),\n"
        "val_ values after it. Ctrl-C stops the run without saving.")
    p.add_argument("data", metavar="DATA", help="a .csv file (header row) or an .npz with X, y")
    p.add_argument("--target", metavar="COLUMN",
                   help="the column to predict (for .npz: the array, default y)")
    p.add_argument("--out", required=True, metavar="MODEL.npz", help="where to save the model")
    p.add_argument("--layers", default="32,16", metavar="W1,W2,...",
                   help="hidden-layer widths (default 32,16; 'none' for no hidden layer)")
    p.add_argument("--activation", default="tanh", metavar="NAME",
                   help=f"hidden activation, or one per hidden layer: "
                        f"{', '.join(HIDDEN_ACTIVATIONS)} (default tanh)")
    p.add_argument("--loss", choices=["cross_entropy", "mse"],
                   help="default cross_entropy for classification, mse for regression")
    p.add_argument("--task", choices=["auto", "classification", "regression"], default="auto",
                   help="default auto: integer or text targets are labels, others values")
    p.add_argument("--optimizer", choices=["adam", "sgd", "adamw", "rprop"], default="adam",
                   help="default adam")
    p.add_argument("--lr", type=float, help="learning rate (default 0.001 for adam/adamw, "
                                            "0.1 for sgd; rprop has none)")
    p.add_argument("--momentum", type=float, default=0.0, help="SGD momentum (default 0)")
    p.add_argument("--batch-size", type=int, metavar="B", help="rows per step (default 32)")
    p.add_argument("--epochs", type=int, default=200, help="passes over the data (default 200)")
    p.add_argument("--validation-split", type=float, default=0.2, metavar="F",
                   help="fraction of rows held out to validate (default 0.2; 0 for none)")
    p.add_argument("--patience", type=int, metavar="N",
                   help="stop after N epochs without a better validation loss and keep the "
                        "best epoch (default: train every epoch)")
    p.add_argument("--features", metavar="A,B,...", help="the feature columns (default: all "
                                                          "but the target)")
    p.add_argument("--drop", metavar="A,B,...", help="columns that are not features (an id)")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                   help="precision (default float64)")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds initialisation, the validation split and shuffling (default 0: "
                        "runs repeat exactly)")
    p.add_argument("--plot", metavar="FILE.png",
                   help="draw the loss (and accuracy) per epoch (needs matplotlib)")

    p = _command(
        commands, "predict", "predict with a model from 'cbackprop train'",
        "  cbackprop predict iris.npz new-flowers.csv\n"
        "  cbackprop predict iris.npz new-flowers.csv --probabilities --out predictions.csv",
        "Predict for every row of DATA with a model saved by 'cbackprop train': its label "
        "(classifier)\nor value (regressor), as CSV with a header, in the order of the rows. "
        "DATA needs the\nfeature columns the model was trained on (by name, in any order); "
        "other columns, such as\nthe target, are ignored.")
    p.add_argument("model", metavar="MODEL.npz")
    p.add_argument("data", metavar="DATA", help="a .csv file (header row) or an .npz with X")
    p.add_argument("--out", metavar="FILE.csv", help="write there instead of to stdout")
    p.add_argument("--probabilities", action="store_true",
                   help="add each label's probability (classifiers)")

    p = _command(
        commands, "evaluate", "score a model from 'cbackprop train' on labelled data",
        "  cbackprop evaluate iris.npz test.csv\n"
        "  cbackprop evaluate houses.npz houses-2025.csv --target price",
        "Score a model saved by 'cbackprop train' on DATA, which holds the true targets: "
        "accuracy\nand a confusion matrix (with recall and precision) for a classifier, RMSE, "
        "MAE and R²\nfor a regressor.")
    p.add_argument("model", metavar="MODEL.npz")
    p.add_argument("data", metavar="DATA", help="a .csv file (header row) or an .npz with X, y")
    p.add_argument("--target", metavar="COLUMN",
                   help="the column of true targets (default: the one the model was trained on)")

    p = _command(
        commands, "bench", "time the compiled engine against the NumPy reference",
        "  cbackprop bench\n  cbackprop bench --seconds 10 --threads 1",
        "Train sigmoid networks of three sizes (2-8-1, 64-30-10, 784-128-10) by online and "
        "mini-batch\n(64) SGD in float32 and float64, with the compiled engine and with the "
        "NumPy reference\n(cbackprop.reference.train_epoch), and print samples per second and "
        "their ratio. Each row\nalso checks that both engines reach the same weights.")
    p.add_argument("--seconds", type=float, default=60.0,
                   help="total time to spend measuring (default 60)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="BLAS threads for both engines (default: BLAS's own setting)")

    p = commands.add_parser(
        "explain", help="print the chain rule for one weight, factor by factor",
        description="Example: cbackprop explain --sizes 3,3,1 --weight 2,1,2 --seed 0\n"
                    "         cbackprop explain --model net.npz --x 0.1,0.5,0.9 --y 1 "
                    "--weight 1,2,3",
        formatter_class=argparse.RawDescriptionHelpFormatter, one_line=False)
    p.add_argument("--sizes", default="3,3,1", help="layer widths (default 3,3,1)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--weight", default="2,1,2",
                       help="l,i,j of w_ij^(l), 1-based (default 2,1,2)")
    where.add_argument("--bias", help="l,i of b_i^(l), 1-based")
    p.add_argument("--activation", default="sigmoid",
                   help="every layer's activation, or one per layer: tanh,softmax")
    p.add_argument("--loss", default="mse", choices=["mse", "cross_entropy"])
    p.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    p.add_argument("--seed", type=int, default=0, help="initialisation and sample seed")
    p.add_argument("--model", help="a network saved with Network.save (needs --x and --y)")
    p.add_argument("--x", help="the sample's inputs, comma-separated")
    p.add_argument("--y", help="its targets, comma-separated")
    return parser, commands


COMMANDS = {"demo": demo, "train": train_command, "predict": predict_command,
            "evaluate": evaluate_command, "bench": bench_command}


def main(argv=None):
    parser, commands = build_parser()
    args, unknown = parser.parse_known_args(argv)
    command = commands.choices[args.command]
    if unknown:
        message = f"unrecognized arguments: {' '.join(unknown)}"
        if args.command == "explain":
            argparse.ArgumentParser.error(parser, message)     # its form, as before
        command.error(message)
    if getattr(args, "seed", 0) < 0:
        command.error(f"--seed must be >= 0, got {args.seed}")
    if args.command == "explain":
        return explain(args, command)
    if args.command == "demo" and args.epochs < 1:
        command.error("--epochs must be >= 1")
    try:
        return COMMANDS[args.command](args)
    except CommandError as exc:
        command.error(str(exc))
    except FloatingPointError as exc:      # TrainingDiverged, or outputs that overflow
        print(f"{command.prog}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        saved = "; nothing was saved" if args.command == "train" else ""
        print(f"\n{command.prog}: interrupted{saved}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of stdout went away (| head): stop quietly, as other tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
