"""``reconstruct_volume``: super-resolve a stack of slices a few at a time, resumably.

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

from ._checks import differing_keys
from .app import GuidedVDMRecon, _is_int, _prior_percentile, estimate_scale
from .linop import CropFourier

__all__ = ["reconstruct_volume"]


def reconstruct_volume(y, hr_shape, prior, slices_per_run=8, scale="slice", seed=None,
                       show_pbar=True, progress_dir=None, resume=False, **kwargs):
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
        **kwargs: passed to :class:`GuidedVDMRecon` (``sampler``, ``num_steps``,
            ``num_samples``, ``lamda``, ``sigma``, ``device``, ...).

    Returns:
        tuple: ``(x, std)``, x (S, N1, N2) float32 and std (S, N1, N2) or None (one sample).
    """
    if y.ndim != 3:
        raise ValueError(f"reconstruct_volume: expected y of shape (S, m1, m2), got {y.shape}")
    if not _is_int(slices_per_run) or slices_per_run < 1:
        raise ValueError(f"reconstruct_volume: slices_per_run must be an integer >= 1, got "
                         f"{slices_per_run!r}")
    hr_shape = tuple(int(n) for n in hr_shape)
    if len(hr_shape) != 2:
        raise ValueError(f"reconstruct_volume: hr_shape must be (N1, N2), got {hr_shape}")
    n_slices = y.shape[0]
    if isinstance(scale, str):
        if scale not in ("volume", "slice"):
            raise ValueError(f"reconstruct_volume: scale must be 'volume', 'slice' or a number, "
                             f"got {scale!r}")
        if scale == "volume":
            scale = estimate_scale(y, CropFourier(y.shape[:-2] + hr_shape, y.shape),
                                   per_image=False, percentile=_prior_percentile(prior))
        else:
            scale = None
    xp = sp.get_device(y).xp
    if scale is not None and xp.ndim(scale) > 0:
        scale = xp.asarray(scale, dtype=np.float32)
        if scale.shape != (n_slices, 1, 1):
            raise ValueError(f"reconstruct_volume: a per-slice scale must have shape "
                             f"({n_slices}, 1, 1), got {scale.shape}")
    starts = list(range(0, n_slices, slices_per_run))
    seeds = [None] * len(starts)
    if seed is not None:
        children = np.random.SeedSequence(seed).spawn(len(starts))
        seeds = [int(c.generate_state(1)[0]) for c in children]
    progress = None
    if progress_dir is not None:
        progress = _VolumeProgress(progress_dir, _volume_fingerprint(
            y, hr_shape, prior, slices_per_run, scale, seed, kwargs), resume)
    xs, stds = [], []
    for k, (start, s) in enumerate(zip(starts, seeds)):
        kept = progress.load(k, sp.get_device(y)) if progress is not None else None
        if kept is not None:
            xs.append(kept[0])
            stds.append(kept[1])
            continue
        yb = y[start:start + slices_per_run]
        A = CropFourier((yb.shape[0],) + hr_shape, yb.shape)
        sb = scale if scale is None or xp.ndim(scale) == 0 else scale[start:start + slices_per_run]
        app = GuidedVDMRecon(yb, A, prior, scale=sb, seed=s, show_pbar=show_pbar, **kwargs)
        xs.append(app.run())
        stds.append(app.std)
        if progress is not None:
            progress.save(k, xs[-1], stds[-1])
    xo = sp.get_device(xs[0]).xp
    x = xo.concatenate(xs)
    std = None if stds[0] is None else xo.concatenate(stds)
    return x, std


def _volume_fingerprint(y, hr_shape, prior, slices_per_run, scale, seed, kwargs):
    """JSON-able description of a :func:`reconstruct_volume` job (what a resume must match)."""
    import hashlib

    from .prior.pretrained import weights_sha256

    def digest(a):
        return hashlib.sha256(np.ascontiguousarray(sp.to_device(a)).tobytes()).hexdigest()

    fp = {"y_sha256": digest(y), "y_shape": list(y.shape), "y_dtype": str(y.dtype),
          "hr_shape": list(hr_shape), "slices_per_run": int(slices_per_run), "seed": seed,
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

    def load(self, k, device):
        """(x, std or None) of run ``k`` on ``device``, or None when it is not done."""
        path = self._path(k)
        if not path.exists():
            return None
        with np.load(path) as f:
            x = sp.to_device(f["x"], device)
            std = sp.to_device(f["std"], device) if "std" in f.files else None
        return x, std

    def save(self, k, x, std):
        from ._atomic import atomic_path

        arrays = {"x": sp.to_device(x)}
        if std is not None:
            arrays["std"] = sp.to_device(std)
        with atomic_path(self._path(k), suffix=".npz") as tmp:
            np.savez(tmp, **arrays)
