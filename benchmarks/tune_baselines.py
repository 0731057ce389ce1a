#!/usr/bin/env python
"""Tune ``lamda`` and ``max_iter`` of the regularised baselines on a VALIDATION split.

For each method (``sigpy-wavelet``, ``sigpy-tv``, ``bart-wavelet``, ``bart-tv`` and their
constrained forms ``<name>-real`` and ``<name>-phase``) and scale
factor (4: 32 -> 128, 2: 64 -> 128), a grid search over the relative weight ``lamda``
(log grid, then a finer step around the best) and the iteration count (the solvers start
from zero; stopping early regularises too) picks the pair with the best mean PSNR over a
fixed subset of validation slices (noiseless k-space unless ``--sigma``; data range = the
subset's maximum): by default the validation person (``val_person``, a real person the VDM
prior never saw, where the VDM settings are chosen too), or ``--split val`` (the held-out
slab of the training person Colin27). The test splits are never
read. The result goes to
``mrirecon_vdm/baselines_defaults.json``, which :mod:`mrirecon_vdm.baselines` reads as its
defaults, with the whole grid's scores for provenance.

SigPy's solvers do not depend on ``max_iter``, so one run to the largest count scores every
smaller count on the way; BART runs once per count.

``--task cartesian|poisson`` (with ``--accel``, ``--coils``, ``--center-fraction``) tunes the
undersampling operators instead (the measurement of ``mrirecon-vdm bench --task``, ESPIRiT
maps with coils); the result goes to ``"tasks"`` → operator kind (``"mask"`` single coil,
``"sense"`` with coils) → method → R, which the Apps read for those operators. ``--phase
smooth`` puts the bench's smooth phase on the images.

The default methods are those that run on the task in the benchmark: the four unconstrained
ones and the constrained ones of the task's image model
(:attr:`mrirecon_vdm.bench.tasks.Task.constraint`: ``-real`` with one coil and no phase,
``-phase`` with a phase or coils); ``--constrained`` keeps only the constrained ones:

    python benchmarks/tune_baselines.py --slices 12 --constrained
    python benchmarks/tune_baselines.py --slices 4 --constrained --task cartesian --accel 4
    python benchmarks/tune_baselines.py --slices 4 --constrained --task poisson --accel 8 \\
        --phase smooth
    python benchmarks/tune_baselines.py --slices 4 --constrained --task cartesian --accel 8 \\
        --coils 8 --center-fraction 0.1

    python benchmarks/tune_baselines.py              # ~5 minutes on 2 cores
    python benchmarks/tune_baselines.py --slices 4 --dry-run
"""
import argparse
import json
import pathlib
import re
import sys
import time

import numpy as np

try:
    import mrirecon_vdm  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from mrirecon_vdm import baselines as B  # noqa: E402
from mrirecon_vdm import metrics  # noqa: E402
from mrirecon_vdm.bench.runner import simulate  # noqa: E402
from mrirecon_vdm.config import bart_available  # noqa: E402

LAMDAS = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
#: Added for noisy multi-coil data, whose best weights lie above the super-resolution grid.
LAMDAS_SENSE = LAMDAS + [3e-1, 1.0]
ITERS = [10, 25, 50, 100, 200]
REFINE = 10 ** 0.25  # finer step around the best lamda of the coarse grid


def _ops(A, n):
    return A if isinstance(A, (list, tuple)) else [A] * n


def sigpy_scores(cls, images, A, ys, lamda, iters, data_range, **kw):
    """Mean PSNR after each count in ``iters``, from one run per slice (``kw``: the
    constraint, ``real`` and ``phase``)."""
    psnrs = {it: [] for it in iters}
    for x, y, Ai in zip(images, ys, _ops(A, len(ys))):
        app = cls(y, Ai, lamda=lamda, max_iter=max(iters), **kw)
        while not app.alg.done():
            app.alg.update()
            if app.alg.iter in psnrs:
                psnrs[app.alg.iter].append(metrics.psnr(x, app.image(), data_range))
    return {it: float(np.mean(v)) for it, v in psnrs.items()}


