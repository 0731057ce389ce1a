#!/usr/bin/env python
"""Priors side by side as density models: the bound on each held-out person, and samples.

For each prior (``LABEL=FOLDER``, a folder with ``prior.json`` + ``prior.safetensors``) and
each split of the built data set (default: the two validation people, the first also in
coronal slices, and the two test people), the variational bound in bits/dim on every ``--stride``-th slice (fixed t-grid and
noise: :func:`mrirecon_vdm.prior.training.evaluate_bound`, so the numbers of different
priors are comparable), as a Markdown table; with ``--samples FILE`` also a PNG grid of
unconditional samples of each prior (ancestral sampler, same seed for every prior, full
128 x 128).

    python benchmarks/prior_report.py S=mrirecon_vdm/prior/weights N=results/prior_new \\
        --samples docs/figures/prior_samples.png
"""
import argparse
import pathlib
import sys

import numpy as np
import torch

try:
    import mrirecon_vdm  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from mrirecon_vdm.precision import fast_bf16  # noqa: E402

SPLITS = ("val_person", "val_coronal", "val_t2", "test", "test_coronal")


def bounds(priors, splits, stride=3, data=None):
    """``{label: {split: bpd}}`` on every ``stride``-th slice of each split."""
    from mrirecon_vdm.data import load_split
    from mrirecon_vdm.prior import load_pretrained
    from mrirecon_vdm.prior.training import evaluate_bound
    out = {}
    for label, path in priors.items():
        model = load_pretrained(path=path)
        model.compute_dtype = torch.bfloat16 if fast_bf16("cpu") else None
        q = model.config.intensity_percentile
        out[label] = {}
        for split in splits:
            x = torch.from_numpy(load_split(split, data)[::stride]).float()
            ref = torch.quantile(x.flatten(1), q / 100, dim=1).clamp_min(1e-6)
            x = (x / ref[:, None, None])[:, None]
            with torch.no_grad():
                out[label][split] = evaluate_bound(model, x)["bpd"]
    return out


def sample_grid(priors, path, num=6, steps=200, seed=0):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mrirecon_vdm._atomic import atomic_path
    from mrirecon_vdm.prior import load_pretrained
    fig, axes = plt.subplots(len(priors), num, figsize=(1.6 * num, 1.7 * len(priors)),
                             squeeze=False)
    for row, (label, p) in enumerate(priors.items()):
        model = load_pretrained(path=p)
        model.compute_dtype = torch.bfloat16 if fast_bf16("cpu") else None
        with torch.no_grad():
            x = model.sample((num, 1, 128, 128), num_steps=steps,
                             generator=torch.Generator().manual_seed(seed))
        for j in range(num):
            ax = axes[row, j]
            ax.imshow(np.clip(x[j, 0].float().numpy(), 0, None), cmap="gray", vmin=0, vmax=1.2)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.suptitle(f"unconditional samples, ancestral sampler, {steps} steps, seed {seed}",
                 fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("priors", nargs="+", help="LABEL=FOLDER")
    p.add_argument("--splits", nargs="+", default=list(SPLITS))
    p.add_argument("--stride", type=int, default=3)
    p.add_argument("--data", default=None, help="HDF5 data set (default: the built one)")
    p.add_argument("--samples", default=None, help="also write a PNG grid of samples here")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    from compare_priors import labelled
    try:
        priors = dict(labelled(args.priors, "FOLDER"))
    except ValueError as e:
        print(f"prior_report: error: {e}", file=sys.stderr)
        return 2
    table = bounds(priors, args.splits, args.stride, args.data)
    print(f"| prior | " + " | ".join(f"{s} (bits/dim)" for s in args.splits) + " |")
    print("|---|" + "---:|" * len(args.splits))
    for label, row in table.items():
        print(f"| {label} | " + " | ".join(f"{row[s]:.3f}" for s in args.splits) + " |")
    if args.samples:
        sample_grid(priors, args.samples)
        print(f"wrote {args.samples}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
