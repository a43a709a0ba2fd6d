"""Command line: ``cbackprop demo`` (also ``python -m cbackprop demo``)."""

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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="cbackprop", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("demo", help="train XOR and the two spirals; print loss, accuracy, speed",
                            description="Example: cbackprop demo --epochs 6000 --seed 0")
    p.add_argument("--epochs", type=int, default=6000, help="two-spirals epochs (default 6000)")
    p.add_argument("--seed", type=int, default=0, help="initialisation seed (default 0)")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")
    return demo(args)


if __name__ == "__main__":
    sys.exit(main())
