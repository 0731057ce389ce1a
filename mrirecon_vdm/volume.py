"""``reconstruct_volume`` / ``reconstruct_slices``: a stack of slices a few at a time, resumably.

:func:`reconstruct_volume` super-resolves low-resolution k-space (a centre crop);
:func:`reconstruct_slices` does the same for any per-slice operator (undersampled, multi-coil
k-space on the full grid with :class:`mrirecon_vdm.linop.FourierSampling`) with
:class:`~mrirecon_vdm.app.GuidedVDMRecon` or :class:`~mrirecon_vdm.pnp.PnPVDMRecon`.

Each run is one :class:`mrirecon_vdm.app.GuidedVDMRecon` on ``slices_per_run`` slices (in
the same network calls), with its own child seed of the master seed. With a progress folder
every finished run is kept on disk (``run_<k>.npz``, atomic) beside ``progress.json``, a
fingerprint of the job (the data, the shapes, the scale, the seed, the options and the
prior's weights): a killed job goes on with ``resume=True`` and a folder written for another
job is refused, naming what differs. ``mrirecon-vdm recon`` keeps it in ``<out>.partial/``
(:func:`mrirecon_vdm._cli.recon.progress_dir_for`).

Also importable by its old name ``mrirecon_vdm.app.reconstruct_volume``.
"""
import numpy as np
import sigpy as sp

from ._checks import as_shape, check_array, check_seed, differing_keys, is_int
from .app import GuidedVDMRecon
from .intensity import estimate_scale, prior_percentile
from .linop import CropFourier

__all__ = ["reconstruct_volume", "reconstruct_slices", "METHODS", "PNP_OPTIONS",
           "DEFAULT_SLICE_CORRELATION"]

#: ρ, the correlation of the sampler noise of neighbouring slices in a volume
#: (:mod:`mrirecon_vdm.slice_noise`), chosen on the validation person (``docs/results.md``,
#: "Volumes: slice consistency, batching, calibrated uncertainty").
DEFAULT_SLICE_CORRELATION = 0.98

#: The reconstruction methods of :func:`reconstruct_slices`.
METHODS = ("guided", "pnp")
#: The options :func:`reconstruct_slices` passes to :class:`mrirecon_vdm.pnp.PnPVDMRecon`
#: (``device``: where y goes; the prior must be there already).
PNP_OPTIONS = ("num_steps", "lamda_start", "lamda_end", "phase", "sigma", "bf16", "device")


