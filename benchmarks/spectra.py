#!/usr/bin/env python
"""Power spectra of training patches and of the held-out people's slices.

Why: a prior that never saw energy near Nyquist cannot put it back. This compares the mean
power per square k-space ring (log10, Hann-windowed, mean removed) of 64×64 head patches
(mean intensity > 0.2) drawn from the data set's splits, without augmentation and through
the training recipe's augmentation (``configs/brain128.json``), the bilinear recipe at
continuous positions, and the recipe with sharpening (probability 0.8, a <= 2). Runs in about 20 s on one core:

    python benchmarks/spectra.py [--n 1500] [--json spectra.json]
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

RINGS = tuple(range(4, 32, 4))


def ring_power(patches):
    """Mean power per ring [r, r+4) (r in RINGS) of (n, P, P) patches, log10."""
    p = np.asarray(patches, np.float64)
    h = np.hanning(p.shape[-1])
    p = (p - p.mean((1, 2), keepdims=True)) * np.outer(h, h)
    k = np.fft.fftshift(np.fft.fft2(p, norm="ortho"), axes=(-2, -1))
    power = (np.abs(k) ** 2).mean(0)
    n = power.shape[0]
    ky, kx = np.meshgrid(np.arange(n) - n // 2, np.arange(n) - n // 2, indexing="ij")
    r = np.maximum(abs(ky), abs(kx))
    return [float(np.log10(power[(r >= a) & (r < a + 4)].mean())) for a in RINGS]


def main(argv=None):
    import torch

    from mrirecon_vdm import data as D
    from mrirecon_vdm.prior.augment import AugmentConfig, augment_patches
    from mrirecon_vdm.prior.training import TrainConfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1500, help="patches drawn per row (default 1500)")
    ap.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cfg = TrainConfig.load(pathlib.Path(__file__).resolve().parents[1] / "mrirecon_vdm" / "prior"
                           / "configs" / "brain128.json").augment
    base = cfg.to_dict()

    splits = {}

    def draw(split, aug, seed=0):
        if split not in splits:          # read each split once
            splits[split] = torch.from_numpy(np.asarray(D.load_split(split), np.float32))[:, None]
        imgs = splits[split]
        g = torch.Generator().manual_seed(seed)
        idx = torch.randint(len(imgs), (args.n,), generator=g)
        p = augment_patches(imgs[idx], 64, aug, g)[:, 0].numpy()
        return p[p.mean((1, 2)) > 0.2]

    rows = [
        ("train, no augmentation", draw("train", AugmentConfig.none())),
        ("train, first recipe (bilinear, continuous positions)",
         draw("train", AugmentConfig(**{**base, "interp": "bilinear", "whole_pixel": False,
                                        "sharpen_prob": 0.0}))),
        ("train, shipped recipe (no sharpening)",
         draw("train", AugmentConfig(**{**base, "sharpen_prob": 0.0}))),
        ("train, recipe with sharpening (prob 0.8, a <= 2)",
         draw("train", AugmentConfig(**{**base, "sharpen_prob": 0.8, "sharpen_max": 2.0}))),
        ("val, no augmentation", draw("val", AugmentConfig.none())),
        ("test (held out), no augmentation", draw("test", AugmentConfig.none())),
        ("test_coronal (held out), no augmentation", draw("test_coronal", AugmentConfig.none())),
    ]

    out = [{"patches": name, "n": int(len(p)), "rings": list(RINGS),
            "log10_power": ring_power(p)} for name, p in rows]
    rings = " | ".join(f"ring {a}–{a + 4}" for a in RINGS)
    print(f"| patches (64×64, head) | n | {rings} |")
    print("|---|---:|" + "---:|" * len(RINGS))
    for r in out:
        cells = " | ".join(f"{v:.2f}" for v in r["log10_power"])
        print(f"| {r['patches']} | {r['n']} | {cells} |")
    if args.json:
        from mrirecon_vdm._atomic import atomic_write_text
        atomic_write_text(args.json, json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
