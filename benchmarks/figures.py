#!/usr/bin/env python
"""Figures after the paper's (Jiang, Gao, Sun, ISMRM 2023, abstract 0163), as PNG files.

    python benchmarks/figures.py --out results/figures [--prior DIR] [--slice 38] [--quick]

writes into ``--out``:

* ``fig_recon_4x.png``, ``fig_recon_2x.png`` (the paper's Fig. 2/3): HR reference,
  zero-filled, bicubic, SigPy TV, BART L1-wavelet (when BART is installed) and the guided VDM
  (the paper's sampler, λ = 1), with their absolute error maps and PSNR / SSIM;
* ``fig_lambda.png`` (Fig. 4): the paper's sampler at 4× with λ = 0, 0.25, 0.5, 0.75, 1
  (``--lambda-steps`` steps each; the title says how many);
* ``fig_psnr_nfe.png``: PSNR against network evaluations for the paper's sampler
  (50 / 100 / 250 / 1000 steps) and the fast sampler (10 / 25 / 50 / 100 steps) at 4×,
  mean over ``--nfe-slices`` slices, with zero-fill and SigPy TV for reference;
* ``fig_uncertainty.png``: the mean of ``--samples`` fast-sampler samples at 4×, its error
  map and the per-pixel standard deviation of the samples (the uncertainty map);
* ``figures.json``: every number in the figures, the options, the prior's provenance and the
  run time.

Files are written atomically (temporary file, then ``os.replace``). Slices, measurement and
metrics follow ``mrirecon-vdm bench`` (noiseless central k-space, PSNR / SSIM with the data
set's maximum as data range); the VDM runs through :mod:`mrirecon_vdm.bench.vdm_methods` (prior
from ``--prior``, else ``MRIRECON_VDM_PRIOR``, else the shipped weights; seeds from each
measurement; bf16; one torch thread). Results computed once are reused: the 4× VDM image of
Fig. 2 is the 1000-step run of the PSNR-NFE sweep on the same slice, and λ = 1 of Fig. 4 is its
``--lambda-steps`` run.

``--quick`` cuts the steps (paper sampler 10 / 25, fast 5 / 10, one slice, 4 samples) for a
smoke test: well under 2 minutes on 128 × 128 slices, seconds on tiny ones.
"""
import argparse
import io
import json
import pathlib
import sys
import time

try:
    import mrirecon_vdm  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

LAMBDAS = (0.0, 0.25, 0.5, 0.75, 1.0)
FULL = dict(paper_steps=(50, 100, 250, 1000), fast_steps=(10, 25, 50, 100), main_steps=1000,
            lambda_steps=250, samples=8, sample_steps=50, nfe_slices=2)
QUICK = dict(paper_steps=(10, 25), fast_steps=(5, 10), main_steps=25, lambda_steps=25,
             samples=4, sample_steps=10, nfe_slices=1)


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="figures", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="results/figures", metavar="DIR",
                   help="output folder (default: results/figures)")
    p.add_argument("--prior", metavar="PATH",
                   help="exported prior (folder or prior.safetensors); default: "
                        "$MRIRECON_VDM_PRIOR, else the shipped weights")
    p.add_argument("--data", metavar="PATH", help="HR magnitude slices (.npy, .npz, HDF5, "
                   "NIfTI); default: the built data set's --split")
    p.add_argument("--key", help="array / dataset name inside an .npz or HDF5 file")
    p.add_argument("--split", default="test", help="split of the built data set (default test)")
    p.add_argument("--slice", type=int, default=None,
                   help="slice shown in the figures (default: the middle one)")
    p.add_argument("--scales", type=int, nargs="+", default=[4, 2], metavar="F",
                   help="factors of the reconstruction figures (default: 4 2); the λ, NFE "
                        "and uncertainty figures use the first")
    p.add_argument("--quick", action="store_true", help="few steps: a smoke test")
    p.add_argument("--nfe-slices", type=int, metavar="N",
                   help=f"slices averaged in the PSNR-NFE figure (default "
                        f"{FULL['nfe_slices']}, quick {QUICK['nfe_slices']})")
    p.add_argument("--lambda-steps", type=int, metavar="N",
                   help=f"paper-sampler steps of the λ figure (default {FULL['lambda_steps']})")
    p.add_argument("--samples", type=int, metavar="K",
                   help=f"samples of the uncertainty figure (default {FULL['samples']})")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- helpers
def save_png(fig, path):
    """``fig`` as PNG at ``path``, atomically."""
    from mrirecon_vdm._atomic import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def scores(ref, x, data_range):
    from mrirecon_vdm import metrics
    return {"psnr": float(metrics.psnr(ref, x, data_range)),
            "ssim": float(metrics.ssim(ref, x, data_range))}


def measure(x, scale):
    """``(y, A)``: the noiseless central k-space of one slice at factor ``scale``."""
    from mrirecon_vdm.bench.runner import simulate
    A, ys = simulate(x[None], scale, 0.0, 0)
    return ys[0], A


