"""Readers for a user's own magnitude images: NIfTI, fastMRI-style HDF5, ``.npy`` / ``.npz``.

Every reader returns a float32 array of 2D slices, shape (n, H, W), and raises a clear
error for a missing or corrupted file, a missing key, an empty volume or non-finite values.
"""
import pathlib

import numpy as np

__all__ = ["load_images", "load_nifti", "load_fastmri", "load_array", "SUFFIXES"]

SUFFIXES = (".nii", ".nii.gz", ".h5", ".hdf5", ".npy", ".npz")
FASTMRI_KEYS = ("reconstruction_rss", "reconstruction_esc", "kspace")


def _suffix(path):
    name = path.name.lower()
    for s in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(s):
            return s
    return path.suffix.lower()


def _as_slices(name, arr):
    arr = np.asarray(arr)
    if np.iscomplexobj(arr):
        raise ValueError(f"{name}: expected real magnitude images, got complex dtype {arr.dtype} "
                         f"(pass k-space to the reconstruction, or take abs() first)")
    if arr.size == 0:
        raise ValueError(f"{name}: the volume is empty (shape {arr.shape})")
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"{name}: expected a 2D image (H, W) or a stack of slices (n, H, W), "
                         f"got shape {arr.shape}")
    arr = arr.astype(np.float32, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite values, got {int(np.sum(~np.isfinite(arr)))} NaN/Inf")
    return arr


def _exists(path):
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    return path


def load_nifti(path, axis=2):
    """Slices of a NIfTI volume along ``axis`` (after reorienting to RAS; 2 = axial).

    Returns:
        array: (n, H, W) float32, each slice shown with the second in-plane axis flipped
        (anterior at the top for axial slices), the data set's convention.
    """
    import nibabel as nib
    path = _exists(path)
    try:
        img = nib.as_closest_canonical(nib.load(str(path)))
        vol = np.asarray(img.dataobj, dtype=np.float32)
    except Exception as e:  # nibabel raises many types for a corrupted file
        raise ValueError(f"{path}: could not read NIfTI ({type(e).__name__}: {e})") from e
    if vol.ndim == 2:
        return _as_slices(str(path), vol.T[::-1])
    if vol.ndim == 4 and vol.shape[-1] == 1:
        vol = vol[..., 0]
    if vol.ndim != 3:
        raise ValueError(f"{path}: expected a 2D or 3D NIfTI image, got shape {vol.shape}")
    if axis not in (0, 1, 2):
        raise ValueError(f"load_nifti: axis must be 0, 1 or 2, got {axis!r}")
    stack = np.moveaxis(vol, axis, 0)            # (n, a, b)
    stack = np.transpose(stack, (0, 2, 1))[:, ::-1, :]
    return _as_slices(str(path), np.ascontiguousarray(stack))


def load_fastmri(path, key=None):
    """Magnitude slices of a fastMRI-style HDF5 file.

    Looks for ``reconstruction_rss``, then ``reconstruction_esc``; with only ``kspace``
    (slices, [coils,] H, W) it returns the root-sum-of-squares of the centred inverse FFT.
    ``key`` picks a dataset explicitly (any (n, H, W) or (H, W) real array).
    """
    import h5py
    path = _exists(path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path}: could not read HDF5 ({e})") from e
    with f:
        keys = [key] if key is not None else [k for k in FASTMRI_KEYS if k in f]
        if key is not None and key not in f:
            raise KeyError(f"{path}: no dataset {key!r}; available: {sorted(f.keys())}")
        if not keys:
            raise KeyError(f"{path}: none of {FASTMRI_KEYS} found; available: {sorted(f.keys())} "
                           f"(pass key=... / --key)")
        data = f[keys[0]][()]
        name = f"{path}[{keys[0]}]"
    if keys[0] == "kspace":
        import sigpy as sp
        if not np.iscomplexobj(data):
            raise ValueError(f"{name}: expected complex k-space, got real dtype {data.dtype}")
        img = np.abs(sp.ifft(data, axes=(-2, -1), center=True))
        if img.ndim == 4:
            img = np.sqrt(np.sum(img ** 2, axis=1))
        data = img
    return _as_slices(name, data)


def load_array(path, key=None):
    """Slices from a ``.npy`` file or a ``.npz`` archive (``key`` or its only / first array)."""
    path = _exists(path)
    try:
        obj = np.load(path, allow_pickle=False)
    except Exception as e:
        raise ValueError(f"{path}: could not read numpy file ({type(e).__name__}: {e})") from e
    if isinstance(obj, np.lib.npyio.NpzFile):
        with obj:
            if key is None:
                if not obj.files:
                    raise ValueError(f"{path}: the archive holds no array")
                key = "images" if "images" in obj.files else obj.files[0]
            if key not in obj.files:
                raise KeyError(f"{path}: no array {key!r}; available: {obj.files}")
            return _as_slices(f"{path}[{key}]", obj[key])
    return _as_slices(str(path), obj)


def load_images(path, key=None):
    """Magnitude slices (n, H, W) float32 from any supported file.

    Args:
        path (path): ``.nii``/``.nii.gz`` (axial slices), ``.h5``/``.hdf5`` (fastMRI-style, or
            our data set with ``key="test/images"``), ``.npy`` or ``.npz``.
        key (str or None): dataset / array name inside HDF5 or npz files.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unsupported suffix, unreadable file, wrong rank, empty or non-finite data.
        KeyError: the key is not in the file.
    """
    path = pathlib.Path(path)
    suffix = _suffix(path)
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: unsupported file type {suffix!r}; supported: {', '.join(SUFFIXES)}")
    if suffix in (".nii", ".nii.gz"):
        return load_nifti(path)
    if suffix in (".h5", ".hdf5"):
        return load_fastmri(path, key)
    return load_array(path, key)
