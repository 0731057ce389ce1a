"""``mrirecon-vdm bench``: every registered method on a data set, at several scale factors.

For each slice ``x`` (real HR magnitude) and factor ``f``, the measurement is the central
``(H/f) x (W/f)`` block of its orthonormal k-space plus optional complex Gaussian noise
(:func:`mrirecon_vdm.noise.simulate_lowres`, seed ``seed + slice index``); each method of
the registry (:data:`mrirecon_vdm.baselines.METHODS`) reconstructs it and is scored with
PSNR, SSIM, NRMSE and HFEN (:mod:`mrirecon_vdm.metrics`) with the data range of the whole
data set (its maximum: the fastMRI convention), reported as mean and standard deviation over
slices, with the mean wall-clock seconds per slice (after an untimed warm-up: one slice for
the classical methods, one short 10-step run shared by the learned ones) and the network
evaluations (NFE) per slice.

Writes ``<out>/bench.md`` (Markdown table), ``<out>/bench.csv`` and ``<out>/bench.json``
(``{"results": [{"method", "scale", "psnr", "psnr_std", ..., "seconds_per_slice", "nfe"}]}``).

The VDM samplers come from :mod:`mrirecon_vdm.vdm_methods` (in :data:`PLUGINS`); more methods
are added by a module that calls :func:`mrirecon_vdm.baselines.register_method`, named with
``--plugin MODULE``. Heavy imports happen inside the functions, so ``--help`` is fast.
"""
import argparse
import sys

#: Modules imported before a run, so that they register their methods.
PLUGINS = ("mrirecon_vdm.vdm_methods",)

DEFAULT_OUT = "results/bench"
DESCRIPTION = ("Benchmark every registered reconstruction method (default: all, the "
               "classical baselines and the VDM samplers) on a data set at several super-resolution factors: PSNR, SSIM, "
               "NRMSE, HFEN (mean and std over slices), seconds per slice and NFE, written "
               "as a Markdown table, CSV and JSON.")
COLUMNS = ("method", "scale", "psnr", "psnr_std", "ssim", "ssim_std", "nrmse", "nrmse_std",
           "hfen", "hfen_std", "seconds_per_slice", "nfe", "n_slices")


def add_arguments(parser):
    """The bench options, shared by the CLI and ``benchmarks/bench.py``."""
    parser.add_argument("--data", metavar="PATH",
                        help="HR magnitude slices (.npy, .npz, .h5/.hdf5, .nii/.nii.gz); "
                             "default: the built data set's --split")
    parser.add_argument("--key", help="array / dataset name inside an .npz or HDF5 file")
    parser.add_argument("--split", default="test",
                        help="split of the built data set when --data is not given "
                             "(default: test)")
    parser.add_argument("--scales", type=int, nargs="+", default=[4, 2], metavar="F",
                        help="super-resolution factors (default: 4 2)")
    parser.add_argument("--methods", nargs="+", metavar="NAME",
                        help="methods to run (default: all registered)")
    parser.add_argument("--limit", type=int, metavar="N", help="use the first N slices only")
    parser.add_argument("--stride", type=int, default=1, metavar="S",
                        help="use every S-th slice (applied before --limit; default 1)")
    parser.add_argument("--sigma", type=float, default=0.0,
                        help="k-space noise standard deviation, in the images' units "
                             "(default: 0)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed of slice 0 (default 0)")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                        help=f"folder for bench.md / .csv / .json (default: {DEFAULT_OUT})")
    parser.add_argument("--json", metavar="PATH", help="write the JSON here instead")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import MODULE first (it registers more methods); repeatable")
    parser.add_argument("--list", action="store_true", help="list the methods and exit")
    return parser


def register(subparsers):
    """Add the ``bench`` subcommand."""
    parser = subparsers.add_parser(
        "bench", help="benchmark reconstruction methods on a data set",
        description=DESCRIPTION)
    add_arguments(parser)
    parser.set_defaults(func=run)


def load_plugins(modules=()):
    """Import :data:`PLUGINS` and ``modules``: they register their methods."""
    import importlib

    for name in PLUGINS + tuple(modules):
        importlib.import_module(name)


