"""``mrirecon-vdm bench``: every registered method on a data set, at several scale factors.

For each slice ``x`` (real HR magnitude) and factor ``f``, the measurement is the central
``(H/f) x (W/f)`` block of its orthonormal k-space plus optional complex Gaussian noise
(seed ``seed + slice index``); each registered method reconstructs it and is scored with
PSNR, SSIM, NRMSE and HFEN with the data range of the whole data set (its maximum: the
fastMRI convention), reported as mean and standard deviation over slices, with the mean
wall-clock seconds per slice (after an untimed warm-up) and the network evaluations (NFE)
per slice. How: :mod:`mrirecon_vdm.bench.runner`.

Writes ``<out>/bench.md`` (Markdown table), ``<out>/bench.csv`` and ``<out>/bench.json``
(``{"results": [{"method", "scale", "psnr", "psnr_std", ..., "seconds_per_slice", "nfe"}]}``),
each atomically, and ``<out>/bench_slices.csv`` (every slice's metrics, for paired
comparisons); see :mod:`mrirecon_vdm.bench.tables`.

**Resuming.** Every finished slice is appended to the journal ``<out>/bench.journal.jsonl``
(:mod:`mrirecon_vdm.bench.journal`). After a kill, the same command with ``--resume`` reads
the journal, skips the slices already done (their metrics and timings are kept) and goes
on; a journal written for other data is refused with the difference, entries made with
other method settings (re-tuned classical weights, another prior) are run again, and a line
torn by the kill is dropped. Methods and factors may be added on resume. Without
``--resume`` the journal is started afresh.

The methods are those of the registry (:data:`mrirecon_vdm.bench.registry.METHODS`): the
classical baselines and the VDM samplers (:mod:`mrirecon_vdm.bench.vdm_methods`); more
methods are added by a module that calls :func:`mrirecon_vdm.bench.register_method`, named
with ``--plugin MODULE``.

This module only parses the options; the engine is :mod:`mrirecon_vdm.bench`. Heavy imports
happen inside the functions, so ``--help`` is fast.
"""
import argparse
import sys

# The engine (mrirecon_vdm.bench), also importable from here by its old names.
from ..bench.journal import JOURNAL, JOURNAL_FORMAT, BenchJournal, fingerprint  # noqa: F401
from ..bench.journal import method_settings, prior_fingerprint  # noqa: F401
from ..bench.runner import LEARNED_WARMUP, PLUGINS, bench_method, benchmark  # noqa: F401
from ..bench.runner import check_run, load_data, load_plugins, lr_shape_for  # noqa: F401
from ..bench.runner import simulate  # noqa: F401
from ..bench.tables import COLUMNS, SLICE_COLUMNS, markdown_table, write_outputs  # noqa: F401

DEFAULT_OUT = "results/bench"
#: The lock file in ``--out`` that keeps a second benchmark out (:mod:`mrirecon_vdm._lock`).
LOCK_NAME = "bench.lock"
DESCRIPTION = ("Benchmark every registered reconstruction method (default: all, the "
               "classical baselines and the VDM samplers) on a data set at several super-resolution factors: PSNR, SSIM, "
               "NRMSE, HFEN (mean and std over slices), seconds per slice and NFE, written "
               "as a Markdown table, CSV and JSON.")


def add_arguments(parser):
    """The bench options, shared by the CLI and ``benchmarks/bench.py``."""
    parser.add_argument("--data", metavar="PATH",
                        help="HR magnitude slices (.npy, .npz, .h5/.hdf5, .nii/.nii.gz); "
                             "default: the built data set's --split")
    parser.add_argument("--key", help="array / dataset name inside an .npz or HDF5 file")
    parser.add_argument("--split", default="test",
                        help="split of the built data set when --data is not given "
                             "(default: test)")
    parser.add_argument("--task", default="sr", choices=("sr", "cartesian", "poisson"),
                        help="sr: centre-crop super-resolution (default); cartesian: 1D "
                             "Cartesian undersampling (random lines, fully sampled centre); "
                             "poisson: 2D Poisson-disc undersampling")
    parser.add_argument("--scales", type=int, nargs="+", default=[4, 2], metavar="F",
                        help="super-resolution factors of the sr task (default: 4 2)")
    parser.add_argument("--accel", type=int, nargs="+", metavar="R",
                        help="accelerations of the undersampling tasks (default: 4 for "
                             "cartesian, 8 for poisson)")
    parser.add_argument("--center-fraction", type=float, default=0.08, metavar="F",
                        help="fully sampled centre: fraction of the lines (cartesian) or of "
                             "each side of the calibration square (poisson); default 0.08")
    parser.add_argument("--coils", type=int, default=1, metavar="C",
                        help="1: single coil (default); C > 1: simulated birdcage maps, "
                             "reconstructed with ESPIRiT maps estimated from the data, and "
                             "k-space noise on by default")
    parser.add_argument("--phase", default="none", choices=("none", "smooth"),
                        help="none: real images (default); smooth: a seeded random smooth "
                             "phase on each image (the VDM methods then run with "
                             "phase='auto')")
    parser.add_argument("--methods", nargs="+", metavar="NAME",
                        help="methods to run (default: all registered)")
    parser.add_argument("--limit", type=int, metavar="N", help="use the first N slices only")
    parser.add_argument("--stride", type=int, default=1, metavar="S",
                        help="use every S-th slice (applied before --limit; default 1)")
    parser.add_argument("--sigma", type=float, default=None,
                        help="k-space noise standard deviation, in the images' units "
                             "(default: 0; with --coils > 1: 0.2 %% of the largest k-space "
                             "magnitude, recorded in the results)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed of slice 0 (default 0)")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                        help=f"folder for bench.md / .csv / .json (default: {DEFAULT_OUT})")
    parser.add_argument("--json", metavar="PATH", help="write the JSON here instead")
    parser.add_argument("--resume", action="store_true",
                        help="go on from <out>/bench.journal.jsonl after a kill: slices "
                             "already done are not run again")
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