def reconstruct_volume(y, hr_shape, prior, slices_per_run=8, scale="slice", seed=None,
                       show_pbar=True, progress_dir=None, resume=False,
                       slice_correlation=DEFAULT_SLICE_CORRELATION, method="guided",
                       complex_output=False, **kwargs):
    """Super-resolve a stack of low-resolution k-space slices, a few slices per run.

    Args:
        y (array): (S, m1, m2) low-resolution k-space (centre block of the HR k-space, see
            :func:`mrirecon_vdm.linop.lowres_image_to_kspace`).
        hr_shape (tuple of 2 ints): (N1, N2).
        prior: the prior (protocol of ``docs/architecture.md``).
        slices_per_run (int): slices reconstructed together (in the same network calls).
        scale (str, float or array): ``"slice"`` (default): one per slice
            (:func:`estimate_scale` with the prior's intensity percentile, as the prior was
            trained on per-slice normalised images); ``"volume"``: one intensity scale for
            the whole volume (the same percentile of |Aᴴy| over all slices); or the value(s)
            to use (a number, or one per slice, shape (S, 1, 1)).
        seed (int or None): master seed; each run gets its own child seed.
        show_pbar (bool): one progress bar per run.
        progress_dir (path or None): keep each finished run there (``run_<k>.npz``, written
            atomically, with ``progress.json`` fingerprinting the inputs: y, the shapes, the
            scale, the seed, the options and the prior's weights), so that a killed job can
            go on; the caller removes the folder when it no longer needs it.
        resume (bool): with ``progress_dir``, reuse the runs already there (a folder written
            for other inputs raises ``ValueError``); False starts afresh. With ``seed=None``
            the resumed runs draw fresh noise, so the result differs from an uninterrupted
            run as two unseeded runs do.
        slice_correlation (float): ρ ∈ [0, 1], the correlation of the sampler noise of
            neighbouring slices (:mod:`mrirecon_vdm.slice_noise`), so that one sample is
            consistent from slice to slice (default :data:`DEFAULT_SLICE_CORRELATION`; 0:
            independent slices, the behaviour before). The chain continues across runs (the
            first slice of a run is correlated with the last one of the run before), exactly
            and deterministically given ``seed``, so resuming gives the same volume. The
            slices must be consecutive and in order.
        method (str): ``"guided"`` (:class:`GuidedVDMRecon`) or ``"pnp"``
            (:class:`mrirecon_vdm.pnp.PnPVDMRecon`, deterministic: ``seed`` and
            ``slice_correlation`` are unused).
        complex_output (bool): return the Apps' ``.complex_image`` (x·e^{iφ}, complex64)
            instead of the real image x.
        **kwargs: passed to :class:`GuidedVDMRecon` (``sampler``, ``num_steps``,
            ``num_samples``, ``lamda``, ``sigma``, ``device``, ...), or for ``"pnp"`` one of
            :data:`PNP_OPTIONS`.

    Returns:
        tuple: ``(x, std)``, x (S, N1, N2) float32 and std (S, N1, N2) or None (one sample;
        always None for ``"pnp"``).
    """
    _check_method("reconstruct_volume", method, kwargs)
    check_array("reconstruct_volume y", y)
    if y.ndim != 3:
        raise ValueError(f"reconstruct_volume: expected y of shape (S, m1, m2), got {y.shape}")
    _check_slices_per_run("reconstruct_volume", slices_per_run)
    check_seed("reconstruct_volume seed", seed)
    _check_rho("reconstruct_volume", slice_correlation)
    hr_shape = as_shape("reconstruct_volume hr_shape", hr_shape)
    if len(hr_shape) != 2:
        raise ValueError(f"reconstruct_volume: hr_shape must be (N1, N2), got {hr_shape}")
    lr_shape = tuple(y.shape[1:])

    def operator(start, stop):
        return CropFourier((stop - start,) + hr_shape, (stop - start,) + lr_shape)

    scale = _resolve_scale("reconstruct_volume", scale, y, operator, prior)
    fingerprint = None
    if progress_dir is not None:
        fingerprint = _volume_fingerprint(y, hr_shape, prior, slices_per_run, scale, seed,
                                          kwargs, slice_correlation, method)
        if complex_output:
            fingerprint["complex_output"] = True
    return _run_slices(y, operator, prior, method, slices_per_run, scale, seed, show_pbar,
                       progress_dir, resume, fingerprint, kwargs, image_shape=hr_shape,
                       slice_correlation=slice_correlation, complex_output=complex_output)