def bart_scores(reg, images, A, ys, lamda, iters, data_range, **kw):
    out = {}
    for it in iters:
        recon = [B.BartPicsRecon(y, Ai, reg, lamda=lamda, max_iter=it, **kw).run()
                 for y, Ai in zip(ys, _ops(A, len(ys)))]
        out[it] = float(np.mean([metrics.psnr(x, r, data_range) for x, r in zip(images, recon)]))
    return out


#: The phase request of each constraint (as the benchmark's registered methods pass it).
PHASE = {"real": "none", "phase": "auto"}


def scorer(method):
    c = B.constraint_of(method)
    kw = {} if c is None else {"real": True, "phase": PHASE[c]}
    base = method if c is None else method[:-len(c) - 1]
    if base == "sigpy-wavelet":
        return lambda *a: sigpy_scores(B.L1WaveletRecon, *a, **kw)
    if base == "sigpy-tv":
        return lambda *a: sigpy_scores(B.TVRecon, *a, **kw)
    reg = base.split("-", 1)[1]
    return lambda *a: bart_scores(reg, *a, **kw)


def tune(method, images, A, ys, data_range, log, lamdas=LAMDAS):
    score = scorer(method)
    grid = {}  # (lamda, iters) -> mean PSNR
    for lam in lamdas:
        for it, p in score(images, A, ys, lam, ITERS, data_range).items():
            grid[(lam, it)] = p
    (best_lam, best_it) = max(grid, key=lambda k: (grid[k], -k[1]))
    # finer lamda step around the coarse optimum (all counts for SigPy, the best for BART)
    iters = ITERS if method.startswith("sigpy") else [best_it]
    for lam in (best_lam / REFINE, best_lam * REFINE):
        lam = float(f"{lam:.3g}")
        for it, p in score(images, A, ys, lam, iters, data_range).items():
            grid[(lam, it)] = p
    (best_lam, best_it) = max(grid, key=lambda k: (grid[k], -k[1]))
    log(f"{method:>14s}: lamda {best_lam:g}, max_iter {best_it}: "
        f"PSNR {grid[(best_lam, best_it)]:.3f}")
    return best_lam, best_it, grid


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="val_person", choices=("val_person", "val"),
                        help="validation split (default val_person)")
    parser.add_argument("--slices", type=int, default=8,
                        help="validation slices used, evenly spaced (default 8)")
    parser.add_argument("--scales", type=int, nargs="+", default=[4, 2])
    parser.add_argument("--methods", nargs="+", choices=B.REGULARISED,
                        help="default: those the benchmark runs on the task (see above)")
    parser.add_argument("--constrained", action="store_true",
                        help="without --methods: only the task's constrained methods")
    parser.add_argument("--sigma", type=float, default=None,
                        help="k-space noise (default 0; with --coils the bench's default)")
    parser.add_argument("--task", default="sr", choices=("sr", "cartesian", "poisson"))
    parser.add_argument("--accel", type=int, nargs="+", help="accelerations (undersampling)")
    parser.add_argument("--coils", type=int, default=1)
    parser.add_argument("--center-fraction", type=float, default=0.08)
    parser.add_argument("--phase", default="none", choices=("none", "smooth"),
                        help="the bench's smooth phase on the images (undersampling)")
    parser.add_argument("--out", default=str(B.DEFAULTS_PATH), help="the defaults JSON")
    parser.add_argument("--dry-run", action="store_true", help="print, do not write")
    args = parser.parse_args(argv)

    from mrirecon_vdm.data import load_split

    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    val = load_split(args.split)
    idx = np.unique(np.linspace(0, len(val) - 1, min(args.slices, len(val))).round().astype(int))
    images = val[idx]
    data_range = float(images.max())
    from mrirecon_vdm.bench.tasks import Task, simulate_task

    task = Task(args.task, center_fraction=args.center_fraction, coils=args.coils,
                phase=args.phase, sigma=args.sigma)
    if args.methods is None:
        allowed = (task.constraint,) if args.constrained else (None, task.constraint)
        args.methods = [m for m in B.REGULARISED if B.constraint_of(m) in allowed]
    methods = [m for m in args.methods if m.startswith("sigpy") or bart_available()]
    for m in sorted(set(args.methods) - set(methods)):
        log(f"note: skipping {m}: BART is not installed")

    out_path = pathlib.Path(args.out)
    table = json.loads(out_path.read_text()) if out_path.exists() else {}
    table.setdefault("methods", {})
    grids = {}
    start = time.perf_counter()
    factors = args.scales if args.task == "sr" else (args.accel or [4])
    kind = "sr" if args.task == "sr" else ("sense" if args.coils > 1 else "mask")
    for scale in factors:
        if args.task == "sr":
            A, ys = simulate(images, scale, args.sigma or 0.0, seed=0)
            log(f"scale {scale}x ({A.lr_shape} -> {A.hr_shape}), {len(images)} val slices")
            where = table["methods"]
        else:
            A, ys, info = simulate_task(images, task, scale, seed=0)
            log(f"{args.task} R={scale}, {args.coils} coil(s), phase {args.phase}, sigma "
                f"{info['sigma']:.4g}, {len(images)} val slices")
            where = table.setdefault("tasks", {}).setdefault(kind, {})
        for m in methods:
            lam, it, grid = tune(m, images, A, ys, data_range, log,
                                 LAMDAS_SENSE if kind == "sense" else LAMDAS)
            entry = where.setdefault(m, {})
            entry[str(scale)] = {"lamda": lam, "max_iter": it,
                                 "val_psnr": round(grid[(lam, it)], 3)}
            key = f"{m} {scale}" if kind == "sr" else f"{kind} {m} {scale}"
            grids[key] = [[lam_, it_, round(p, 3)] for (lam_, it_), p in sorted(grid.items())]
    minutes = (time.perf_counter() - start) / 60
    table["about"] = (
        "Defaults of mrirecon_vdm.baselines: lamda (relative to max|A^H y|) and max_iter per "
        "method and scale factor, the best mean PSNR on validation slices. Written by "
        "benchmarks/tune_baselines.py; do not edit by hand.")
    # the grids of the methods tuned now replace theirs; the others' records are kept
    gkey = "grid_psnr [lamda, max_iter, psnr]"
    if kind != "sr":
        old = table.get("tuning", {})
        record = f"{kind} {args.task}" + (f" phase {args.phase}" if args.phase != "none" else "")
        prev = old.setdefault("tasks", {}).get(record, {})
        old["tasks"][record] = {
            "split": args.split, "slice_indices": idx.tolist(), "coils": args.coils,
            "center_fraction": args.center_fraction, "sigma": task.sigma,
            **({"phase": args.phase} if args.phase != "none" else {}),
            # the minutes of every run whose grids the record holds
            "minutes": round(prev.get("minutes", 0) * bool(prev.get(gkey)) + minutes, 2),
            gkey: {**prev.get(gkey, {}), **grids}}
        table["tuning"] = old
    else:
        prev = table.get("tuning", {})
        table["tuning"] = {**prev, "split": args.split,
                           "slice_indices": idx.tolist(), "sigma": args.sigma,
                           "criterion": "mean PSNR, data range = max of the slices",
                           "lamda_grid": LAMDAS, "refine_factor": REFINE,
                           "iters_grid": ITERS,
                           "minutes": round(prev.get("minutes", 0) * bool(prev.get(gkey))
                                            + minutes, 2),
                           gkey: {**prev.get(gkey, {}), **grids}}
    text = json.dumps(table, indent=1) + "\n"
    # one line per [lamda, max_iter, psnr] triple
    text = re.sub(r"\[\s+([^\[\]]*?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]",
                  text)
    if args.dry_run:
        print(text)
    else:
        from mrirecon_vdm._atomic import atomic_write_text
        atomic_write_text(out_path, text)
        log(f"wrote {out_path} ({minutes:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
