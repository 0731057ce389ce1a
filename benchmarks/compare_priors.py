#!/usr/bin/env python
"""Paired comparison of priors on the same slices, and the shipping score.

Each argument is ``LABEL=bench_slices.csv`` (one ``mrirecon-vdm bench`` run of one prior on
one split; several files per label are merged, e.g. the two validation people). The first
label is the reference. For every other label, method and scale factor: the mean of the
per-slice PSNR differences to the reference (same method, scale and slices: paired), its
95 % interval (Student t) and the slices better; then the **score** of
``docs/training.md`` ("the shipping rule"): the mean of the per-cell gains of ``--method``
over the cells (person x scale), with the worst cell.

    python benchmarks/compare_priors.py \\
        S=results/generalise/val_person_S/bench_slices.csv \\
        O=results/generalise/val_person_O/bench_slices.csv --method vdm-mean4 --out compare.md

A cell is one (file position, scale): give each label its files in the same order.
"""
import argparse
import math
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from gains import read_slices, t95  # noqa: E402


def compare(runs, method):
    """``runs``: ``{label: [table, ...]}`` (tables from :func:`gains.read_slices`, one per
    person, same order for every label). Returns (rows, scores)."""
    labels = list(runs)
    ref = labels[0]
    rows, scores = [], {}
    for label in labels[1:]:
        if len(runs[label]) != len(runs[ref]):
            raise ValueError(f"{label}: {len(runs[label])} tables, the reference "
                             f"{ref} has {len(runs[ref])}")
        cells = []
        for person, (tab, rtab) in enumerate(zip(runs[label], runs[ref])):
            for (m, scale), sl in sorted(tab.items()):
                if (m, scale) not in rtab:
                    continue
                rsl = rtab[(m, scale)]
                if set(sl) != set(rsl):
                    raise ValueError(f"{label} and {ref}: {m} at {scale}x on different slices")
                d = np.array([float(sl[i]["psnr"]) - float(rsl[i]["psnr"]) for i in sorted(sl)])
                n = len(d)
                ci = t95(n - 1) * d.std(ddof=1) / math.sqrt(n) if n > 1 else float("nan")
                rows.append({"label": label, "person": person, "method": m, "scale": scale,
                             "gain": float(d.mean()), "ci95": ci, "better": int((d > 0).sum()),
                             "n": n})
                if m == method:
                    cells.append(float(d.mean()))
        if cells:
            scores[label] = {"score": float(np.mean(cells)), "worst": float(min(cells)),
                             "cells": len(cells)}
    return rows, scores


def labelled(specs, what="PATH"):
    """``[(label, path), ...]`` from ``LABEL=PATH`` arguments; ``ValueError`` naming a bad one."""
    out = []
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            raise ValueError(f"expected LABEL={what}, got {spec!r}")
        out.append((label, path))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="LABEL=bench_slices.csv (repeat a label for "
                   "several people, in the same order for every label)")
    p.add_argument("--method", default="vdm-mean4", help="method the score is taken on")
    p.add_argument("--names", nargs="*", default=None, help="names of the people, in order")
    p.add_argument("--out", help="also write the tables here (Markdown, atomically)")
    args = p.parse_args(argv)
    runs = {}
    try:
        specs = labelled(args.runs)
    except ValueError as e:
        print(f"compare_priors: error: {e}", file=sys.stderr)
        return 2
    for label, path in specs:
        runs.setdefault(label, []).append(read_slices(path))
    rows, scores = compare(runs, args.method)
    names = args.names or [f"person {i}" for i in range(max(len(v) for v in runs.values()))]
    ref = next(iter(runs))
    lines = [f"| prior | person | method | scale | PSNR gain over {ref} (dB) | 95 % CI | "
             "slices better |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {names[r['person']]} | {r['method']} | {r['scale']}× | "
                     f"{r['gain']:+.2f} | ± {r['ci95']:.2f} | {r['better']} / {r['n']} |")
    lines += ["", f"| prior | score ({args.method}, mean of cells) | worst cell | cells |",
              "|---|---|---|---|"]
    for label, s in scores.items():
        lines.append(f"| {label} | {s['score']:+.3f} | {s['worst']:+.3f} | {s['cells']} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        from mrirecon_vdm._atomic import atomic_write_text
        atomic_write_text(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
