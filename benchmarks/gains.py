#!/usr/bin/env python
"""Paired gains of the learned methods over the best classical method, from a benchmark.

Reads the per-slice table ``bench_slices.csv`` that ``mrirecon-vdm bench`` writes and, per
scale factor, picks the best classical method (the highest mean of each metric over the
slices among all the methods with no network evaluations, the constrained ``-real`` /
``-phase`` ones included) and gives, for each learned method,
the mean of its per-slice difference to it with a 95 % confidence interval (Student t over
the slices: the methods ran on the same slices and measurements, so the differences are
paired), and the number of slices where it was better.

    python benchmarks/gains.py results/bench/bench_slices.csv
    python benchmarks/gains.py results/bench/bench_slices.csv --metric ssim
    python benchmarks/gains.py classical/bench_slices.csv vdm/bench_slices.csv --out summary.md

Several tables (runs of the same slices, e.g. the classical methods and the VDM methods run
apart) are merged; a (method, scale, slice) present twice is an error. ``--out`` writes the
summary the docs quote (:func:`summary`): every method's mean ± std over the slices (the
table of ``bench.md``) and the paired gains in PSNR and in SSIM.
"""
import argparse
import csv
import math
import pathlib
import sys

import numpy as np

try:
    import mrirecon_vdm  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

METRICS = ("psnr", "ssim")


def read_slices(*paths):
    """``{(method, scale): {slice: row}}`` from one or more ``bench_slices.csv``."""
    table = {}
    for path in paths:
        _read_one(pathlib.Path(path), table)
    if not table:
        raise ValueError(f"{', '.join(map(str, paths))}: no rows")
    return table


def _read_one(path, table):
    if not path.exists():
        raise FileNotFoundError(f"{path}: not found (mrirecon-vdm bench writes bench_slices.csv)")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        need = {"method", "scale", "slice", "nfe", *METRICS}
        if reader.fieldnames is None or not need <= set(reader.fieldnames):
            raise ValueError(f"{path}: expected the columns {sorted(need)}, got "
                             f"{reader.fieldnames}")
        for r in reader:
            rows = table.setdefault((r["method"], int(r["scale"])), {})
            if int(r["slice"]) in rows:
                raise ValueError(f"{path}: {r['method']} at {r['scale']}x, slice {r['slice']} "
                                 f"is in more than one table")
            rows[int(r["slice"])] = r


def t95(dof):
    """Two-sided 95 % quantile of Student's t with ``dof`` degrees of freedom."""
    from scipy import stats
    return float(stats.t.ppf(0.975, dof))


def gains(table, metric="psnr"):
    """Rows ``{scale, method, reference, gain, ci95, better, n}`` (see the module docstring)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    out = []
    for scale in sorted({s for _, s in table}, reverse=True):
        methods = {m: rows for (m, s), rows in table.items() if s == scale}
        classical = {m: rows for m, rows in methods.items()
                     if all(int(r["nfe"]) == 0 for r in rows.values())}
        learned = {m: rows for m, rows in methods.items() if m not in classical}
        if not classical or not learned:
            continue
        best = max(classical, key=lambda m: np.mean([float(r[metric])
                                                     for r in classical[m].values()]))
        ref = classical[best]
        for m, rows in learned.items():
            common = sorted(set(rows) & set(ref))
            if set(rows) != set(ref):
                raise ValueError(f"{m} and {best} at {scale}x were run on different slices")
            d = np.array([float(rows[i][metric]) - float(ref[i][metric]) for i in common])
            n = len(d)
            ci = t95(n - 1) * d.std(ddof=1) / math.sqrt(n) if n > 1 else float("nan")
            out.append({"scale": scale, "method": m, "reference": best,
                        "gain": float(d.mean()), "ci95": ci, "better": int((d > 0).sum()),
                        "n": n})
    return out


def markdown(rows, metric):
    unit = " (dB)" if metric == "psnr" else ""
    lines = [f"| scale | method | best classical ({metric.upper()}) | gain{unit} | 95 % CI | "
             f"slices better |", "|---|---|---|---|---|---|"]
    fmt = ".2f" if metric == "psnr" else ".3f"
    for r in rows:
        lines.append(f"| {r['scale']}× | {r['method']} | {r['reference']} | "
                     f"{r['gain']:+{fmt}} | ± {r['ci95']:{fmt}} | {r['better']} / {r['n']} |")
    return "\n".join(lines)


def means(table):
    """Rows of ``bench.md`` (:func:`mrirecon_vdm.bench.tables.markdown_table`) from the
    per-slice table: mean and std (ddof 0) over the slices, mean seconds, NFE; the larger
    scale factor first."""
    out = []
    for (m, scale), rows in sorted(table.items(), key=lambda kv: -kv[0][1]):
        r = list(rows.values())
        row = {"method": m, "scale": scale}
        for k in ("psnr", "ssim", "nrmse", "hfen"):
            v = np.array([float(x[k]) for x in r])
            row[k], row[k + "_std"] = float(v.mean()), float(v.std())
        row["seconds_per_slice"] = float(np.mean([float(x["seconds"]) for x in r]))
        row["nfe"] = int(np.mean([int(x["nfe"]) for x in r]))
        out.append(row)
    return out


def summary(table):
    """The Markdown summary of a run: :func:`means`, then the paired gains in PSNR and SSIM."""
    from mrirecon_vdm.bench.tables import markdown_table
    n = sorted({len(rows) for rows in table.values()})
    parts = [f"Mean ± std over the slices ({' / '.join(map(str, n))} slices):", "",
             markdown_table(means(table))]
    for metric in METRICS:
        parts += ["", f"Paired {metric.upper()} gain over the best classical method (95 % "
                      "interval, Student t):", "", markdown(gains(table, metric), metric)]
    return "\n".join(parts)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("slices", nargs="+",
                   help="bench_slices.csv written by mrirecon-vdm bench (several are merged)")
    p.add_argument("--metric", default="psnr", choices=METRICS)
    p.add_argument("--out", help="also write the summary here (Markdown, atomically): every "
                                 "method's means and the gains in PSNR and SSIM")
    args = p.parse_args(argv)
    try:
        table = read_slices(*args.slices)
        rows = gains(table, args.metric)
        text = summary(table) if args.out else None
    except (ValueError, FileNotFoundError) as e:
        print(f"gains: error: {e}", file=sys.stderr)
        return 2
    print(markdown(rows, args.metric))
    if args.out:
        from mrirecon_vdm._atomic import atomic_write_text
        atomic_write_text(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