def reconstruct_slices(y, operator, prior, method="guided", slices_per_run=8, scale="slice",
                       seed=None, show_pbar=True, progress_dir=None, resume=False,
                       operator_fingerprint=None,
                       slice_correlation=DEFAULT_SLICE_CORRELATION, complex_output=False,
                       **kwargs):
    """Reconstruct a stack of slices through any per-slice operator, a few slices per run.

    The sibling of :func:`reconstruct_volume` for other measurements (undersampled k-space
    on the full grid, with or without coil maps: :class:`mrirecon_vdm.linop.FourierSampling`),
    with the same runs, child seeds, intensity scales and resumable progress folder.

    Args:
        y (array): ``(S, ...)`` measurements, slices first (e.g. ``(S, H, W)`` single-coil or
            ``(S, C, H, W)`` multi-coil k-space).
        operator (callable): ``operator(start, stop)`` returns the forward operator of the
            slices ``start:stop``: a SigPy Linop with ``ishape (stop - start, H, W)`` and
            ``oshape == y[start:stop].shape``. Called once per run (and once for all
            slices with ``scale="volume"``), so it may build coil maps lazily.
        prior: the prior (protocol of ``docs/architecture.md``).
        method (str): ``"guided"`` (:class:`mrirecon_vdm.app.GuidedVDMRecon`) or ``"pnp"``
            (:class:`mrirecon_vdm.pnp.PnPVDMRecon`; the slices of a run in one call, each with
            its own intensity scale and noise schedule by default).
        slices_per_run, scale, seed, show_pbar, progress_dir, resume, slice_correlation,
            complex_output: as :func:`reconstruct_volume` (``seed`` and
            ``slice_correlation`` are unused by ``"pnp"``, which draws no noise).
        operator_fingerprint (dict or None): a JSON-able description of the operator (e.g.
            digests of its mask and maps) for the progress record; needed with
            ``progress_dir``, since a callable cannot be compared between two jobs.
        **kwargs: for the App: GuidedVDMRecon's options (``sampler``, ``num_steps``,
            ``num_samples``, ``lamda``, ``sigma``, ``phase``, ``device``, ...), or for
            ``"pnp"`` one of :data:`PNP_OPTIONS`.

    Returns:
        tuple: ``(x, std)``, x (S, H, W) float32 and std (S, H, W) or None (one sample,
        always None for ``"pnp"``).

    Raises:
        ValueError: a bad method, slices_per_run, scale or option, an operator whose shapes
            do not match y, or any check of the App.
    """
    name = "reconstruct_slices"
    _check_method(name, method, kwargs)
    check_array(f"{name} y", y)
    if y.ndim < 3:
        raise ValueError(f"{name}: expected y with a leading slice axis, (S, H, W) or "
                         f"(S, C, H, W), got shape {getattr(y, 'shape', None)}")
    check_seed(f"{name} seed", seed)
    _check_rho(name, slice_correlation)
    if not callable(operator):
        raise ValueError(f"{name}: operator must be a callable (start, stop) -> Linop, got "
                         f"{type(operator).__name__}")
    _check_slices_per_run(name, slices_per_run)
    if progress_dir is not None and operator_fingerprint is None:
        raise ValueError(f"{name}: a progress folder needs operator_fingerprint (a JSON-able "
                         f"description of the operator, e.g. digests of its mask and maps)")
    checked = _checked_operator(name, operator, y)
    scale = _resolve_scale(name, scale, y, checked, prior)
    fingerprint = None
    if progress_dir is not None:
        extra = {} if method == "pnp" else {"slice_correlation": float(slice_correlation)}
        if complex_output:
            extra["complex_output"] = True
        fingerprint = _fingerprint(y, prior, slices_per_run, scale, seed, kwargs,
                                   method=method, operator=operator_fingerprint, **extra)
    return _run_slices(y, checked, prior, method, slices_per_run, scale, seed, show_pbar,
                       progress_dir, resume, fingerprint, kwargs,
                       slice_correlation=slice_correlation, complex_output=complex_output)


def _check_method(name, method, kwargs):
    if method not in METHODS:
        raise ValueError(f"{name}: method must be one of {METHODS}, got {method!r}")
    if method == "pnp":
        unknown = sorted(set(kwargs) - set(PNP_OPTIONS))
        if unknown:
            raise ValueError(f"{name}: method 'pnp' does not take {', '.join(unknown)}; its "
                             f"options are {', '.join(PNP_OPTIONS)}")


def _check_rho(name, rho):
    ok = isinstance(rho, (int, float, np.integer, np.floating)) and not isinstance(rho, bool)
    if not ok or not 0.0 <= float(rho) <= 1.0:
        raise ValueError(f"{name}: slice_correlation must be a number in [0, 1], got {rho!r}")


def _check_slices_per_run(name, slices_per_run):
    if not is_int(slices_per_run) or slices_per_run < 1:
        raise ValueError(f"{name}: slices_per_run must be an integer >= 1, got "
                         f"{slices_per_run!r}")


def _checked_operator(name, operator, y):
    """``operator`` with its shapes checked against ``y`` at every call."""
    def checked(start, stop):
        A = operator(start, stop)
        if not isinstance(A, sp.linop.Linop):
            raise ValueError(f"{name}: operator({start}, {stop}) returned "
                             f"{type(A).__name__}, not a SigPy Linop")
        want = tuple(y[start:stop].shape)
        if tuple(A.oshape) != want or len(A.ishape) < 3 or A.ishape[0] != stop - start:
            raise ValueError(f"{name}: operator({start}, {stop}) maps {tuple(A.ishape)} to "
                             f"{tuple(A.oshape)}; expected ({stop - start}, H, W) to {want}")
        return A
    return checked


