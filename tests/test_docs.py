"""The chain-rule page (docs/chain-rule.md) says what the library says: it is rendered again
by running every code block and compared with the committed page."""

import os
import re
import sys

import pytest

DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs")

# Round-off-level numbers (a finite difference's error) differ between kernel builds and
# machines; they are compared by size, everything else to the letter.
NOISE = re.compile(r"(relative difference |max relative error |W\^\(\d\) |b\^\(\d\) )"
                   r"([0-9.]+e[-+]\d+)")


def _masked(text):
    return NOISE.sub(lambda m: m.group(1) + "<round-off>", text)


@pytest.fixture(scope="module")
def pages():
    if not os.path.exists(os.path.join(DOCS, "make_chain_rule.py")):
        pytest.skip("docs/ is not part of this installation (run the tests from the source tree)")
    sys.path.insert(0, DOCS)
    try:
        import make_chain_rule
    finally:
        sys.path.remove(DOCS)
    with open(make_chain_rule.PAGE) as f:
        committed = f.read()
    return committed, make_chain_rule.render()


def test_every_number_on_the_chain_rule_page_comes_from_the_library(pages):
    committed, fresh = pages
    assert _masked(committed) == _masked(fresh), (
        "docs/chain-rule.md is out of date: run python docs/make_chain_rule.py")


def test_the_page_walks_both_networks_with_the_consistent_index(pages):
    committed, _ = pages
    for text in ("dJ/dw_12^(2) = dJ/dh_1^(3) * dh_1^(3)/dz_1^(3) * dz_1^(3)/dw_12^(2)",
                 "## 1. One input, one hidden node, one output",
                 "## 2. The tutorial's 3-3-1 network", "after net.train"):
        assert text in committed
    # the widely copied z_1^(2) appears only where the page explains why it is not used
    assert committed.count("dz_1^(2)/dw_12^(2)") == 1


def test_round_off_on_the_page_is_round_off(pages):
    for text in pages:
        values = [float(m.group(2)) for m in NOISE.finditer(text)]
        assert values and max(values) < 1e-6
