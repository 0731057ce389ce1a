#!/usr/bin/env python
"""Plug-and-play settings on validation slices: mean PSNR of ``PnPVDMRecon`` variants.

Each variant is a JSON object of ``PnPVDMRecon`` options, plus five keys of this script:
``"true_phase": true`` (pass the simulated phase instead of estimating it),
``"sigma_factor": f`` (σ = f × the estimated noise level), ``"sigma_true": f`` (σ = f ×
the simulated noise level), ``"sigma_highpass": f`` (σ = f ×
:func:`mrirecon_vdm.noise.highpass_sigma` of the data) and ``"guided": true`` (run the
guided sampler ``GuidedVDMRecon`` with the other keys as its options instead, the mean of
``num_samples`` = 4 unless given, seeded by the slice's position). The measurements are the
benchmark's (:func:`mrirecon_vdm.bench.tasks.simulate_task`, seed 0: masks, phases, noise),
the data range is the split's maximum, torch runs with one thread. The tables of
``docs/sampler.md`` ("The data step") came from

    python benchmarks/pnp_validation.py cart4 cart4phase cart8coils8 poisson8 sr4 \\
        --variant '{"data_step": "gradient"}' --variant '{"data_step": "prox"}'
    python benchmarks/pnp_validation.py cart4 poisson8 sr4 sr2 --offset 4 --stride 8 \\
        --count 11 --variant '{"data_step": "gradient"}' --variant '{"data_step": "prox"}'
    python benchmarks/pnp_validation.py cart8coils8 --variant '{"lamda_start": 0.03}' \\
        --variant '{"lamda_start": 0.3}'          # and with --offset 4 --stride 8 --count 11

Never point it at the test people: the choices it supports are made on validation data.
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

TASKS = {  # name: (Task options, factor)
    "cart4": (dict(task="cartesian"), 4),
    "cart4phase": (dict(task="cartesian", phase="smooth"), 4),
    # k-space noise 0.05 (about 0.2 % of the largest k-space magnitude of these slices, the
    # level of the coil tasks)
    "cart4phase_noisy": (dict(task="cartesian", phase="smooth", sigma=0.05), 4),
    # the same noise without a phase (one coil: σ̂ from the measured pairs (k, −k))
    "cart4_noisy": (dict(task="cartesian", sigma=0.05), 4),
    "cart8coils8": (dict(task="cartesian", coils=8, center_fraction=0.1), 8),
    "cart8coils8phase": (dict(task="cartesian", coils=8, center_fraction=0.1,
                              phase="smooth"), 8),
    "poisson8": (dict(task="poisson"), 8),
    "poisson8phase": (dict(task="poisson", phase="smooth"), 8),
    "poisson8phase_noisy": (dict(task="poisson", phase="smooth", sigma=0.05), 8),
    "poisson8_noisy": (dict(task="poisson", sigma=0.05), 8),
    "sr4": (dict(task="sr"), 4),
    "sr4_noisy": (dict(task="sr", sigma=0.05), 4),
    "sr2": (dict(task="sr"), 2),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tasks", nargs="+", choices=sorted(TASKS))
    ap.add_argument("--variant", action="append", default=None,
                    help="JSON object of PnPVDMRecon options (repeat; default: {})")
    ap.add_argument("--split", default="val_person", choices=["val_person", "val_coronal", "val_t2"])
    ap.add_argument("--data", help="slices (n, H, W) in a .npy file instead of --split")
    ap.add_argument("--offset", type=int, default=10, help="first slice (default 10)")
    ap.add_argument("--stride", type=int, default=16, help="every n-th slice (default 16)")
    ap.add_argument("--count", type=int, default=5, help="slices (default 5)")
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args(argv)
    variants = [json.loads(v) for v in (args.variant or ["{}"])]
    for v in variants:
        if not isinstance(v, dict):
            ap.error(f"--variant must be a JSON object, got {v!r}")

    import torch

    import mrirecon_vdm as mv
    from mrirecon_vdm.bench import vdm_methods as vm
    from mrirecon_vdm.bench.runner import load_data
    from mrirecon_vdm.bench.tasks import PHASE_SEED_OFFSET, Task, simulate_task
    from mrirecon_vdm.metrics import psnr
    from mrirecon_vdm.noise import estimate_sigma, highpass_sigma
    from mrirecon_vdm.phase import apply_phase, smooth_phase
    from mrirecon_vdm.pnp import PnPVDMRecon

    torch.set_num_threads(1)
    images, _ = load_data(data=args.data, split=args.split)
    idx = list(range(args.offset, images.shape[0], args.stride))[:args.count]
    xs, dr = images[idx], float(images.max())
    prior = vm.get_prior()
    rows = []
    for name in args.tasks:
        topts, factor = TASKS[name]
        task = Task(**topts)
        ops, ys, info = simulate_task(xs, task, factor, seed=0)
        for var in variants:
            ps, ts = [], []
            for i, (x, A, y) in enumerate(zip(xs, ops, ys)):
                opts = dict(var)
                if task.phase != "none":
                    opts.setdefault("phase", "auto")
                if opts.pop("true_phase", False) and task.phase != "none":
                    opts["phase"] = smooth_phase(x.shape, seed=i + PHASE_SEED_OFFSET)
                if "sigma_factor" in opts:
                    opts["sigma"] = (estimate_sigma(y, apply_phase("auto", y, A)[0])
                                     * float(opts.pop("sigma_factor")))
                if "sigma_true" in opts:
                    opts["sigma"] = info["sigma"] * float(opts.pop("sigma_true"))
                if "sigma_highpass" in opts:
                    opts["sigma"] = highpass_sigma(y, A) * float(opts.pop("sigma_highpass"))
                guided = opts.pop("guided", False)
                start = time.perf_counter()
                if guided:
                    opts.setdefault("num_samples", 4)
                    xr = mv.GuidedVDMRecon(y, A, prior, seed=i, show_pbar=False, **opts).run()
                else:
                    xr = PnPVDMRecon(y, A, prior, **opts).run()
                ts.append(time.perf_counter() - start)
                ps.append(float(psnr(x, xr, data_range=dr)))
            row = {"task": name, "variant": var, "split": args.data or args.split,
                   "slices": idx,
                   "psnr": float(np.mean(ps)), "psnr_per_slice": ps,
                   "seconds_per_slice": float(np.mean(ts))}
            rows.append(row)
            print(f"{name:12s} {json.dumps(var):50s} {row['psnr']:.2f} dB  "
                  f"[{' '.join(f'{p:.2f}' for p in ps)}]  {row['seconds_per_slice']:.1f} s",
                  flush=True)
    if args.json:
        from mrirecon_vdm._atomic import atomic_write_text
        atomic_write_text(args.json, json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