def _resolve_scale(name, scale, y, operator, prior):
    """None (per slice, by the App), a float or a (S, 1, 1) array on y's device."""
    n_slices = y.shape[0]
    if isinstance(scale, str):
        if scale not in ("volume", "slice"):
            raise ValueError(f"{name}: scale must be 'volume', 'slice' or a number, "
                             f"got {scale!r}")
        if scale == "volume":
            scale = estimate_scale(y, operator(0, n_slices), per_image=False,
                                   percentile=prior_percentile(prior))
        else:
            scale = None
    xp = sp.get_device(y).xp
    if scale is not None and xp.ndim(scale) > 0:
        scale = xp.asarray(scale, dtype=np.float32)
        if scale.shape != (n_slices, 1, 1):
            raise ValueError(f"{name}: a per-slice scale must have shape "
                             f"({n_slices}, 1, 1), got {scale.shape}")
    return scale


def _run_slices(y, operator, prior, method, slices_per_run, scale, seed, show_pbar,
                progress_dir, resume, fingerprint, kwargs, image_shape=(None, None),
                slice_correlation=0.0, complex_output=False):
    """The runs of :func:`reconstruct_volume` / :func:`reconstruct_slices` (``image_shape``:
    (H, W) of the output when known, to check the kept runs against)."""
    n_slices = y.shape[0]
    xp = sp.get_device(y).xp
    starts = list(range(0, n_slices, slices_per_run))
    sizes = [min(slices_per_run, n_slices - a) for a in starts]
    # child seeds of the master seed (fresh entropy without one: the slice-noise chain
    # needs every run's seed to continue across runs)
    children = np.random.SeedSequence(seed).spawn(len(starts))
    seeds = [int(c.generate_state(1)[0]) for c in children]
    progress = None
    if progress_dir is not None:
        progress = _VolumeProgress(progress_dir, fingerprint, resume)
    # where the Apps put their output (a kept run goes there too, so that they concatenate)
    out_device = sp.Device(kwargs.get("device", sp.cpu_device))
    xs, stds = [], []
    for k, (start, s) in enumerate(zip(starts, seeds)):
        kept = None
        if progress is not None:
            stop = min(start + slices_per_run, n_slices)
            kept = progress.load(k, out_device, shape=(stop - start,) + tuple(image_shape))
        if kept is not None:
            xs.append(kept[0])
            stds.append(kept[1])
            continue
        stop = min(start + slices_per_run, n_slices)
        if show_pbar and len(starts) > 1:
            import sys
            print(f"slices {start}-{stop - 1} of {n_slices} (run {k + 1} of {len(starts)})",
                  file=sys.stderr, flush=True)
        sb = scale if scale is None or xp.ndim(scale) == 0 else scale[start:stop]
        if method == "guided":
            yb = y[start:stop]
            A = operator(start, stop)
            before = None
            if slice_correlation > 0 and k > 0:
                from .slice_noise import PrecedingRuns
                before = PrecedingRuns(seeds[:k], sizes[:k], slice_correlation,
                                       _torch_device(out_device))
            app = GuidedVDMRecon(yb, A, prior, scale=sb, seed=s, show_pbar=show_pbar,
                                 slice_correlation=slice_correlation, preceding_noise=before,
                                 **kwargs)
            x = app.run()
            xs.append(app.complex_image if complex_output else x)
            stds.append(app.std)
        else:
            app = _pnp_run(y, operator, start, stop, prior, sb, show_pbar, kwargs)
            xs.append(app.complex_image if complex_output else app.x)
            stds.append(None)
        if progress is not None:
            progress.save(k, xs[-1], stds[-1])
    xo = sp.get_device(xs[0]).xp
    x = xo.concatenate(xs)
    std = None if stds[0] is None else xo.concatenate(stds)
    return x, std


def _torch_device(device):
    import torch
    return torch.device("cpu") if device.id < 0 else torch.device("cuda", device.id)


def _pnp_run(y, operator, start, stop, prior, scale, show_pbar, kwargs):
    """Slices ``start:stop`` with :class:`PnPVDMRecon`, in one call (a scale per slice, or
    one for all); returns the App after its run."""
    from .pnp import PnPVDMRecon

    kw = dict(kwargs)
    device = sp.Device(kw.pop("device", sp.cpu_device))
    yb = sp.to_device(y[start:stop], device)
    if scale is not None:
        scale = float(scale) if np.ndim(scale) == 0 else np.asarray(sp.to_device(scale))
    app = PnPVDMRecon(yb, operator(start, stop), prior, scale=scale, show_pbar=show_pbar, **kw)
    app.run()
    return app


