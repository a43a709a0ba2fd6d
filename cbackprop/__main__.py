"""Command line: ``cbackprop demo`` and ``cbackprop explain`` (also ``python -m cbackprop``)."""

import argparse
import sys
import time

import numpy as np

from . import reference
from ._dispatch import kernel_level
from .datasets import two_spirals, xor
from .network import Network


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


def demo(args):
    print("cbackprop demo: backpropagation compiled, on tasks generated in code\n")
    X, y = xor()
    net = Network([2, 4, 1], "sigmoid", seed=args.seed)
    history = net.train(X, y, epochs=3000, lr=2.0)
    print(f"XOR 2-4-1 sigmoid, 3000 epochs of online SGD: loss {history.loss[-1]:.5f}, "
          f"accuracy {_accuracy(net, X, y):.0%}, outputs {np.round(net.forward(X)[:, 0], 3)}")

    X, y = two_spirals()
    X = X * (3 / 6.5)   # the original coordinates, scaled into [-3, 3]
    sizes, lr, momentum = [2, 40, 40, 1], 0.002, 0.9
    net = Network(sizes, ["tanh", "tanh", "sigmoid"], "cross_entropy", seed=args.seed)
    print(f"\nTwo spirals ({len(X)} points), {'-'.join(map(str, sizes))} tanh/sigmoid, "
          f"cross-entropy, online SGD lr={lr} momentum={momentum}:")
    chunk = max(1, args.epochs // 10)
    done, start = 0, time.perf_counter()
    while done < args.epochs:
        step = min(chunk, args.epochs - done)
        history = net.train(X, y, epochs=step, lr=lr, momentum=momentum)
        done += step
        print(f"  epoch {done:5d}  loss {history.loss[-1]:.4f}  "
              f"accuracy {_accuracy(net, X, y):6.1%}")
    print(f"  trained in {time.perf_counter() - start:.2f} s")

    compiled, ref = _samples_per_second(net, X, y, lr, momentum, epochs=10)
    print(f"\nOnline SGD on this task: compiled {compiled:,.0f} samples/s, "
          f"NumPy reference {ref:,.0f} samples/s ({compiled / ref:.0f}x); "
          f"kernels: {kernel_level}")
    return 0


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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="cbackprop", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("demo", help="train XOR and the two spirals; print loss, accuracy, speed",
                            description="Example: cbackprop demo --epochs 6000 --seed 0")
    p.add_argument("--epochs", type=int, default=6000, help="two-spirals epochs (default 6000)")
    p.add_argument("--seed", type=int, default=0, help="initialisation seed (default 0)")
    p = commands.add_parser(
        "explain", help="print the chain rule for one weight, factor by factor",
        description="Example: cbackprop explain --sizes 3,3,1 --weight 2,1,2 --seed 0\n"
                    "         cbackprop explain --model net.npz --x 0.1,0.5,0.9 --y 1 "
                    "--weight 1,2,3",
        formatter_class=argparse.RawDescriptionHelpFormatter)
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
    args = parser.parse_args(argv)
    if getattr(args, "seed", 0) < 0:
        commands.choices[args.command].error(f"--seed must be >= 0, got {args.seed}")
    if args.command == "explain":
        return explain(args, commands.choices["explain"])
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")
    return demo(args)


if __name__ == "__main__":
    sys.exit(main())
