"""Running the benchmark: the data, the simulated measurements, every method at every factor.

For each slice ``x`` (real HR magnitude) and factor ``f``, the measurement is the central
``(H/f) x (W/f)`` block of its orthonormal k-space plus optional complex Gaussian noise
(:func:`mrirecon_vdm.bench.tasks.simulate`, with :func:`mrirecon_vdm.noise.simulate_lowres`, seed
``seed + slice index``); each method of the registry
(:data:`mrirecon_vdm.bench.registry.METHODS`) reconstructs it and is scored with PSNR, SSIM,
NRMSE and HFEN (:mod:`mrirecon_vdm.metrics`) with the data range of the whole data set (its
maximum: the fastMRI convention), reported as mean and standard deviation over slices, with
the mean wall-clock seconds per slice (after an untimed warm-up: one slice for the classical
methods, one short 10-step run shared by the learned ones, :data:`LEARNED_WARMUP`) and the
network evaluations (NFE) per slice.

The methods are those registered when the run starts: the classical ones
(:mod:`mrirecon_vdm.bench.registry`), the VDM samplers (:mod:`mrirecon_vdm.bench.vdm_methods`,
in :data:`PLUGINS`) and those of any module given to :func:`load_plugins`. With a
:class:`~mrirecon_vdm.bench.journal.BenchJournal`, finished slices are recorded as they are
done and slices already recorded are not run again. Heavy imports happen inside the
functions.

Example:
    >>> from mrirecon_vdm.bench import benchmark, load_data, load_plugins
    >>> load_plugins()
    >>> images, source = load_data(split="val", limit=4)
    >>> rows = benchmark(images, scales=(4,), methods=["zero-fill", "vdm-fast-25"])
"""
from .journal import method_settings
from .tasks import lr_shape_for, simulate  # noqa: F401  (the engine's names, one import)

__all__ = ["PLUGINS", "LEARNED_WARMUP", "load_plugins", "load_data", "lr_shape_for",
           "simulate", "bench_method", "benchmark", "check_run"]

#: Modules imported before a run, so that they register their methods.
PLUGINS = ("mrirecon_vdm.bench.vdm_methods",)

#: A cheap untimed warm-up shared by the learned methods of one scale factor (loads the prior,
#: touches every layer), instead of a full reconstruction: ``vdm-paper`` would cost 1000
#: network evaluations per factor.
LEARNED_WARMUP = "vdm-fast-10"


def load_plugins(modules=()):
    """Import :data:`PLUGINS` and ``modules``: they register their methods.

    Raises:
        ValueError: a module of ``modules`` that does not exist (``--plugin NAME``); an
            error raised inside an existing plugin module is left as it is.
    """
    import importlib

    for name in PLUGINS + tuple(modules):
        if not isinstance(name, str) or not name:
            raise ValueError(f"bench plugin: expected a module name, got {name!r}")
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            missing = e.name or ""
            if name in PLUGINS or not (name == missing or name.startswith(missing + ".")):
                raise                   # a dependency of an existing module is missing
            raise ValueError(f"--plugin {name}: no module named {missing!r} on the Python "
                             f"path (a plugin is an importable module that calls "
                             f"register_method; add its folder to PYTHONPATH)") from None


def load_data(data=None, key=None, split="test", limit=None):
    """The reference slices (n, H, W) float32 and a description of where they came from."""
    import numpy as np

    from .. import data as D

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


def bench_method(name, images, A, ys, scale, data_range, warmup=True, journal=None, kind="sr",
                 extra=None, show_progress=False, **opts):
    """One method at one scale: a result row (dict) with metric means/stds and timing.

    With a :class:`~mrirecon_vdm.bench.journal.BenchJournal`, slices it already holds are
    taken from it and each new slice is recorded in it as soon as it is done. The row's
    ``per_slice`` holds every slice's metrics, seconds and NFE (in slice order). ``A`` is one
    operator for every slice or a list (one per slice: undersampling tasks); ``kind`` the
    operator kind of the tuned classical weights; ``extra`` is merged into the row;
    ``show_progress`` shows one update per slice (:func:`mrirecon_vdm.progress.progress`).
    """
    import time

    import numpy as np
    import sigpy as sp

    from .. import metrics
    from .registry import reconstruct

    ops = A if isinstance(A, (list, tuple)) else [A] * len(ys)
    settings = method_settings(name, scale, kind, opts) if journal is not None else None
    done = journal.done(name, scale, settings) if journal is not None else {}
    todo = [i for i in range(len(ys)) if i not in done]
    if warmup and todo:
        reconstruct(name, ys[todo[0]], ops[todo[0]], scale, **opts)
    from ..progress import progress
    bar = progress(len(todo), f"{name} {scale}x", leave=False,
                   disable=not (show_progress and todo))
    for i in todo:
        start = time.perf_counter()
        x, nfe = reconstruct(name, ys[i], ops[i], scale, **opts)
        seconds = time.perf_counter() - start
        x = np.asarray(sp.to_device(x, sp.cpu_device))
        entry = {"method": name, "scale": int(scale), "slice": i,
                 **metrics.evaluate(images[i], x, data_range),
                 "seconds": seconds, "nfe": int(nfe), "settings": settings}
        if journal is not None:
            journal.add(entry)
        done[i] = entry
        bar.update()
    bar.close()
    entries = [done[i] for i in range(len(ys))]
    per_slice = {m: [e[m] for e in entries] for m in metrics.METRICS}
    row = {"method": name, "scale": int(scale), **(extra or {})}
    row.update({k: v for k, v in metrics.summarize(per_slice).items() if k != "n"})
    row.update(seconds_per_slice=float(np.mean([e["seconds"] for e in entries])),
               nfe=int(np.mean([e["nfe"] for e in entries])), n_slices=len(ys),
               per_slice=entries)
    return row


