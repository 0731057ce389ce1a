#!/usr/bin/env python
"""Benchmark every method, baselines and VDM samplers, with a cheap warm-up for the VDM.

Same options and outputs as ``mrirecon-vdm bench`` (``--help``), e.g. the headline run

    python benchmarks/bench_all.py --stride 19 --out results/bench_all

The only difference: ``mrirecon-vdm bench`` warms every method up with one untimed
reconstruction of the first slice, which for ``vdm-paper`` is 1000 network evaluations
(over a minute on 2 CPU cores) per scale factor. Here the VDM methods share one short
untimed warm-up per scale (``vdm-fast-10``: loads the prior, touches every layer), after
which their timings are steady (the first and later calls differ by < 5 %); the classical
methods keep the bench's own warm-up. Metrics are identical to ``mrirecon-vdm bench``'s:
the methods are seeded from each measurement, not from the order of the calls. The JSON
also records ``stride`` and ``limit``.
"""
import argparse
import pathlib
import sys

try:
    import mrirecon_vdm  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from mrirecon_vdm._cli import bench  # noqa: E402

WARMUP_METHOD = "vdm-fast-10"


def benchmark_all(images, scales=(4, 2), methods=None, sigma=0.0, seed=0, data_range=None,
                  log=print):
    """:func:`mrirecon_vdm._cli.bench.benchmark` with one short warm-up for the VDM methods."""
    from mrirecon_vdm.baselines import METHODS, reconstruct
    from mrirecon_vdm.config import bart_available

    methods = list(METHODS) if methods is None else list(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; registered: "
                         f"{', '.join(METHODS)}")
    data_range = float(images.max()) if data_range is None else data_range
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
        A, ys = bench.simulate(images, scale, sigma, seed)
        warmed = False
        for m in runnable:
            is_vdm = m.startswith("vdm")
            if is_vdm and not warmed:
                reconstruct(WARMUP_METHOD, ys[0], A, scale)
                warmed = True
            row = bench.bench_method(m, images, A, ys, scale, data_range, warmup=not is_vdm)
            log(f"{m:>14s} {scale}x: PSNR {row['psnr']:.2f} SSIM {row['ssim']:.3f} "
                f"{row['seconds_per_slice']:.3f} s/slice")
            rows.append(row)
    return rows


def run(args):
    import time

    bench.load_plugins(args.plugin)
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
    images, source = bench.load_data(args.data, args.key, args.split)
    data_range = float(images.max())  # the whole data set's maximum, before --stride/--limit
    images = images[::args.stride][:args.limit]
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    start = time.perf_counter()
    rows = benchmark_all(images, args.scales, args.methods, args.sigma, args.seed, data_range,
                         log)
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
    paths = bench.write_outputs(rows, meta, args.out, args.json)
    print(bench.markdown_table(rows))
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)
    return 0


def main(argv=None):
    parser = bench.add_arguments(argparse.ArgumentParser(prog="bench_all",
                                                         description=__doc__.split("\n\n")[0]))
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (ValueError, FileNotFoundError, RuntimeError, KeyError, OSError) as e:
        print(f"bench_all: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
