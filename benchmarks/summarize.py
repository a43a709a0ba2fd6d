"""Condense the plain output of benchmarks/compare.py into the README's table.

    python benchmarks/compare.py > table.txt && python benchmarks/summarize.py table.txt

One Markdown row per workload, dtype and thread count: cbackprop's samples/s, the fastest
other contender that passed the reference check, the ratio, and cbackprop's share of the
measured gemm peak.
"""

import argparse
import re

ROW = re.compile(r"^(\S+)\s+(float\d\d)\s+(\d)(\*?)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(ok.*)$")


def parse_rate(text):
    scale = {"k": 1e3, "M": 1e6}.get(text[-1], 1)
    return float(text.rstrip("kM")) * scale


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", help="a file holding compare.py's plain-text output")
    args = parser.parse_args(argv)
    groups = {}
    for line in open(args.table):
        m = ROW.match(line.rstrip())
        if m:
            row, dtype, threads, _, who, rate, _, _, peak, _ = m.groups()
            groups.setdefault((row, dtype, threads), []).append((who, parse_rate(rate), rate, peak))
    print("| row | dtype | threads | cbackprop | best other | ratio | cbackprop % of gemm peak |")
    print("|---|---|---|---|---|---|---|")
    for (row, dtype, threads), entries in groups.items():
        ours = [e for e in entries if e[0] == "cbackprop"]
        others = sorted((e for e in entries if e[0] != "cbackprop"), key=lambda e: -e[1])
        if not ours or not others:
            continue
        best = others[0]
        print(f"| {row} | {dtype} | {threads} | {ours[0][2]} | {best[0]} {best[2]} | "
              f"{ours[0][1] / best[1]:.2f} | {ours[0][3]} |")


if __name__ == "__main__":
    main()
