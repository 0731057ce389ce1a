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
(``{"results": [{"method", "scale", "psnr", "psnr_std", ..., "seconds_per_slice", "nfe"}]}``),
each atomically, and ``<out>/bench_slices.csv`` (every slice's metrics, for paired
comparisons).

**Resuming.** Every finished slice is appended (flushed and fsync'ed) to the journal
``<out>/bench.journal.jsonl``, whose first line fingerprints the data (the slices' bytes,
the data range, σ, the seed). After a kill, the same command with ``--resume`` reads the
journal, skips the slices already done (their metrics and timings are kept) and goes on; a
journal written for other data is refused with the difference, entries made with other
method settings (re-tuned classical weights, another prior) are run again, and a line torn
by the kill is dropped. Methods and factors may be added on resume. Without
``--resume`` the journal is started afresh.

The VDM samplers come from :mod:`mrirecon_vdm.vdm_methods` (in :data:`PLUGINS`); more methods
are added by a module that calls :func:`mrirecon_vdm.baselines.register_method`, named with
``--plugin MODULE``. Heavy imports happen inside the functions, so ``--help`` is fast.
"""
import argparse
import json
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
SLICE_COLUMNS = ("method", "scale", "slice", "psnr", "ssim", "nrmse", "hfen", "seconds", "nfe")


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


JOURNAL = "bench.journal.jsonl"
#: Version of the journal's format (part of its fingerprint).
JOURNAL_FORMAT = 2


class BenchJournal:
    """Append-only record of finished slices, so that a killed benchmark can go on.

    The first line is ``{"fingerprint": {...}}`` (the data); every further line is one
    finished ``(method, scale, slice)`` with its metrics, seconds, NFE and the method's
    ``settings`` (:func:`method_settings`): an entry made with other settings is not
    reused. Each line is flushed and fsync'ed when written, so a kill loses at most the
    slice in progress (a torn last line is dropped on reading).

    Args:
        path (path-like): the journal file.
        fingerprint (dict): JSON-serialisable description of the run; ``resume`` requires
            the journal's to be equal.
        resume (bool): read and extend an existing journal (a missing one starts fresh);
            False starts a fresh journal, replacing any old one.

    Raises:
        ValueError: ``resume`` and the journal belongs to another run, or a line other
            than the last is not valid JSON.
    """

    def __init__(self, path, fingerprint, resume=False):
        import pathlib

        from mrirecon_vdm._atomic import atomic_write_text

        self.path = pathlib.Path(path)
        self.fingerprint = json.loads(json.dumps(fingerprint))   # normalised (tuples, ...)
        self.entries = {}
        self.resumed = 0
        if resume and self.path.exists():
            self._read()
            self.resumed = len(self.entries)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path, json.dumps({"fingerprint": self.fingerprint}) + "\n")
        self._file = open(self.path, "a", encoding="utf-8")

    def _read(self):
        lines = self.path.read_text(encoding="utf-8").split("\n")
        complete = lines[:-1]          # text after the last newline is a torn write
        if not complete:
            raise ValueError(f"{self.path}: empty benchmark journal; rerun without --resume")
        try:
            head = json.loads(complete[0])["fingerprint"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{self.path}: not a benchmark journal (first line "
                             f"{complete[0][:80]!r}); rerun without --resume") from None
        if head != self.fingerprint:
            from mrirecon_vdm._checks import differing_keys
            diff = differing_keys(head, self.fingerprint)
            raise ValueError(f"{self.path} was written for another run (it differs in "
                             f"{', '.join(diff)}: journal {[head.get(k) for k in diff]}, "
                             f"now {[self.fingerprint.get(k) for k in diff]}); rerun without "
                             f"--resume to start over, or use another --out")
        for n, line in enumerate(complete[1:], start=2):
            try:
                e = json.loads(line)
                key = (e["method"], int(e["scale"]), int(e["slice"]))
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"{self.path}: line {n} is not a journal entry: "
                                 f"{line[:80]!r}") from None
            self.entries[key] = e
        if lines[-1]:
            # drop the torn tail so that the next entry starts on a fresh line
            with open(self.path, "w", encoding="utf-8") as f:
                f.write("\n".join(complete) + "\n")
                f.flush()
                import os
                os.fsync(f.fileno())

    def done(self, method, scale, settings=None):
        """``{slice: entry}`` of the slices of ``method`` at ``scale`` already finished.

        With ``settings``, only entries recorded with the same settings (e.g. the classical
        method's tuned weights, the prior's hash) count: stale ones are run again.
        """
        settings = None if settings is None else json.loads(json.dumps(settings))
        return {k[2]: e for k, e in self.entries.items() if k[:2] == (method, int(scale))
                and (settings is None or e.get("settings") == settings)}

    def add(self, entry):
        """Record one finished slice (a dict with ``method``, ``scale``, ``slice``, ...)."""
        import os

        key = (entry["method"], int(entry["scale"]), int(entry["slice"]))
        self.entries[key] = entry
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self):
        self._file.close()


def method_settings(name, scale):
    """What a journal entry of ``name`` at ``scale`` depends on besides the data.

    The tuned ``lamda`` / ``max_iter`` of the regularised classical methods
    (``mrirecon_vdm/baselines_defaults.json``) and, for learned methods (NFE > 0), the
    prior's SHA-256 (:func:`prior_fingerprint`). A re-tuned baseline or another prior makes
    its old entries stale.
    """
    from mrirecon_vdm import baselines as B

    if name in B.REGULARISED:
        return {"lamda": B.default_lamda(name, scale), "max_iter": B.default_max_iter(name, scale)}
    if name in B.METHODS and B.METHODS[name].nfe > 0:
        return prior_fingerprint()
    return {}


def prior_fingerprint():
    """The VDM methods' prior: its source, training step and the SHA-256 of its weights
    (:func:`mrirecon_vdm.prior.pretrained.weights_sha256`, computed once per prior)."""
    from mrirecon_vdm import vdm_methods as vm
    from mrirecon_vdm.prior.pretrained import weights_sha256

    prior = vm.get_prior()
    if _prior_fp.get("prior") is not prior:
        fp = {"prior": vm.prior_source(),
              "prior_step": getattr(prior, "provenance", {}).get("step"),
              "prior_sha256": weights_sha256(prior)}
        _prior_fp.update(prior=prior, fp=fp)
    return dict(_prior_fp["fp"])


_prior_fp = {}          # the last prior hashed and its fingerprint (the weights are frozen)


def bench_method(name, images, A, ys, scale, data_range, warmup=True, journal=None, **opts):
    """One method at one scale: a result row (dict) with metric means/stds and timing.

    With a :class:`BenchJournal`, slices it already holds are taken from it and each new
    slice is recorded in it as soon as it is done. The row's ``per_slice`` holds every
    slice's metrics, seconds and NFE (in slice order).
    """
    import time

    import numpy as np
    import sigpy as sp

    from mrirecon_vdm import metrics
    from mrirecon_vdm.baselines import reconstruct

    settings = method_settings(name, scale) if journal is not None else None
    done = journal.done(name, scale, settings) if journal is not None else {}
    todo = [i for i in range(len(ys)) if i not in done]
    if warmup and todo:
        reconstruct(name, ys[todo[0]], A, scale, **opts)
    for i in todo:
        start = time.perf_counter()
        x, nfe = reconstruct(name, ys[i], A, scale, **opts)
        seconds = time.perf_counter() - start
        x = np.asarray(sp.to_device(x, sp.cpu_device))
        entry = {"method": name, "scale": int(scale), "slice": i,
                 **metrics.evaluate(images[i], x, data_range),
                 "seconds": seconds, "nfe": int(nfe), "settings": settings}
        if journal is not None:
            journal.add(entry)
        done[i] = entry
    entries = [done[i] for i in range(len(ys))]
    per_slice = {m: [e[m] for e in entries] for m in metrics.METRICS}
    row = {"method": name, "scale": int(scale)}
    row.update({k: v for k, v in metrics.summarize(per_slice).items() if k != "n"})
    row.update(seconds_per_slice=float(np.mean([e["seconds"] for e in entries])),
               nfe=int(np.mean([e["nfe"] for e in entries])), n_slices=len(ys),
               per_slice=entries)
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
    """Write bench.md, bench.csv, bench.json and bench_slices.csv (each atomically).

    Returns their paths. Rows may carry ``per_slice`` (from :func:`bench_method`): it goes
    to bench_slices.csv, not to the JSON.
    """
    import csv
    import io
    import json
    import pathlib

    from mrirecon_vdm._atomic import atomic_write_text

    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, csv_path = out_dir / "bench.md", out_dir / "bench.csv"
    slices_path = out_dir / "bench_slices.csv"
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
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=SLICE_COLUMNS)
    w.writeheader()
    for r in rows:
        for e in r.get("per_slice", ()):
            w.writerow({k: e[k] for k in SLICE_COLUMNS})
    atomic_write_text(slices_path, buf.getvalue())
    summary = [{k: v for k, v in r.items() if k != "per_slice"} for r in rows]
    atomic_write_text(json_path, json.dumps({**meta, "results": summary}, indent=2) + "\n")
    return md, csv_path, json_path, slices_path


#: A cheap untimed warm-up shared by the learned methods of one scale factor (loads the prior,
#: touches every layer), instead of a full reconstruction: ``vdm-paper`` would cost 1000
#: network evaluations per factor.
LEARNED_WARMUP = "vdm-fast-10"


def benchmark(images, scales=(4, 2), methods=None, sigma=0.0, seed=0, data_range=None,
              log=print, journal=None):
    """Run methods x scales on ``images`` (n, H, W); return the result rows.

    Methods that need BART are skipped with a note when it is missing. Classical methods
    get one untimed warm-up reconstruction of the first slice; learned methods (``nfe > 0``)
    share one short warm-up (:data:`LEARNED_WARMUP`) per factor; warm-ups are skipped for
    work a :class:`BenchJournal` already holds. A missing prior fails before any work.
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
            pending = (journal is None
                       or len(journal.done(m, scale, method_settings(m, scale))) < len(ys))
            if learned and pending and not warmed and LEARNED_WARMUP in METHODS:
                reconstruct(LEARNED_WARMUP, ys[0], A, scale)
                warmed = True
            row = bench_method(m, images, A, ys, scale, data_range, warmup=not learned,
                               journal=journal)
            log(f"{m:>14s} {scale}x: PSNR {row['psnr']:.2f} SSIM {row['ssim']:.3f} "
                f"{row['seconds_per_slice']:.3f} s/slice")
            rows.append(row)
    return rows


def fingerprint(images, data_range, sigma, seed, plugins=()):
    """What a resumed benchmark must share with the journal it goes on from: the data.

    The slices' bytes (SHA-256, after ``--stride``/``--limit``), the data range, σ, the
    seed and the plugins. The methods and factors may change between runs; what each method
    depends on (tuned weights, the prior) is checked per entry (:func:`method_settings`).
    """
    import hashlib

    import numpy as np

    return {"format": JOURNAL_FORMAT,
            "images_sha256": hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest(),
            "image_stack": list(images.shape), "data_range": float(data_range),
            "sigma": float(sigma), "seed": seed, "plugins": sorted(plugins)}


def run(args):
    """Entry point of ``mrirecon-vdm bench``."""
    import pathlib
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
    unknown = [m for m in args.methods or () if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; registered: "
                         f"{', '.join(METHODS)}")
    images, source = load_data(args.data, args.key, args.split)
    data_range = float(images.max())  # the whole data set's maximum, before --stride/--limit
    images = images[::args.stride][:args.limit]
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    start = time.perf_counter()
    journal = BenchJournal(pathlib.Path(args.out) / JOURNAL,
                           fingerprint(images, data_range, args.sigma, args.seed,
                                       args.plugin),
                           resume=args.resume)
    if journal.resumed:
        log(f"resuming from {journal.path}: {journal.resumed} slice results kept")
    try:
        rows = benchmark(images, args.scales, args.methods, args.sigma, args.seed, data_range,
                         log, journal=journal)
    finally:
        journal.close()
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
