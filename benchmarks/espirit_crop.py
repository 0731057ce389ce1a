#!/usr/bin/env python
"""ESPIRiT's eigenvalue crop on the 8-coil task: plug-and-play and BART's phase-constrained
L1-wavelet with the maps of each crop (and with the true maps), on validation slices.

The measurement is the benchmark's 8-coil task (``bench --task cartesian --accel 8 --coils 8
--center-fraction 0.1 --phase smooth``: birdcage maps, k-space noise, a smooth phase, seed
0); only the maps the methods reconstruct with change: :func:`mrirecon_vdm.coils.espirit_maps`
with ``crop`` (``default`` = :data:`mrirecon_vdm.coils.DEFAULT_CROP`) or the true birdcage
maps (``true``). PSNR with the data range of the split's maximum, torch on one thread. The
table of ``docs/undersampled.md`` ("Coil maps: ESPIRiT's crop") came from

    python benchmarks/espirit_crop.py --split val_person --maps 0.95 0.8 0 true
    python benchmarks/espirit_crop.py --split val_coronal --maps 0.95 0.9 0.8 0.5 0

Never point it at the test people: the crop is chosen on validation data.
"""
import argparse
import json
import pathlib
import sys

import numpy as np

try:
    import mrirecon_vdm  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="val_person", choices=["val_person", "val_coronal", "val_t2"])
    ap.add_argument("--maps", nargs="+", default=["default"],
                    help="ESPIRiT crops in [0, 1), 'default' or 'true' (the simulated maps)")
    ap.add_argument("--stride", type=int, default=8, help="every n-th slice (default 8)")
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args(argv)
    for m in args.maps:
        if m not in ("default", "true"):
            try:
                ok = 0 <= float(m) < 1
            except ValueError:
                ok = False
            if not ok:
                ap.error(f"--maps: expected a crop in [0, 1), 'default' or 'true', got {m!r}")

    import torch

    from mrirecon_vdm import metrics
    from mrirecon_vdm.bench import vdm_methods as vm
    from mrirecon_vdm.bench.registry import reconstruct
    from mrirecon_vdm.bench.runner import load_data
    from mrirecon_vdm.bench.tasks import Task, simulate_task
    from mrirecon_vdm.coils import birdcage_maps, espirit_maps
    from mrirecon_vdm.linop import FourierSampling, fourier_structure
    from mrirecon_vdm.pnp import PnPVDMRecon

    torch.set_num_threads(1)
    images, _ = load_data(split=args.split)
    dr = float(images.max())
    xs = images[::args.stride]
    task = Task("cartesian", coils=8, center_fraction=0.1, phase="smooth")
    ops, ys, info = simulate_task(xs, task, 8, seed=0)
    hr = tuple(xs.shape[-2:])
    prior = vm.get_prior()
    rows = []
    for m in args.maps:
        pnp, classical = [], []
        for x, y, A in zip(xs, ys, ops):
            mask = fourier_structure(A).mask
            if m == "true":
                maps = birdcage_maps(hr, task.coils)
            else:
                maps = espirit_maps(y, crop=None if m == "default" else float(m))
            Am = FourierSampling(hr, mask, maps=maps)
            out = PnPVDMRecon(y, Am, prior, phase="auto", show_pbar=False).run()
            pnp.append(metrics.evaluate(x, np.abs(out), dr)["psnr"])
            c = reconstruct("bart-wavelet-phase", y, Am, 8)[0]
            classical.append(metrics.evaluate(x, np.abs(c), dr)["psnr"])
        row = {"split": args.split, "maps": m, "slices": len(xs), "sigma": info["sigma"],
               "pnp": float(np.mean(pnp)), "bart_wavelet_phase": float(np.mean(classical)),
               "pnp_per_slice": pnp, "bart_wavelet_phase_per_slice": classical}
        rows.append(row)
        print(f"{args.split} maps {m:8s} plug-and-play {row['pnp']:.2f} dB  "
              f"bart-wavelet-phase {row['bart_wavelet_phase']:.2f} dB", flush=True)
    if args.json:
        from mrirecon_vdm._atomic import atomic_write_text
        atomic_write_text(args.json, json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