def image_grid(plt, rows, titles, cmaps, vmaxes, suptitle):
    """A grid of images: ``rows`` is a list of lists of 2D arrays (None: empty panel)."""
    nr, nc = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(nr, nc, figsize=(2.3 * nc, 2.7 * nr), squeeze=False,
                             layout="constrained")
    for i, row in enumerate(rows):
        for j in range(nc):
            ax = axes[i, j]
            ax.set_axis_off()
            if j < len(row) and row[j] is not None:
                ax.imshow(row[j], cmap=cmaps[i], vmin=0, vmax=vmaxes[i],
                          interpolation="nearest")
                ax.set_title(titles[i][j], fontsize=8)
    fig.suptitle(suptitle, fontsize=10)
    return fig


# ----------------------------------------------------------------------------- figures
def main(argv=None):
    args = parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mrirecon_vdm.bench import vdm_methods as vm
    from mrirecon_vdm.bench.registry import reconstruct
    from mrirecon_vdm.bench.runner import load_data
    from mrirecon_vdm.config import bart_available

    cfg = dict(QUICK if args.quick else FULL)
    for k in ("nfe_slices", "lambda_steps", "samples"):
        if getattr(args, k) is not None:
            cfg[k] = getattr(args, k)
    start = time.perf_counter()
    if args.prior:
        vm.set_prior(args.prior)
    prior = vm.get_prior()
    images, source = load_data(args.data, args.key, args.split)
    data_range = float(images.max())
    n = images.shape[0]
    k = n // 2 if args.slice is None else args.slice
    if not 0 <= k < n:
        raise ValueError(f"--slice must be in [0, {n - 1}], got {k}")
    others = [int(i) for i in np.linspace(0, n - 1, cfg["nfe_slices"] + 2)[1:-1] if int(i) != k]
    nfe_slices = ([k] + others)[:max(1, min(cfg["nfe_slices"], n))]
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    s0 = args.scales[0]
    ref = images[k]
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    record = {"data": source, "slice": k, "data_range": data_range, "config": cfg,
              "prior": vm.prior_source(),
              "prior_provenance": {kk: v for kk, v in getattr(prior, "provenance", {}).items()
                                   if kk in ("step", "images_seen", "train_wall_time_s",
                                             "val_bpd", "exported", "note")},
              "nfe_convention": "images through the network (K samples x steps)"}
    cache = {}

    def vdm(i, scale, sampler, steps, lamda=1.0, samples=1):
        key = (i, scale, sampler, steps, lamda, samples)
        if key not in cache:
            y, A = measure(images[i], scale)
            t = time.perf_counter()
            x, nfe, app = vm.vdm_recon(y, A, scale, sampler=sampler, num_steps=steps,
                                       lamda=lamda, num_samples=samples)
            cache[key] = (np.asarray(x), nfe, app.std_raw, time.perf_counter() - t)
            log(f"  vdm {sampler:5s} {steps:4d} steps λ={lamda:g} K={samples} slice {i} "
                f"{scale}x: {scores(images[i], cache[key][0], data_range)['psnr']:.2f} dB "
                f"({cache[key][3]:.1f} s)")
        return cache[key]

    # -- PSNR against NFE (first, so that its runs are reused below)
    log(f"PSNR vs NFE at {s0}x on slices {nfe_slices}")
    curves = {}
    for sampler, steps_list in (("paper", cfg["paper_steps"]), ("fast", cfg["fast_steps"])):
        curves[sampler] = []
        for steps in steps_list:
            ps = [scores(images[i], vdm(i, s0, sampler, steps)[0], data_range)["psnr"]
                  for i in nfe_slices]
            curves[sampler].append({"nfe": steps, "psnr": float(np.mean(ps))})
    refs = {}
    for name in ("zero-fill", "sigpy-tv"):
        ps = []
        for i in nfe_slices:
            y, A = measure(images[i], s0)
            ps.append(scores(images[i], np.asarray(reconstruct(name, y, A, s0)[0]),
                             data_range)["psnr"])
        refs[name] = float(np.mean(ps))
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for sampler, label in (("paper", "paper sampler (λ=1)"), ("fast", "fast sampler")):
        c = curves[sampler]
        ax.plot([r["nfe"] for r in c], [r["psnr"] for r in c], "o-", label=label)
    for (name, v), ls in zip(refs.items(), (":", "--")):
        ax.axhline(v, color="gray", ls=ls, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("network evaluations per slice")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(f"{s0}×, mean over {len(nfe_slices)} slice(s)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, out / "fig_psnr_nfe.png")
    plt.close(fig)
    record["psnr_nfe"] = {"scale": s0, "slices": nfe_slices, "curves": curves,
                          "references": refs}

    # -- Fig. 2/3: methods and error maps at each factor
    methods = [("zero-fill", "zero-filled"), ("bicubic", "bicubic"), ("sigpy-tv", "SigPy TV")]
    if bart_available():
        methods.append(("bart-wavelet", "BART L1-wavelet"))
    record["recon"] = {}
    for scale in args.scales:
        log(f"reconstructions at {scale}x, slice {k}")
        y, A = measure(ref, scale)
        recs = [(label, np.asarray(reconstruct(name, y, A, scale)[0])) for name, label in methods]
        recs.append((f"VDM (paper, {cfg['main_steps']} steps)",
                     vdm(k, scale, "paper", cfg["main_steps"])[0]))
        errs = [np.abs(x - ref) for _, x in recs]
        emax = float(np.percentile(errs[0], 99.5)) or 1.0
        sc = [scores(ref, x, data_range) for _, x in recs]
        titles = [["HR reference"] + [f"{lab}\n{s['psnr']:.2f} dB / {s['ssim']:.3f}"
                                      for (lab, _), s in zip(recs, sc)],
                  [f"|error| (0–{emax:.2f})"] + [lab for lab, _ in recs]]
        fig = image_grid(plt, [[ref] + [x for _, x in recs], [None] + errs], titles,
                         ["gray", "inferno"], [data_range, emax],
                         f"{scale}× super-resolution ({A.lr_shape[0]}→{A.hr_shape[0]}), "
                         f"slice {k}: PSNR / SSIM; error maps 0–{emax:.2f}")
        save_png(fig, out / f"fig_recon_{scale}x.png")
        plt.close(fig)
        record["recon"][f"{scale}x"] = {lab: s for (lab, _), s in zip(recs, sc)}

    # -- Fig. 4: λ
    log(f"lambda sweep at {s0}x, paper sampler {cfg['lambda_steps']} steps")
    lam = [(lv, vdm(k, s0, "paper", cfg["lambda_steps"], lamda=lv)[0]) for lv in LAMBDAS]
    sc = [scores(ref, x, data_range) for _, x in lam]
    errs = [np.abs(x - ref) for _, x in lam]
    emax = float(np.percentile(errs[-1], 99.5)) * 2 or 1.0
    titles = [[f"λ = {lv:g}\n{s['psnr']:.2f} dB / {s['ssim']:.3f}" for (lv, _), s in zip(lam, sc)],
              [f"|error| λ = {lv:g}" for lv, _ in lam]]
    fig = image_grid(plt, [[x for _, x in lam], errs], titles, ["gray", "inferno"],
                     [data_range, emax],
                     f"Effect of λ ({s0}×, paper sampler, {cfg['lambda_steps']} steps, "
                     f"slice {k})")
    save_png(fig, out / "fig_lambda.png")
    plt.close(fig)
    record["lambda"] = {"scale": s0, "sampler": "paper", "steps": cfg["lambda_steps"],
                        "results": [{"lamda": lv, **s} for (lv, _), s in zip(lam, sc)]}

    # -- uncertainty
    K = cfg["samples"]
    log(f"uncertainty at {s0}x, {K} samples of the fast sampler, {cfg['sample_steps']} steps")
    x, nfe, std, _ = vdm(k, s0, "fast", cfg["sample_steps"], samples=K)
    std = np.asarray(std)
    err = np.abs(x - ref)
    s = scores(ref, x, data_range)
    corr = float(np.corrcoef(err.ravel(), std.ravel())[0, 1])
    emax = float(np.percentile(err, 99.5)) or 1.0
    smax = float(np.percentile(std, 99.5)) or 1.0
    fig = image_grid(plt, [[ref, x, err, std]],
                     [["HR reference", f"mean of {K} samples\n{s['psnr']:.2f} dB / "
                       f"{s['ssim']:.3f}", f"|error| (0–{emax:.2f})",
                       f"std of {K} samples (0–{smax:.2f})\ncorr. with |error| {corr:.2f}"]],
                     ["gray"], [data_range], "")
    for ax, vmax in zip(fig.axes[2:4], (emax, smax)):
        ax.images[0].set_cmap("inferno")
        ax.images[0].set_clim(0, vmax)
    fig.suptitle(f"Uncertainty ({s0}×, fast sampler {cfg['sample_steps']} steps, "
                 f"NFE {nfe}, slice {k})", fontsize=10)
    save_png(fig, out / "fig_uncertainty.png")
    plt.close(fig)
    record["uncertainty"] = {"scale": s0, "samples": K, "steps": cfg["sample_steps"], "nfe": nfe,
                             **s, "corr_std_abs_error": corr,
                             "mean_std": float(std.mean()), "mean_abs_error": float(err.mean())}

    record["seconds"] = round(time.perf_counter() - start, 1)
    from mrirecon_vdm._atomic import atomic_write_bytes
    atomic_write_bytes(out / "figures.json",
                       (json.dumps(record, indent=2, default=str) + "\n").encode())
    log(f"wrote {out}/fig_*.png and figures.json in {record['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