def load_data(data=None, key=None, split="test", limit=None):
    """The reference slices (n, H, W) float32 and a description of where they came from."""
    import numpy as np

    from mrirecon_vdm import data as D

    if data is not None:
        images, source = D.load_images(data, key), str(data)
    else:
        images, source = D.load_split(split), f"split {split!r} of the built data set"
    images = np.asarray(images)
    if np.iscomplexobj(images):
        raise ValueError(f"{source}: expected magnitude images, got complex data")
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or images.shape[0] == 0:
        raise ValueError(f"{source}: expected slices of shape (n, H, W), got {images.shape}")
    if limit is not None:
        if limit < 1:
            raise ValueError(f"--limit must be >= 1, got {limit}")
        images = images[:limit]
    return images.astype(np.float32, copy=False), source


def lr_shape_for(hr_shape, scale):
    """``(H // f, W // f)``; ``ValueError`` unless ``f`` divides both."""
    if scale < 1 or any(n % scale for n in hr_shape):
        raise ValueError(f"scale factor {scale} must be >= 1 and divide the image size "
                         f"{tuple(hr_shape)}")
    return tuple(n // scale for n in hr_shape)


def simulate(images, scale, sigma=0.0, seed=0):
    """``(A, [y_i])``: the crop operator and each slice's noisy LR k-space."""
    from mrirecon_vdm.linop import CropFourier
    from mrirecon_vdm.noise import simulate_lowres

    hr = images.shape[-2:]
    lr = lr_shape_for(hr, scale)
    ys = [simulate_lowres(x, lr, sigma=sigma, seed=None if seed is None else seed + i)
          for i, x in enumerate(images)]
    return CropFourier(hr, lr), ys


def bench_method(name, images, A, ys, scale, data_range, warmup=True, **opts):
    """One method at one scale: a result row (dict) with metric means/stds and timing."""
    import time

    import numpy as np
    import sigpy as sp

    from mrirecon_vdm import metrics
    from mrirecon_vdm.baselines import reconstruct

    if warmup:
        reconstruct(name, ys[0], A, scale, **opts)
    recons, seconds, nfes = [], [], []
    for y in ys:
        start = time.perf_counter()
        x, nfe = reconstruct(name, y, A, scale, **opts)
        seconds.append(time.perf_counter() - start)
        recons.append(np.asarray(sp.to_device(x, sp.cpu_device)))
        nfes.append(nfe)
    per_slice = metrics.evaluate_slices(images, np.stack(recons), data_range)
    row = {"method": name, "scale": int(scale)}
    row.update({k: v for k, v in metrics.summarize(per_slice).items() if k != "n"})
    row.update(seconds_per_slice=float(np.mean(seconds)), nfe=int(np.mean(nfes)),
               n_slices=len(ys))
    return row


def markdown_table(rows):
    """The rows as a Markdown table (mean ± std)."""
    head = ("| method | scale | PSNR (dB) | SSIM | NRMSE | HFEN | s / slice | NFE |\n"
            "|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        lines.append(f"| {r['method']} | {r['scale']}× | {r['psnr']:.2f} ± {r['psnr_std']:.2f} "
                     f"| {r['ssim']:.3f} ± {r['ssim_std']:.3f} "
                     f"| {r['nrmse']:.4f} ± {r['nrmse_std']:.4f} "
                     f"| {r['hfen']:.4f} ± {r['hfen_std']:.4f} "
                     f"| {r['seconds_per_slice']:.3f} | {r['nfe']} |")
    return "\n".join(lines)


def write_outputs(rows, meta, out_dir, json_path=None):
    """Write bench.md, bench.csv and bench.json (each atomically); return their paths."""
    import csv
    import io
    import json
    import pathlib

    from mrirecon_vdm._atomic import atomic_write_text

    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, csv_path = out_dir / "bench.md", out_dir / "bench.csv"
    json_path = pathlib.Path(json_path) if json_path else out_dir / "bench.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(md, f"Data: {meta['data']} ({meta['n_slices']} slices, data range "
                  f"{meta['data_range']:.4g}, k-space noise sigma {meta['sigma']:g})\n\n"
                  + markdown_table(rows) + "\n")
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=COLUMNS)
    w.writeheader()
    for r in rows:
        w.writerow({k: r[k] for k in COLUMNS})
    atomic_write_text(csv_path, buf.getvalue())
    atomic_write_text(json_path, json.dumps({**meta, "results": rows}, indent=2) + "\n")
    return md, csv_path, json_path