def check_run(images, scales, methods=None, task=None, seed=0):
    """Every check of a benchmark run that needs no reconstruction, before the first method
    runs: the methods exist, every factor suits the task and the image size, the seed, and
    for the VDM methods that the prior loads.

    Returns:
        list: the method names (all registered ones for None).

    Raises:
        ValueError: an unknown method, a bad factor or seed.
        FileNotFoundError: the prior of the VDM methods is missing.
    """
    from .._checks import check_seed
    from .registry import METHODS
    from .tasks import PHASE_SEED_OFFSET, Task, check_calibration, check_factor

    task = Task("sr") if task is None else task
    methods = list(METHODS) if methods is None else list(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; registered: "
                         f"{', '.join(METHODS)}")
    if not len(scales):
        raise ValueError("--scales: expected at least one factor")
    hr = tuple(images.shape[-2:])
    for f in scales:
        try:
            check_factor(task, f, hr)
        except ValueError as e:
            opt = "--scales" if task.task == "sr" else "--accel"
            raise ValueError(f"{opt} {f}: {e}") from None
    check_calibration(task, hr)
    # slice i gets seed + i (and seed + i + PHASE_SEED_OFFSET for a smooth phase)
    check_seed("--seed", seed, allow_none=True, offset=len(images) + PHASE_SEED_OFFSET)
    if any(m.startswith("vdm") for m in methods):
        from . import vdm_methods
        vdm_methods.get_prior()            # fail before any work when the prior is missing
    return methods


def benchmark(images, scales=(4, 2), methods=None, sigma=0.0, seed=0, data_range=None,
              log=print, journal=None, task=None, show_progress=False):
    """Run methods x scales on ``images`` (n, H, W); return the result rows.

    ``task`` (:class:`~mrirecon_vdm.bench.tasks.Task`, default super-resolution) chooses the
    measurement; for the undersampling tasks ``scales`` are the accelerations R, ``sigma``
    is ignored (the task's own), methods that need the centre crop (bicubic) are skipped
    with a note, and the VDM methods get ``phase="auto"`` when the task carries a phase (a
    user with complex data says so). Rows gain ``task``, ``accel``, ``coils``, ``phase``
    and ``sigma``.

    Methods that need BART are skipped with a note when it is missing, and so are the
    constrained classical methods built on another image model than the task's
    (:attr:`~mrirecon_vdm.bench.registry.Method.constraint`: ``-real`` where the VDM
    methods reconstruct a real image, ``-phase`` where they estimate a phase,
    :attr:`~mrirecon_vdm.bench.tasks.Task.constraint`). Classical methods
    get one untimed warm-up reconstruction of the first slice; learned methods (``nfe > 0``)
    share one short warm-up (:data:`LEARNED_WARMUP`) per factor; warm-ups are skipped for
    work a :class:`~mrirecon_vdm.bench.journal.BenchJournal` already holds. Every factor,
    method, the seed and, for the VDM methods, the prior and its size rule are checked before
    any work (:func:`check_run`). ``show_progress``: one update per method and slice.
    """
    from ..baselines import operator_kind
    from ..config import bart_available
    from .registry import METHODS, reconstruct
    from .tasks import Task, simulate_task

    if task is None:
        task = Task("sr", sigma=sigma)

    methods = check_run(images, scales, methods, task, seed)
    if data_range is None:
        data_range = float(images.max())
    runnable = []
    for m in methods:
        if METHODS[m].requires_bart and not bart_available():
            log(f"note: skipping {m}: BART is not installed (apt-get install bart; "
                "pip install mrbart)")
        elif task.undersampled and METHODS[m].needs_crop:
            log(f"note: skipping {m}: it interpolates a low-resolution image and does not "
                f"apply to the {task.task} task")
        elif METHODS[m].constraint not in (None, task.constraint):
            model = {"real": "a real image", "phase": "a real image times an estimated phase"}
            log(f"note: skipping {m}: it reconstructs {model[METHODS[m].constraint]}; the VDM "
                f"methods reconstruct {model[task.constraint]} on this task ({task.coils} "
                f"coil(s), phase {task.phase}), as the -{task.constraint} methods do")
        else:
            runnable.append(m)
    rows = []
    for scale in scales:
        ops, ys, info = simulate_task(images, task, scale, seed)
        kind = operator_kind(ops[0])
        extra = {"task": task.task, "accel": float(info.get("acceleration", scale)),
                 "coils": task.coils, "phase": task.phase, "sigma": info["sigma"]}
        if task.undersampled:
            log(f"{task.task} R={scale}: mean acceleration {info['acceleration']:.2f}, "
                f"{task.coils} coil(s), phase {task.phase}, k-space noise sigma "
                f"{info['sigma']:.4g}")
        learned_opts = {"phase": "auto"} if task.phase != "none" else {}
        warmed = False
        for m in runnable:
            learned = METHODS[m].nfe > 0
            pending = (journal is None
                       or len(journal.done(m, scale, method_settings(
                           m, scale, kind, learned_opts if learned else None)))
                       < len(ys))
            if learned and pending and not warmed and LEARNED_WARMUP in METHODS:
                reconstruct(LEARNED_WARMUP, ys[0], ops[0], scale, **learned_opts)
                warmed = True
            row = bench_method(m, images, ops, ys, scale, data_range, warmup=not learned,
                               journal=journal, kind=kind, extra=extra,
                               show_progress=show_progress,
                               **(learned_opts if learned else {}))
            log(f"{m:>19s} {scale}x: PSNR {row['psnr']:.2f} SSIM {row['ssim']:.3f} "
                f"{row['seconds_per_slice']:.3f} s/slice")
            rows.append(row)
    return rows
