"""Training data for the prior: arrays of 2-D magnitude slices, checked and normalised.

Sources accepted by :func:`load_images`:

* HDF5 (``.h5``/``.hdf5``) with datasets ``train/images`` and ``val/images``,
  each (n, H, W) float32;
* ``.npz`` with arrays ``train`` and ``val`` (or ``train/images``, ``val/images``), or a
  single array;
* ``.npy`` holding one (n, H, W) array.

When the file has no validation split, the last ``val_fraction`` of the slices (at least
one) is held out.
"""
import os

import numpy as np

__all__ = ["load_images", "check_images", "normalise_slices", "BatchSampler"]


class _Unreadable(Exception):
    """An error of the file reader (not of our checks)."""


def _read(path):
    """(train, val or None) from a data file; a file the reader cannot read (truncated,
    not HDF5/npz/npy, a folder) raises ``ValueError`` naming it."""
    ext = os.path.splitext(path)[1].lower()
    if not os.path.exists(path):
        raise FileNotFoundError(f"training data: no such file {path!r}")
    if ext not in (".h5", ".hdf5", ".npz", ".npy"):
        raise ValueError(f"training data {path!r}: expected a .h5/.hdf5, .npz or .npy file, "
                         f"got extension {ext!r}")
    if os.path.isdir(path):
        raise ValueError(f"training data {path!r}: is a folder, expected a {ext} file")
    try:
        return _read_file(path, ext)
    except _Unreadable as e:
        err = e.__cause__
        raise ValueError(f"training data {path!r}: cannot be read as {ext} (truncated or "
                         f"damaged? {type(err).__name__}: {err})") from None


def _reading(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with the reader's own errors marked :class:`_Unreadable`."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:        # OSError (h5py), zipfile.BadZipFile, EOFError, ValueError
        raise _Unreadable() from e


def _read_file(path, ext):
    if ext in (".h5", ".hdf5"):
        import h5py
        with _reading(h5py.File, path, "r") as f:
            if "train/images" not in f:
                raise ValueError(f"training data {path!r}: expected a dataset 'train/images', "
                                 f"found {sorted(f.keys())}")
            train = _reading(lambda: np.asarray(f["train/images"][...]))
            val = _reading(lambda: np.asarray(f["val/images"][...])) if "val/images" in f \
                else None
        return train, val
    if ext == ".npz":
        with _reading(np.load, path, allow_pickle=False) as z:
            keys = list(z.keys())
            for tk, vk in (("train", "val"), ("train/images", "val/images")):
                if tk in keys:
                    return _reading(lambda: (z[tk], (z[vk] if vk in keys else None)))
            if len(keys) == 1:
                return _reading(lambda: z[keys[0]]), None
            raise ValueError(f"training data {path!r}: expected arrays 'train' (and 'val') "
                             f"or a single array, found {keys}")
    return _reading(np.load, path, allow_pickle=False), None


def check_images(name, x):
    """Raise ``ValueError`` unless ``x`` is a non-empty, finite, real (n, H, W) array."""
    x = np.asarray(x)
    if np.iscomplexobj(x):
        raise ValueError(f"{name}: expected real magnitude images, got complex dtype {x.dtype}")
    if x.ndim != 3:
        raise ValueError(f"{name}: expected an array of shape (n, H, W), got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one image, got an empty array {x.shape}")
    if not np.all(np.isfinite(x)):
        n = int(np.sum(~np.isfinite(x)))
        raise ValueError(f"{name}: expected finite values, got {n} NaN/Inf entries")
    return x


def normalise_slices(x, percentile=100.0):
    """Each slice divided by its ``percentile``-th percentile (100: its maximum); all-zero
    slices stay zero. (n, H, W) float32."""
    x = np.asarray(x, dtype=np.float32)
    m = np.percentile(x.reshape(x.shape[0], -1), percentile, axis=1)
    m = np.where(m > 0, m, 1.0).astype(np.float32)
    return x / m[:, None, None]


def load_images(path, val_path=None, val_fraction=0.05, percentile=100.0):
    """Load, check and normalise training and validation slices (:func:`normalise_slices`).

    Args:
        path (str): data file (see module docstring).
        val_path (str or None): optional separate file for validation (its train split or
            single array is used).
        val_fraction (float): held-out fraction when no validation split exists.
        percentile (float): intensity reference of :func:`normalise_slices`.

    Returns:
        tuple: (train, val), float32 arrays (n, H, W) and (m, H, W).
    """
    train, val = _read(str(path))
    if val_path is not None:
        val, _ = _read(str(val_path))
    train = check_images(f"training data {path!r} (train split)", train)
    if val is None:
        n_val = max(1, int(round(val_fraction * train.shape[0])))
        if train.shape[0] < 2:
            raise ValueError(f"training data {path!r}: expected at least 2 images to hold one "
                             f"out for validation, got {train.shape[0]}")
        train, val = train[:-n_val], train[-n_val:]
    val = check_images(f"validation data {val_path or path!r}", val)
    if val.shape[1:] != train.shape[1:]:
        raise ValueError(f"validation data: expected images of size {train.shape[1:]} like "
                         f"the training images, got {val.shape[1:]}")
    return normalise_slices(train, percentile), normalise_slices(val, percentile)


class BatchSampler:
    """Random batches of slice indices from a seeded ``torch.Generator``.

    Args:
        num_images (int): n.
        batch_size (int): B.
        generator (torch.Generator): the only source of randomness (its state is saved in
            checkpoints).
    """

    def __init__(self, num_images, batch_size, generator):
        self.num_images = int(num_images)
        self.batch_size = int(batch_size)
        self.generator = generator

    def next(self):
        import torch
        return torch.randint(self.num_images, (self.batch_size,), generator=self.generator)
