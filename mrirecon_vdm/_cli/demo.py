"""``mrirecon-vdm demo``: the method on a held-out real brain slice, beside every baseline.

Takes a shipped slice of a person the prior never saw, simulates its 4x low-resolution
k-space (the central 32 x 32 of the 128 x 128), reconstructs it with zero-filling, bicubic
interpolation, SigPy L1-wavelet and TV, BART pics (when BART is installed), the fast
guided VDM sampler (mean of 4 samples) and plug-and-play with the shipped pretrained prior,
then writes a figure and a table.
"""
import pathlib

DEFAULT_OUT = "results/demo"
BASELINES = ("zero-fill", "bicubic", "sigpy-wavelet", "sigpy-tv", "bart-wavelet", "bart-tv")


def register(subparsers):
    p = subparsers.add_parser(
        "demo", help="run every method on a shipped held-out brain slice (about a minute)",
        description="Super-resolve a real held-out brain slice that ships with the package "
                    "from its low-resolution k-space, with the classical baselines and the "
                    "k-space-guided VDM (shipped pretrained prior); write a comparison figure "
                    "(PNG) and a metrics table (Markdown, JSON).")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    p.add_argument("--slice", type=int, default=4, dest="slice_index",
                   help="index of the shipped slice (default: 4)")
    p.add_argument("--scale", type=int, default=4, help="super-resolution factor (default: 4)")
    p.add_argument("--steps", type=int, default=None,
                   help="network evaluations of the fast sampler and of plug-and-play "
                        "(default: the Apps', 50 and 30)")
    p.add_argument("--samples", type=int, default=4,
                   help="posterior samples averaged (default: 4)")
    p.add_argument("--sigma", type=float, default=0.0,
                   help="k-space noise std, in image units (default: 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of noise and sampler (default: 0)")
    p.add_argument("--prior", default=None,
                   help="exported prior folder or .safetensors file (default: the shipped one)")
    p.set_defaults(func=run)


def _atomic_save(path, write):
    from .._atomic import atomic_path
    with atomic_path(path, suffix=pathlib.Path(path).suffix) as tmp:
        write(pathlib.Path(tmp))


