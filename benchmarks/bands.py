#!/usr/bin/env python
"""Where in k-space each method's error lies, and how much of each band it recovers.

With the orthonormal FFT the mean squared error of an image is the sum, over k-space, of
``|F(x̂ − x)|² / (H W)`` (Parseval), so it splits exactly into bands. The bands are square
rings of the centred k-space: the measured centre (the ``1/f`` crop at factor ``f``) and the
rings between the centre crops of 1/4, 1/2, 3/4 and all of the k-space. For each band the
table gives the error of each method, in units of 1e-4 of the image MSE, and the share of
the band's signal energy it removed (``recovered = 1 − error / energy``; zero-filling
leaves every outer band at its full energy, recovered 0 %; a negative share means the
method put in more wrong energy than it got right).

The ``ceiling`` rows give the PSNR of the pooled MSE that an oracle would reach by getting
every band up to and including the named one exactly right and leaving the rest empty:
what any method can gain by recovering a band.

PSNR here is that of the MSE pooled over slices (the benchmark tables average per-slice
PSNR, so they differ by a few hundredths of a dB). Run, for example:

    MRIRECON_VDM_THREADS=1 python benchmarks/bands.py --split test --stride 8 \\
        --out results/bands_test          # about 4 minutes on one core
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

#: Edges of the rings, as fractions of the full k-space side (centre crops).
FRACTIONS = (0.25, 0.5, 0.75, 1.0)
DEFAULT_METHODS = ("zero-fill", "bart-wavelet", "sigpy-tv", "vdm-fast-25", "vdm-mean4")


def _crop_mask(shape, frac):
    h, w = shape
    ch, cw = int(round(h * frac)), int(round(w * frac))
    m = np.zeros(shape, bool)
    m[h // 2 - ch // 2:h // 2 - ch // 2 + ch, w // 2 - cw // 2:w // 2 - cw // 2 + cw] = True
    return m


def band_masks(shape, scale):
    """``[(label, mask)]``: the measured centre at factor ``scale``, then the outer rings.

    The measured centre is the ``(H/scale, W/scale)`` crop of the centred k-space (the crop
    of :class:`mrirecon_vdm.linop.CropFourier`); the rings lie between the centre crops of
    the :data:`FRACTIONS` outside it. The masks partition the k-space.
    """
    h, w = shape
    if scale < 1 or h % scale or w % scale:
        raise ValueError(f"band_masks: scale {scale} must be >= 1 and divide the image "
                         f"shape {tuple(shape)}")
    inner = _crop_mask(shape, 1.0 / scale)
    out = [("measured", inner)]
    prev, lo = inner, 1.0 / scale
    for frac in FRACTIONS:
        if frac <= 1.0 / scale:
            continue
        m = _crop_mask(shape, frac)
        out.append((f"{lo:g}–{frac:g}", m & ~prev))
        prev, lo = m, frac
    return out


def band_energy(images, masks):
    """Per-band energy of ``images`` (n, H, W) in MSE units: mean over images of
    ``sum_band |F x|² / (H W)`` with the orthonormal centred FFT; shape (n_bands,)."""
    import sigpy as sp
    x = np.asarray(images)
    if x.ndim == 2:
        x = x[None]
    k = np.abs(sp.fft(x.astype(np.complex128), axes=(-2, -1), center=True)) ** 2
    hw = x.shape[-1] * x.shape[-2]
    return np.array([k[:, m].sum(-1).mean() / hw for _, m in masks])


def psnr_of(mse, data_range=1.0):
    return float("inf") if mse <= 0 else float(10 * np.log10(data_range ** 2 / mse))


def ceilings(energy, data_range=1.0):
    """PSNR of an oracle exact up to band b and empty beyond, for each band b."""
    energy = np.asarray(energy, np.float64)
    return [psnr_of(energy[b + 1:].sum(), data_range) for b in range(len(energy))]


def markdown(rows, labels, energy, split, n, scale, data_range=1.0):
    lines = [f"{split}, {n} slices, {scale}× — band error in 1e-4 (recovered share of the "
             f"band's energy)", "",
             "| method | PSNR (pooled MSE) | " + " | ".join(labels) + " |",
             "|---|---|" + "---|" * len(labels),
             "| energy of the band | | " + " | ".join(f"{1e4 * e:.2f}" for e in energy) + " |"]
    for r in rows:
        cells = [f"{1e4 * e:.2f} ({100 * (1 - e / s):+.0f} %)" if s > 0 else f"{1e4 * e:.2f}"
                 for e, s in zip(r["band_error"], energy)]
        lines.append(f"| {r['method']} | {r['psnr_pooled']:.2f} | " + " | ".join(cells) + " |")
    ceil = ceilings(energy, data_range)
    lines.append("| ceiling: exact up to the band | | "
                 + " | ".join(f"{c:.2f} dB" for c in ceil) + " |")
    return "\n".join(lines)


def run_bands(images, scales, methods, data_range=None, log=print):
    """Reconstruct ``images`` with each method at each factor; per-band errors as dicts.

    ``data_range`` for the PSNRs defaults to the images' maximum, as in the benchmark."""
    from mrirecon_vdm.bench.registry import METHODS, reconstruct
    from mrirecon_vdm.bench.runner import simulate
    from mrirecon_vdm.config import bart_available

    if data_range is None:
        data_range = float(images.max())
    out = []
    for scale in scales:
        masks = band_masks(images.shape[-2:], scale)
        labels = [lab for lab, _ in masks]
        energy = band_energy(images, masks)
        A, ys = simulate(images, scale)
        rows = []
        for m in methods:
            if m not in METHODS:
                raise ValueError(f"unknown method {m!r}; registered: {', '.join(METHODS)}")
            if METHODS[m].requires_bart and not bart_available():
                log(f"note: skipping {m}: BART is not installed")
                continue
            recon = np.stack([np.real(np.asarray(reconstruct(m, y, A, scale)[0])) for y in ys])
            err = band_energy(recon - images, masks)
            mse = float(np.mean((recon - images) ** 2))
            rows.append({"method": m, "band_error": err.tolist(), "mse": mse,
                         "psnr_pooled": psnr_of(mse, data_range)})
            log(f"{m:>14s} {scale}x: pooled PSNR {rows[-1]['psnr_pooled']:.2f}")
        out.append({"scale": int(scale), "bands": labels, "energy": energy.tolist(),
                    "ceiling_psnr": ceilings(energy, data_range), "data_range": data_range,
                    "rows": rows})
    return out