#: A cheap untimed warm-up shared by the learned methods of one scale factor (loads the prior,
#: touches every layer), instead of a full reconstruction: ``vdm-paper`` would cost 1000
#: network evaluations per factor.
LEARNED_WARMUP = "vdm-fast-10"


def benchmark(images, scales=(4, 2), methods=None, sigma=0.0, seed=0, data_range=None,
              log=print):
    """Run methods x scales on ``images`` (n, H, W); return the result rows.

    Methods that need BART are skipped with a note when it is missing. Classical methods
    get one untimed warm-up reconstruction of the first slice; learned methods (``nfe > 0``)
    share one short warm-up (:data:`LEARNED_WARMUP`) per factor. A missing prior fails
    before any work.
    """
    from mrirecon_vdm.baselines import METHODS, reconstruct
    from mrirecon_vdm.config import bart_available

    methods = list(METHODS) if methods is None else list(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; registered: "
                         f"{', '.join(METHODS)}")
    if data_range is None:
        data_range = float(images.max())
    runnable = []
    for m in methods:
        if METHODS[m].requires_bart and not bart_available():
            log(f"note: skipping {m}: BART is not installed (apt-get install bart; "
                "pip install mrbart)")
        else:
            runnable.append(m)
    if any(m.startswith("vdm") for m in runnable):
        from mrirecon_vdm import vdm_methods
        vdm_methods.get_prior()        # fail before any work when the prior is missing
    rows = []
    for scale in scales:
        A, ys = simulate(images, scale, sigma, seed)
        warmed = False
        for m in runnable:
            learned = METHODS[m].nfe > 0
            if learned and not warmed and LEARNED_WARMUP in METHODS:
                reconstruct(LEARNED_WARMUP, ys[0], A, scale)
                warmed = True
            row = bench_method(m, images, A, ys, scale, data_range, warmup=not learned)
            log(f"{m:>14s} {scale}x: PSNR {row['psnr']:.2f} SSIM {row['ssim']:.3f} "
                f"{row['seconds_per_slice']:.3f} s/slice")
            rows.append(row)
    return rows


def run(args):
    """Entry point of ``mrirecon-vdm bench``."""
    import time

    load_plugins(args.plugin)
    from mrirecon_vdm.baselines import METHODS

    if args.list:
        for m in METHODS.values():
            print(f"{m.name:16s} {m.description}" + ("  [needs BART]" if m.requires_bart else ""))
        return 0
    if args.sigma < 0:
        raise ValueError(f"--sigma must be >= 0, got {args.sigma}")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    if args.stride < 1:
        raise ValueError(f"--stride must be >= 1, got {args.stride}")
    images, source = load_data(args.data, args.key, args.split)
    data_range = float(images.max())  # the whole data set's maximum, before --stride/--limit
    images = images[::args.stride][:args.limit]
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    start = time.perf_counter()
    rows = benchmark(images, args.scales, args.methods, args.sigma, args.seed, data_range, log)
    meta = {"data": source, "n_slices": int(images.shape[0]), "stride": args.stride,
            "limit": args.limit, "image_shape": list(images.shape[1:]),
            "data_range": data_range, "sigma": args.sigma, "seed": args.seed,
            "wall_time_s": round(time.perf_counter() - start, 1)}
    if any(r["method"].startswith("vdm") for r in rows):
        from mrirecon_vdm import vdm_methods as vm
        meta["prior"] = vm.prior_source()
        meta["prior_provenance"] = {k: v for k, v in
                                    getattr(vm.get_prior(), "provenance", {}).items()
                                    if k in ("step", "images_seen", "train_wall_time_s",
                                             "val_bpd", "exported", "note")}
        meta["nfe_convention"] = "images through the network per slice (K samples x steps)"
    paths = write_outputs(rows, meta, args.out, args.json)
    print(markdown_table(rows))
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)
    return 0


def main(argv=None):
    """Standalone entry point (``benchmarks/bench.py``)."""
    parser = add_arguments(argparse.ArgumentParser(prog="bench",
                                                   description=DESCRIPTION))
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (ValueError, FileNotFoundError, RuntimeError, KeyError, OSError) as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 2
