#!/usr/bin/env python
"""What the two noise bounds of a single-coil measurement with a phase read on validation
slices: the calibration misfit (:func:`mrirecon_vdm.noise.estimate_sigma` with the bound
switched off) and :func:`mrirecon_vdm.noise.highpass_sigma` at several quantiles, for the
benchmark's Cartesian 4× task with a smooth phase, noiseless and with k-space noise.

    python benchmarks/sigma_bounds.py [--sigma 0 0.01 0.05] [--json FILE]

The table of ``docs/sampler.md`` ("The noise level σ̂") came from it. Validation data only.
"""
import argparse
import json
import pathlib
import sys

try:
    import mrirecon_vdm  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sigma", type=float, nargs="+", default=[0.0, 0.01, 0.05])
    ap.add_argument("--quantiles", type=float, nargs="+", default=[0.5, 0.1])
    ap.add_argument("--split", default="val_person", choices=["val_person", "val_coronal", "val_t2"])
    ap.add_argument("--data", help="slices (n, H, W) in a .npy file instead of --split")
    ap.add_argument("--offset", type=int, default=4)
    ap.add_argument("--stride", type=int, default=8)
    ap.add_argument("--count", type=int, default=6)
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args(argv)

    from mrirecon_vdm.bench.runner import load_data
    from mrirecon_vdm.bench.tasks import Task, simulate_task
    from mrirecon_vdm.noise import estimate_sigma, highpass_sigma
    from mrirecon_vdm.phase import apply_phase

    images, _ = load_data(data=args.data, split=args.split)
    idx = list(range(args.offset, images.shape[0], args.stride))[:args.count]
    rows = []
    for sigma in args.sigma:
        task = Task(task="cartesian", phase="smooth", sigma=sigma)
        ops, ys, _ = simulate_task(images[idx], task, 4, seed=0)
        row = {"sigma": sigma, "slices": idx, "misfit": [], "highpass": {}}
        for A, y in zip(ops, ys):
            Ap = apply_phase("auto", y, A)[0]
            row["misfit"].append(estimate_sigma(y, Ap, upper=float("inf")))
            for q in args.quantiles:
                row["highpass"].setdefault(str(q), []).append(highpass_sigma(y, Ap, quantile=q))
        rows.append(row)

        def span(v):
            return f"{min(v):.3f}–{max(v):.3f}"
        print(f"σ = {sigma:<5g} misfit {span(row['misfit'])}  " + "  ".join(
            f"bound q={q} {span(v)}" for q, v in row["highpass"].items()), flush=True)
    if args.json:
        from mrirecon_vdm._atomic import atomic_write_text
        atomic_write_text(args.json, json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