def main(argv=None):
    import mrirecon_vdm.bench.vdm_methods  # noqa: F401  registers the VDM methods
    from mrirecon_vdm.bench.runner import load_data

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="test", help="data set split (default test)")
    ap.add_argument("--data", metavar="PATH", help="your own HR slices instead of a split")
    ap.add_argument("--stride", type=int, default=8, help="every N-th slice (default 8)")
    ap.add_argument("--scales", type=int, nargs="+", default=[4, 2])
    ap.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    ap.add_argument("--out", metavar="DIR", help="write bands.md and bands.json here")
    args = ap.parse_args(argv)
    if args.stride < 1:
        ap.error(f"--stride must be >= 1, got {args.stride}")
    images, source = load_data(args.data, split=args.split)
    images = images[::args.stride].astype(np.float64)
    name = args.data or args.split
    results = run_bands(images, args.scales, args.methods)
    text = "\n\n".join(markdown(r["rows"], r["bands"], r["energy"], name, len(images),
                                r["scale"], r["data_range"]) for r in results)
    print(text)
    if args.out:
        from mrirecon_vdm._atomic import atomic_write_text
        out = pathlib.Path(args.out)
        atomic_write_text(out / "bands.md", text + "\n")
        atomic_write_text(out / "bands.json", json.dumps(
            {"data": source, "stride": args.stride, "n_slices": len(images),
             "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
