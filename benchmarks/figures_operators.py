#!/usr/bin/env python
"""One figure per undersampling task: truth, zero-fill, the best classical methods without and
with the prior's constraint, the VDM methods, their error maps and the uncertainty of the
guided sampler's mean.

    python benchmarks/figures_operators.py --out docs/figures [--slice 40] [--split test]

For each task (single-coil Cartesian 4× and Poisson-disc 8×, each with and without a smooth
phase, 8 coils Cartesian 8× with ESPIRiT maps, a phase and noise; the measurement of
``mrirecon-vdm bench --task``, seed of slice ``--slice``) writes ``fig_<task>.png``: the
held-out reference, the zero-filled image, the best classical method of the benchmark without
and with the prior's constraint (tuned defaults), the VDM guided sampler's
mean of 4 samples and plug-and-play, with PSNR / SSIM (data range = the split's maximum),
absolute error maps (same colour scale) and the per-pixel standard deviation of the 4
samples. ``figures_operators.json`` holds the numbers (a run of some ``--tasks`` keeps the others'
numbers of the same slice). Files are written atomically.
"""
import argparse
import io
import json
import pathlib
import sys

try:
    import mrirecon_vdm  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

TASKS = {  # file name: (title, Task options, acceleration, the best classical methods of the
    #                     benchmark without and with the prior's constraint)
    "cartesian4": ("single coil, 1D Cartesian 4×", dict(task="cartesian"), 4,
                   ("sigpy-tv", "bart-wavelet-real")),
    "poisson8": ("single coil, Poisson-disc 8×", dict(task="poisson"), 8,
                 ("bart-wavelet", "bart-wavelet-real")),
    "cartesian4_phase": ("single coil, Cartesian 4×, smooth phase",
                         dict(task="cartesian", phase="smooth"), 4,
                         ("sigpy-tv", "bart-tv-phase")),
    "poisson8_phase": ("single coil, Poisson-disc 8×, smooth phase",
                       dict(task="poisson", phase="smooth"), 8,
                       ("bart-wavelet", "bart-wavelet-phase")),
    "coils8_cartesian8": ("8 coils, Cartesian 8×, ESPIRiT maps, smooth phase, noise",
                          dict(task="cartesian", coils=8, center_fraction=0.1, phase="smooth"),
                          8, ("bart-wavelet", "bart-wavelet-phase")),
}
LEARNED = ("vdm-mean4", "vdm-pnp")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="results/figures", metavar="DIR")
    ap.add_argument("--split", default="test")
    ap.add_argument("--slice", type=int, default=40)
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    args = ap.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mrirecon_vdm import metrics
    from mrirecon_vdm._atomic import atomic_write_bytes, atomic_write_text
    from mrirecon_vdm.bench import vdm_methods as vm
    from mrirecon_vdm.bench.registry import METHODS as REG
    from mrirecon_vdm.bench.registry import reconstruct
    from mrirecon_vdm.bench.tasks import Task, simulate_task
    from mrirecon_vdm.config import bart_available
    from mrirecon_vdm.data import load_split

    images = load_split(args.split)
    data_range = float(images.max())
    x = images[args.slice:args.slice + 1]
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    numbers = {"split": args.split, "slice": args.slice, "data_range": data_range, "tasks": {}}
    old = out / "figures_operators.json"
    if old.exists():              # keep the other tasks' numbers when only some are redone
        prev = json.loads(old.read_text())
        if (prev.get("split"), prev.get("slice")) == (args.split, args.slice):
            numbers["tasks"].update(prev.get("tasks", {}))
    for key in args.tasks:
        title, topts, accel, classical = TASKS[key]
        task = Task(**topts)
        ops, ys, info = simulate_task(x, task, accel, seed=args.slice)
        learned = {"phase": "auto"} if task.phase != "none" else {}
        recons, std = {}, None
        for m in ("zero-fill",) + classical + LEARNED:
            if REG[m].requires_bart and not bart_available():
                continue
            if m == "vdm-mean4":
                img, _, app = vm.vdm_recon(ys[0], ops[0], accel, num_samples=4, **learned)
                std = np.asarray(app.std)
            else:
                img, _ = reconstruct(m, ys[0], ops[0], accel, **(learned if REG[m].nfe else {}))
            recons[m] = np.asarray(img, dtype=np.float32)
        scores = {m: metrics.evaluate(x[0], r, data_range) for m, r in recons.items()}
        numbers["tasks"][key] = {"title": title, "sigma": info["sigma"],
                                 "acceleration": info.get("acceleration"),
                                 "metrics": scores}
        n = len(recons) + 1
        fig, ax = plt.subplots(2, n, figsize=(2.3 * n, 4.9))
        ax[0, 0].imshow(x[0], cmap="gray", vmin=0, vmax=data_range)
        ax[0, 0].set_title("reference", fontsize=8)
        ax[1, 0].imshow(std if std is not None else np.zeros_like(x[0]), cmap="magma",
                        vmin=0, vmax=0.15 * data_range)
        ax[1, 0].set_title("std of 4 samples", fontsize=8)
        for j, (m, r) in enumerate(recons.items(), start=1):
            ax[0, j].imshow(r, cmap="gray", vmin=0, vmax=data_range)
            ax[0, j].set_title(f"{m}\n{scores[m]['psnr']:.2f} dB / {scores[m]['ssim']:.3f}",
                               fontsize=8)
            ax[1, j].imshow(np.abs(r - x[0]), cmap="magma", vmin=0, vmax=0.15 * data_range)
            ax[1, j].set_title("|error|", fontsize=8)
        for a in ax.ravel():
            a.axis("off")
        fig.suptitle(f"{title} (held-out slice {args.slice} of {args.split}; "
                     f"k-space noise σ {info['sigma']:.3g})", fontsize=9)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        atomic_write_bytes(out / f"fig_{key}.png", buf.getvalue())
        print(f"{key}: " + ", ".join(f"{m} {s['psnr']:.2f}" for m, s in scores.items()),
              file=sys.stderr, flush=True)
    numbers["prior"] = vm.prior_source()
    atomic_write_text(out / "figures_operators.json", json.dumps(numbers, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