def run(args):
    """Entry point of ``mrirecon-vdm bench``."""
    import pathlib
    import time

    load_plugins(args.plugin)
    from ..bench.registry import METHODS

    if args.list:
        for m in METHODS.values():
            print(f"{m.name:20s} {m.description}" + ("  [needs BART]" if m.requires_bart else ""))
        return 0
    if args.sigma is not None and args.sigma < 0:
        raise ValueError(f"--sigma must be >= 0, got {args.sigma}")
    from ..bench.tasks import MAX_COILS, Task
    if not 1 <= args.coils <= MAX_COILS:
        raise ValueError(f"--coils: expected an integer in [1, {MAX_COILS}] (the most simulated "
                         f"coils; each one multiplies the work), got {args.coils}")
    if args.task != "sr" and not 0 < args.center_fraction < 1:
        raise ValueError(f"--center-fraction: expected a fraction in (0, 1) of the lines, got "
                         f"{args.center_fraction}")
    task = Task(args.task, center_fraction=args.center_fraction, coils=args.coils,
                phase=args.phase, sigma=args.sigma)
    if args.task == "sr":
        if args.accel:
            raise ValueError("--accel applies to --task cartesian|poisson; use --scales for sr")
        factors = args.scales
    else:
        factors = args.accel or ([4] if args.task == "cartesian" else [8])
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    if args.stride < 1:
        raise ValueError(f"--stride must be >= 1, got {args.stride}")
    unknown = [m for m in args.methods or () if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; registered: "
                         f"{', '.join(METHODS)}")
    from .._checks import check_output_path, check_seed
    check_seed("--seed", args.seed)
    check_output_path("--out", args.out, folder=True)
    if args.json:
        check_output_path("--json", args.json)
    images, source = load_data(args.data, args.key, args.split)
    data_range = float(images.max())  # the whole data set's maximum, before --stride/--limit
    images = images[::args.stride][:args.limit]
    # every factor, method, the seed and the prior's size rule, before the first method runs
    check_run(images, factors, args.methods, task, args.seed)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    start = time.perf_counter()
    from .._lock import exclusive_lock
    with exclusive_lock(pathlib.Path(args.out) / LOCK_NAME, f"--out {args.out}",
                        hint="wait for that benchmark to finish (or stop it) or choose "
                             "another --out"):
        journal = BenchJournal(pathlib.Path(args.out) / JOURNAL,
                               fingerprint(images, data_range, args.sigma or 0.0, args.seed,
                                           args.plugin, task=task),
                               resume=args.resume)
        if journal.resumed:
            log(f"resuming from {journal.path}: {journal.resumed} slice results kept")
        try:
            rows = benchmark(images, factors, args.methods, args.sigma or 0.0, args.seed,
                             data_range, log, journal=journal, task=task,
                             show_progress=True)
        finally:
            journal.close()
        return _finish(args, rows, images, source, data_range, task, start)


def _finish(args, rows, images, source, data_range, task, start):
    """The metadata, the tables and the report of :func:`run`."""
    import time
    meta = {"data": source, "n_slices": int(images.shape[0]), "stride": args.stride,
            "limit": args.limit, "image_shape": list(images.shape[1:]),
            "data_range": data_range, "sigma": rows[0]["sigma"] if rows else args.sigma,
            "seed": args.seed, "task": task.describe(),
            "wall_time_s": round(time.perf_counter() - start, 1)}
    if any(r["method"].startswith("vdm") for r in rows):
        from ..bench import vdm_methods as vm
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
