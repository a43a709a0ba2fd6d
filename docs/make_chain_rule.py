"""Writes docs/chain-rule.md: every code block in it is run here and its output pasted below
it, so every number on the page comes from the library. tests/test_docs.py checks the page
against a fresh run.

    python docs/make_chain_rule.py           # rewrite the page
    python docs/make_chain_rule.py --check   # exit 1 if the page is out of date
"""

import contextlib
import io
import os
import sys

PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "chain-rule.md")

# The page: prose (str) and code (("code", source)); code runs in one shared namespace.
SECTIONS = [
    """\
# The chain rule, step by step

Backpropagation is the chain rule applied one layer at a time. This page follows two small
networks through one forward pass, the chain rule for single weights, and one update, with
the numbers `cbackprop` prints. Every code block below was run to make this page (by
[`docs/make_chain_rule.py`](make_chain_rule.py)); a test runs it again and checks that the
page still says what the library says.

Notation, as in the classic neural-networks tutorial: layers are numbered from 1 (the input)
to `nl` (the output).

    z^(l+1) = W^(l) h^(l) + b^(l)          h^(l+1) = f(z^(l+1))          h^(1) = x
    J = 1/2 ||y - h^(nl)||^2                (one sample)
    delta^(nl) = -(y - h^(nl)) * f'(z^(nl))
    delta^(l)  = (W^(l))^T delta^(l+1) * f'(z^(l))
    dJ/dW^(l)  = delta^(l+1) (h^(l))^T      dJ/db^(l) = delta^(l+1)

`w_ij^(l)` is the weight from node `j` of layer `l` to node `i` of layer `l+1`; in code it is
`net.weights[l - 1][i - 1, j - 1]`. For the sigmoid `f(z) = 1 / (1 + e^-z)` the derivative is
written from the output, `f'(z) = h (1 - h)`.

A note on one index. The widely copied form of the output-layer equation is

    dJ/dw_12^(2) = dJ/dh_1^(3) * dh_1^(3)/dz_1^(2) * dz_1^(2)/dw_12^(2)

but with `z^(l+1) = W^(l) h^(l) + b^(l)` the input sum of output node 1 is `z_1^(3)`, not
`z_1^(2)`: `h_1^(3) = f(z_1^(3))`. This page, and `net.explain`, write `z_1^(3)`.

## 1. One input, one hidden node, one output

The smallest network with a hidden layer: `x -> w^(1), b^(1) -> sigmoid -> w^(2), b^(2) ->
sigmoid`, and one sample with target `y = 1`.
""",
    ("code", """\
import numpy as np
import cbackprop

net = cbackprop.Network([1, 1, 1], activations="sigmoid", loss="mse")
net.weights = [[[0.2]], [[0.4]]]          # w^(1), w^(2)
net.biases = [[0.1], [-0.3]]              # b^(1), b^(2)
x, y = np.array([1.5]), np.array([1.0])
"""),
    """\
### The forward pass

Each layer sums its inputs and squashes the sum:
""",
    ("code", """\
w1, b1 = net.weights[0][0, 0], net.biases[0][0]
w2, b2 = net.weights[1][0, 0], net.biases[1][0]
z2 = w1 * x[0] + b1
h2 = 1 / (1 + np.exp(-z2))
z3 = w2 * h2 + b2
h3 = 1 / (1 + np.exp(-z3))
print(f"z^(2) = w^(1) x + b^(1)   = {w1:g} * {x[0]:g} + {b1:g} = {z2:.6g}")
print(f"h^(2) = f(z^(2))          = {h2:.6g}")
print(f"z^(3) = w^(2) h^(2) + b^(2) = {w2:g} * {h2:.6g} + ({b2:g}) = {z3:.6g}")
print(f"h^(3) = f(z^(3))          = {h3:.6g}")
print(f"J = 1/2 (y - h^(3))^2     = {0.5 * (y[0] - h3) ** 2:.6g}")
print(f"the compiled forward pass: h^(3) = {net.forward(x)[0]:.6g}, J = {net.loss(x, y):.6g}")
"""),
    """\
### The chain rule for the output weight

`J` depends on `w^(2)` through `z^(3)` and then `h^(3)`, so its derivative is the product of
three factors. `net.explain(x, y, layer, i, j)` computes each one from the same compiled
forward and backward passes that train the network, and checks the product against the
compiled gradient and a central finite difference:
""",
    ("code", """\
print(net.explain(x, y, layer=2, i=1, j=1))
"""),
    """\
Read it line by line: the symbols, the formula of each factor for this loss and activation,
their values, and the product. The first two factors together are `delta_1^(3)`, the output
node's delta.

### The chain rule for the hidden weight

`w^(1)` reaches `J` only through `h^(2)`, which feeds the output. So `dJ/dh^(2)` is the sum,
over every node `k` of the next layer, of `w_k1^(2) delta_k^(3)`: here a single path.
""",
    ("code", """\
print(net.explain(x, y, layer=1, i=1, j=1))
"""),
    """\
### One update

Gradient descent moves every parameter against its derivative, `p <- p - lr * dJ/dp`. With
`lr = 0.5`, by hand and then by one step of online training:
""",
    ("code", """\
lr = 0.5
dW, db = net.gradients(x, y)
by_hand = [net.weights[0] - lr * dW[0], net.weights[1] - lr * dW[1]]
print(f"w^(2) - lr dJ/dw^(2) = {w2:g} - {lr:g} * ({dW[1][0, 0]:.6g}) = {by_hand[1][0, 0]:.6g}")
print(f"w^(1) - lr dJ/dw^(1) = {w1:g} - {lr:g} * ({dW[0][0, 0]:.6g}) = {by_hand[0][0, 0]:.6g}")
before = net.loss(x, y)
net.train(x.reshape(1, 1), y.reshape(1, 1), epochs=1, lr=lr, batch_size=1, shuffle=False)
print(f"after net.train: w^(1) = {net.weights[0][0, 0]:.6g}, w^(2) = {net.weights[1][0, 0]:.6g}")
print(f"J: {before:.6g} before the step, {net.loss(x, y):.6g} after")
"""),
    """\
## 2. The tutorial's 3-3-1 network

Three inputs, three hidden nodes, one output, all sigmoid, with the tutorial's weights:
every weight into hidden node 1 is 0.2, into node 2 is 0.4, into node 3 is 0.6; the hidden
biases are 0.8; the output weights are 0.5 and its bias 0.2.
""",
    ("code", """\
net = cbackprop.Network([3, 3, 1], activations="sigmoid", loss="mse")
net.weights = [[[0.2] * 3, [0.4] * 3, [0.6] * 3], [[0.5] * 3]]
net.biases = [[0.8] * 3, [0.2]]
x, y = np.array([1.5, 2.0, 3.0]), np.array([1.0])

z2 = net.weights[0] @ x + net.biases[0]
h2 = 1 / (1 + np.exp(-z2))
print("z^(2) = W^(1) x + b^(1) =", np.round(z2, 6))
print("h^(2) = f(z^(2))        =", np.round(h2, 6))
print(f"h^(3) = {net.forward(x)[0]:.6g}, J = {net.loss(x, y):.6g}")
"""),
    """\
### The tutorial's equation, `dJ/dw_12^(2)`

`w_12^(2)` joins hidden node 2 to output node 1:
""",
    ("code", """\
e = net.explain(x, y, layer=2, i=1, j=2)
print(e)
"""),
    """\
In a notebook, `e` renders as LaTeX (`e._repr_latex_()`).

### A hidden weight, `dJ/dw_12^(1)`

`w_12^(1)` joins input 2 to hidden node 1. The path to `J` now runs through every node of
the next layer; with one output there is one term in the sum.
""",
    ("code", """\
print(net.explain(x, y, layer=1, i=1, j=2))
"""),
    """\
### The whole layer at once

`dJ/dW^(2) = delta^(3) (h^(2))^T`: the output delta times each hidden output, which is what
the compiled kernels compute for every weight together:
""",
    ("code", """\
dW, db = net.gradients(x, y)
delta3 = db[1][0]                      # dJ/db^(2) = delta^(3)
print(f"delta^(3) = {delta3:.6g}")
print("delta^(3) h^(2)T =", np.round(delta3 * h2, 6))
print("net.gradients    =", np.round(dW[1][0], 6))
"""),
    """\
### Checking every gradient

`cbackprop.gradcheck` compares the compiled gradient of the mean loss with central
differences for every parameter (a random subset for big networks):
""",
    ("code", """\
print(cbackprop.gradcheck(net, x, y))
"""),
    """\
The same explanation is on the command line: `cbackprop explain --sizes 3,3,1 --weight 2,1,2`
(and `--model net.npz --x ... --y ...` for a saved network).
""",
]


def render():
    """The page's Markdown, running every code block."""
    namespace = {}
    out = []
    for section in SECTIONS:
        if isinstance(section, str):
            out.append(section)
            continue
        source = section[1]
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            exec(compile(source, PAGE, "exec"), namespace)
        out.append("```python\n" + source + "```\n")
        printed = buffer.getvalue()
        if printed:
            out.append("```\n" + printed + "```\n")
    return "\n".join(out)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in argv:
        with open(PAGE) as f:
            if f.read() != text:
                print(f"{PAGE} is out of date: run python docs/make_chain_rule.py")
                return 1
        return 0
    with open(PAGE, "w") as f:
        f.write(text)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