def _volume_fingerprint(y, hr_shape, prior, slices_per_run, scale, seed, kwargs,
                        slice_correlation, method="guided"):
    """JSON-able description of a :func:`reconstruct_volume` job (what a resume must match):
    with the renoising the options resolve to, so that a folder made with DDIM renoising is
    not resumed with fresh renoising, or the other way round."""
    if method == "pnp":
        return _fingerprint(y, prior, slices_per_run, scale, seed, kwargs,
                            hr_shape=list(hr_shape), method=method)
    from .alg import resolve_renoise
    renoise, _ = resolve_renoise("reconstruct_volume", kwargs.get("sampler", "fast"),
                                 kwargs.get("renoise"), kwargs.get("eta"))
    return _fingerprint(y, prior, slices_per_run, scale, seed, kwargs,
                        hr_shape=list(hr_shape), slice_correlation=float(slice_correlation),
                        renoise=renoise)


def _fingerprint(y, prior, slices_per_run, scale, seed, kwargs, **extra):
    """JSON-able description of a job: y, the runs, the scale, the seed, the options, the
    prior's weights and ``extra`` (what a resume must match)."""
    import hashlib

    from .prior.pretrained import weights_sha256

    def digest(a):
        return hashlib.sha256(np.ascontiguousarray(sp.to_device(a)).tobytes()).hexdigest()

    fp = {"y_sha256": digest(y), "y_shape": list(y.shape), "y_dtype": str(y.dtype),
          **extra, "slices_per_run": int(slices_per_run), "seed": seed,
          "scale": None if scale is None else (float(scale) if np.ndim(scale) == 0
                                               else digest(scale)),
          "options": {k: repr(v) for k, v in sorted(kwargs.items())}}
    digest_w = weights_sha256(prior)
    if digest_w is not None:
        fp["prior_sha256"] = digest_w
    else:
        fp["prior"] = repr(prior)
    return fp


class _VolumeProgress:
    """Finished runs of :func:`reconstruct_volume` in a folder (see its ``progress_dir``)."""

    def __init__(self, folder, fingerprint, resume):
        import json
        import pathlib
        import shutil

        from ._atomic import atomic_write_text

        self.folder = pathlib.Path(folder)
        meta = self.folder / "progress.json"
        if resume and meta.exists():
            try:
                theirs = json.loads(meta.read_text())
            except ValueError:
                raise ValueError(f"{meta}: not a progress record; rerun without resuming") from None
            if theirs != fingerprint:
                diff = differing_keys(theirs, fingerprint)
                raise ValueError(f"{self.folder} holds the runs of another job (it differs in "
                                 f"{', '.join(diff)}); rerun without resuming to start over")
        else:
            if self.folder.exists():
                shutil.rmtree(self.folder)
            self.folder.mkdir(parents=True)
            atomic_write_text(meta, json.dumps(fingerprint, indent=1) + "\n")

    def _path(self, k):
        return self.folder / f"run_{k:05d}.npz"

    def load(self, k, device, shape=None):
        """(x, std or None) of run ``k`` on ``device``, or None when it is not done.

        A damaged run file (truncated, not an ``.npz``, without ``x``, of the wrong
        ``shape`` or with NaN/Inf) is removed with a warning naming it, and the run is done
        again (None)."""
        import warnings
        path = self._path(k)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as f:
                x = np.asarray(f["x"])
                std = np.asarray(f["std"]) if "std" in f.files else None
            for a in (x, std):
                if a is None:
                    continue
                if shape is not None and (a.ndim != len(shape) or any(
                        n is not None and n != m for n, m in zip(shape, a.shape))):
                    want = tuple("?" if n is None else n for n in shape)
                    raise ValueError(f"shape {tuple(a.shape)}, expected {want}")
                if a.dtype.kind not in "fc" or not np.all(np.isfinite(a)):
                    raise ValueError("not finite float values")
        except Exception as e:      # BadZipFile, EOFError, KeyError, OSError, ValueError
            warnings.warn(f"{path}: damaged run file ({type(e).__name__}: {e}); this run is "
                          f"reconstructed again", RuntimeWarning, stacklevel=2)
            path.unlink(missing_ok=True)
            return None
        return sp.to_device(x, device), None if std is None else sp.to_device(std, device)

    def save(self, k, x, std):
        from ._atomic import atomic_path

        arrays = {"x": sp.to_device(x)}
        if std is not None:
            arrays["std"] = sp.to_device(std)
        with atomic_path(self._path(k), suffix=".npz") as tmp:
            np.savez(tmp, **arrays)
