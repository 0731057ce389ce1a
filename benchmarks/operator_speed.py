#!/usr/bin/env python
"""Seconds per slice of the VDM methods at their default settings on every operator, and
the share of that time spent outside the network (data consistency, phase, set-up).

For each task (super-resolution 4×, single-coil Cartesian 4×, Poisson-disc 8×, Cartesian 4×
with a smooth phase, 8 coils Cartesian 8× with ESPIRiT maps and noise) the same held-out
slices (the shipped test slices) are reconstructed, one after the other, by
``GuidedVDMRecon`` at its defaults (fast sampler, 50 steps, one sample) and by
``PnPVDMRecon`` at its defaults (30 steps), after one untimed warm-up; torch runs with one
thread (``--threads``). Writes a Markdown table (and JSON with ``--json``).

    python benchmarks/operator_speed.py --slices 3
"""
import argparse
import json
import pathlib
import sys
import time

import numpy as np

try:
    import mrirecon_vdm  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

TASKS = {  # name: (Task options, factor, extra GuidedVDMRecon / PnP options)
    "sr 4×": (dict(task="sr"), 4, {}),
    "cartesian 4×": (dict(task="cartesian"), 4, {}),
    "poisson 8×": (dict(task="poisson"), 8, {}),
    "cartesian 4×, smooth phase": (dict(task="cartesian", phase="smooth"), 4,
                                   {"phase": "auto"}),
    "8 coils, cartesian 8×": (dict(task="cartesian", coils=8, center_fraction=0.1), 8, {}),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--slices", type=int, default=3, help="shipped test slices (default 3)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args(argv)

    import torch

    import mrirecon_vdm as mv
    from mrirecon_vdm.bench.tasks import Task, simulate_task
    from mrirecon_vdm.data import shipped_test_slices
    from mrirecon_vdm.pnp import PnPVDMRecon

    torch.set_num_threads(args.threads)
    prior = mv.load_pretrained()
    xs = shipped_test_slices()[:args.slices]
    rows = []
    for name, (topts, factor, extra) in TASKS.items():
        ops, ys, info = simulate_task(xs, Task(**topts), factor, seed=0)
        for method in ("guided", "pnp"):
            def make(i):
                if method == "guided":
                    return mv.GuidedVDMRecon(ys[i], ops[i], prior, seed=0, show_pbar=False,
                                             **extra)
                return PnPVDMRecon(ys[i], ops[i], prior, **extra)
            make(0).run()                                    # untimed warm-up
            total = net = 0.0
            dc = "-"
            for i in range(len(xs)):
                start = time.perf_counter()
                app = make(i)
                app.run()
                total += time.perf_counter() - start
                net += app.time_network
                dc = getattr(getattr(app, "dc", None), "method", "gradient")
                if method == "pnp":
                    dc = app.data_step + (f", {app.dc.method}" if app.dc is not None else "")
            row = {"task": name, "method": method, "seconds_per_slice": total / len(xs),
                   "share_outside_network": 1 - net / total, "data_consistency": dc,
                   "nfe": app.nfe, "slices": len(xs)}
            rows.append(row)
            print(f"{name:28s} {method:7s} {row['seconds_per_slice']:.2f} s/slice, "
                  f"{100 * row['share_outside_network']:.1f} % outside the network ({dc})",
                  file=sys.stderr, flush=True)
    print("| task | method | s / slice | outside the network | data consistency | NFE |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['task']} | {r['method']} | {r['seconds_per_slice']:.2f} | "
              f"{100 * r['share_outside_network']:.1f} % | {r['data_consistency']} | "
              f"{r['nfe']} |")
    if args.json:
        from mrirecon_vdm._atomic import atomic_write_text
        atomic_write_text(args.json, json.dumps({"threads": args.threads, "rows": rows},
                                                indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
