#!/usr/bin/env python
"""Real raw k-space through the whole path: twixtools' Siemens phantom (``gre.dat``, 2 coils,
160 x 160; not a brain, so no quality claim) converted to fastMRI's layout, undersampled
retrospectively (Cartesian 4x along the phase encoding, 8 % fully sampled centre, seed 0),
reconstructed with every classical method of the registry (the phase-constrained ones with the
phase estimate plug-and-play uses) and with plug-and-play, from the same ESPIRiT maps, and
scored against the root-sum-of-squares of the fully sampled coil
images. Writes a table (JSON and Markdown) and a figure.

    python benchmarks/twix_phantom.py --out docs/figures      # ~1 min on 2 cores

Needs twixtools (pip install twixtools) unless --h5 names a converted file
(``mrirecon-vdm data twix --out gre.h5``).
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--h5", default=None, help="the phantom in fastMRI's layout (default: "
                                              "converted from the cached twixtools release)")
    p.add_argument("--accel", type=float, default=4)
    p.add_argument("--out", default="results/twix", help="folder for the table and figure")
    p.add_argument("--methods", nargs="+", default=None,
                   help="registry methods (default: every classical one that applies)")
    args = p.parse_args(argv)

    import h5py
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mrirecon_vdm import metrics
    from mrirecon_vdm.bench.registry import METHODS, reconstruct
    from mrirecon_vdm.coils import espirit_maps, rss
    from mrirecon_vdm.config import bart_available
    from mrirecon_vdm.linop import FourierSampling
    from mrirecon_vdm.pnp import PnPVDMRecon
    from mrirecon_vdm.prior import load_pretrained
    from mrirecon_vdm.sampling import cartesian_mask

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    h5 = args.h5
    if h5 is None:
        from mrirecon_vdm.data.fetch import fetch_source
        from mrirecon_vdm.data.twix import TWIX_PHANTOM, twix_to_fastmri
        h5 = out / "twix_phantom.h5"
        twix_to_fastmri(fetch_source(TWIX_PHANTOM), h5)
    with h5py.File(h5, "r") as f:
        full = np.asarray(f["kspace"][0], dtype=np.complex64)          # (C, H, W)
    C, H, W = full.shape
    coil_images = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(full, axes=(-2, -1)),
                                               norm="ortho"), axes=(-2, -1))
    ref = rss(coil_images)
    mask = cartesian_mask((H, W), args.accel, center=0.08, seed=0)
    y = (full * mask).astype(np.complex64)
    maps = espirit_maps(y)
    A = FourierSampling((H, W), mask, maps=maps)
    data_range = float(ref.max())
    # real data with coils: the phase-constrained methods apply, the real-image ones do not
    names = args.methods or [m for m, meta in METHODS.items() if meta.nfe == 0
                             and not meta.needs_crop and not m.endswith("-real")
                             and (bart_available() or not meta.requires_bart)]
    rows, images = [], {"reference (fully sampled, RSS)": ref}
    for name in names:
        start = time.perf_counter()
        x, _ = reconstruct(name, y, A, args.accel)
        seconds = time.perf_counter() - start
        x = np.abs(np.asarray(x))
        rows.append({"method": name, **metrics.evaluate(ref, x, data_range),
                     "seconds": seconds})
        images[name] = x
    prior = load_pretrained()
    start = time.perf_counter()
    app = PnPVDMRecon(y, A, prior, show_pbar=False)
    x = np.abs(app.run())
    rows.append({"method": "vdm-pnp", **metrics.evaluate(ref, x, data_range),
                 "seconds": time.perf_counter() - start})
    images["vdm-pnp"] = x
    table = ["| method | PSNR (dB) | SSIM | NRMSE |", "|---|---|---|---|"]
    for r in rows:
        table.append(f"| {r['method']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['nrmse']:.4f} |")
    meta = {"data": "twixtools 0.24 example_data/gre.dat (Siemens phantom, 2 coils)",
            "shape": [C, H, W], "accel": args.accel, "center": 0.08, "mask_seed": 0,
            "acceleration": float(mask.size / mask.sum()), "reference": "RSS, fully sampled",
            "maps": "ESPIRiT from the undersampled data (the same for every method)"}
    (out / "twix_phantom.json").write_text(json.dumps({"meta": meta, "results": rows},
                                                       indent=1) + "\n")
    (out / "twix_phantom.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    best = max((r for r in rows if r["method"] not in ("zero-fill", "vdm-pnp")),
               key=lambda r: r["psnr"], default=None)
    show = ["reference (fully sampled, RSS)", "zero-fill"] \
        + ([best["method"]] if best else []) + ["vdm-pnp"]
    fig, axes = plt.subplots(1, len(show), figsize=(3 * len(show), 3.2))
    for ax, name in zip(axes, show):
        ax.imshow(images[name], cmap="gray", vmin=0, vmax=data_range)
        r = next((r for r in rows if r["method"] == name), None)
        ax.set_title(name if r is None else f"{name}\n{r['psnr']:.2f} dB", fontsize=9)
        ax.axis("off")
    fig.suptitle(f"Siemens phantom (twix), 2 coils, Cartesian {args.accel:g}x", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "twix_phantom.png", dpi=100)
    print(f"wrote {out / 'twix_phantom.png'}", file=sys.stderr)


if __name__ == "__main__":
    main()