def run(args):
    import json

    import numpy as np

    from .. import metrics
    from ..app import GuidedVDMRecon
    from ..bench.registry import METHODS, reconstruct
    from ..config import bart_available
    from ..data import shipped_test_slices
    from ..linop import CropFourier
    from ..noise import simulate_lowres
    from ..prior import load_pretrained

    import math

    from .._checks import check_output_path, check_seed

    # every option before any work (the baselines run before the VDM sampler)
    check_seed("--seed", args.seed, allow_none=False)
    check_output_path("--out", args.out, folder=True)
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps: expected an integer >= 1, got {args.steps}")
    if args.samples < 1:
        raise ValueError(f"--samples: expected an integer >= 1, got {args.samples}")
    if not (math.isfinite(args.sigma) and args.sigma >= 0):
        raise ValueError(f"--sigma: expected a finite number >= 0, got {args.sigma}")
    prior = load_pretrained(path=args.prior)        # first: a missing prior fails fast
    slices = shipped_test_slices()
    if not 0 <= args.slice_index < len(slices):
        raise ValueError(f"--slice: expected an index in [0, {len(slices) - 1}], got {args.slice_index}")
    x = slices[args.slice_index]
    if args.scale < 1 or x.shape[0] % args.scale or x.shape[1] % args.scale:
        raise ValueError(f"--scale: expected a factor dividing {x.shape}, got {args.scale}")
    lr = (x.shape[0] // args.scale, x.shape[1] // args.scale)
    data_range = float(slices.max())          # the shipped volume's maximum
    A = CropFourier(x.shape, lr)
    y = simulate_lowres(x, lr, sigma=args.sigma, seed=args.seed)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"demo: shipped held-out slice {args.slice_index}, {x.shape[0]}x{x.shape[1]} from "
          f"{lr[0]}x{lr[1]} k-space ({args.scale}x), noise sigma {args.sigma}")

    recons, rows = {}, []
    for name in BASELINES:
        if METHODS[name].requires_bart and not bart_available():
            print(f"  {name:<14} skipped (BART not installed: apt-get install bart; pip install mrbart)")
            continue
        import time
        t0 = time.perf_counter()
        img, nfe = reconstruct(name, y, A, args.scale)
        seconds = time.perf_counter() - t0
        recons[name] = np.asarray(img)
        rows.append(dict(method=name, seconds=seconds, nfe=nfe,
                         **metrics.evaluate(x, recons[name], data_range)))
        print(f"  {name:<14} PSNR {rows[-1]['psnr']:6.2f} dB  SSIM {rows[-1]['ssim']:.3f}  "
              f"{seconds:6.2f} s")

    app = GuidedVDMRecon(y, A, prior, num_steps=args.steps, num_samples=args.samples,
                         sigma=args.sigma if args.sigma > 0 else None, seed=args.seed,
                         show_pbar=True, leave_pbar=False)
    vdm = np.asarray(app.run())
    name = f"vdm-fast (K={args.samples})"
    recons[name] = vdm
    rows.append(dict(method=name, seconds=app.time, nfe=app.nfe,
                     **metrics.evaluate(x, vdm, data_range)))
    print(f"  {name:<14} PSNR {rows[-1]['psnr']:6.2f} dB  SSIM {rows[-1]['ssim']:.3f}  "
          f"{app.time:6.2f} s  ({args.samples} samples x {app.network_calls} steps = "
          f"{app.nfe} network evaluations, in {app.network_calls} batched calls)")

    from ..pnp import PnPVDMRecon
    pnp = PnPVDMRecon(y, A, prior, num_steps=args.steps,
                      sigma=args.sigma if args.sigma > 0 else None)
    recons["vdm-pnp"] = np.asarray(pnp.run())
    rows.append(dict(method="vdm-pnp", seconds=pnp.time, nfe=pnp.nfe,
                     **metrics.evaluate(x, recons["vdm-pnp"], data_range)))
    print(f"  {'vdm-pnp':<14} PSNR {rows[-1]['psnr']:6.2f} dB  SSIM {rows[-1]['ssim']:.3f}  "
          f"{pnp.time:6.2f} s  (plug-and-play, {pnp.nfe} network evaluations)")

    table = ["| method | PSNR (dB) | SSIM | NRMSE | HFEN | seconds | NFE |",
             "|---|---|---|---|---|---|---|"]
    table += [f"| {r['method']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['nrmse']:.4f} | "
              f"{r['hfen']:.4f} | {r['seconds']:.2f} | {r['nfe']} |" for r in rows]
    md = "\n".join(table) + "\n"
    _atomic_save(out / "demo.md", lambda p: p.write_text(md))
    meta = {"slice": args.slice_index, "scale": args.scale, "sigma": args.sigma,
            "seed": args.seed, "samples": args.samples, "data_range": data_range}
    _atomic_save(out / "demo.json",
                 lambda p: p.write_text(json.dumps({"meta": meta, "results": rows}, indent=1)))
    std = None if app.std is None else np.asarray(app.std)
    _atomic_save(out / "demo.png", lambda p: _figure(p, x, np.abs(A.H(y)), recons, rows, std))
    print("\n" + md)
    print(f"wrote {out / 'demo.png'}, {out / 'demo.md'}, {out / 'demo.json'}")


def _figure(path, x, zf, recons, rows, std):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(recons)
    psnr = {r["method"]: r["psnr"] for r in rows}
    ncol = len(names) + 1
    fig, ax = plt.subplots(2, ncol, figsize=(2.2 * ncol, 4.6))
    vmax = float(x.max())
    ax[0, 0].imshow(x, cmap="gray", vmin=0, vmax=vmax)
    ax[0, 0].set_title("reference (HR)", fontsize=8)
    if std is not None:
        ax[1, 0].imshow(std, cmap="magma", vmin=0, vmax=max(float(np.percentile(std, 99.5)), 1e-12))
        ax[1, 0].set_title("VDM uncertainty (std)", fontsize=8)
    for j, name in enumerate(names, start=1):
        ax[0, j].imshow(recons[name], cmap="gray", vmin=0, vmax=vmax)
        ax[0, j].set_title(f"{name}\n{psnr[name]:.2f} dB", fontsize=8)
        ax[1, j].imshow(np.abs(recons[name] - x), cmap="inferno", vmin=0, vmax=0.25 * vmax)
        ax[1, j].set_title("|error| (x4)", fontsize=8)
    for a in ax.ravel():
        a.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)

