"""Readers for a user's own data: magnitude images and full-grid k-space.

Magnitude images (NIfTI, fastMRI-style HDF5, ``.npy`` / ``.npz``, :func:`load_images`): every
reader returns a float32 array of 2D slices, shape (n, H, W), and raises a clear error for a
missing or corrupted file, a missing key, an empty volume or non-finite values.

k-space (:func:`load_kspace`): complex ``.npy``, ``.npz``, fastMRI-style HDF5 (``kspace``
dataset, ``(slices, H, W)`` or ``(slices, coils, H, W)``) and BART ``.cfl``/``.hdr``
(:func:`read_cfl`, :func:`write_cfl`).

**BART files.** ``NAME.hdr`` is text: a ``# Dimensions`` line followed by the sizes of the
(up to 16) dimensions; ``NAME.cfl`` holds the complex64 little-endian samples in Fortran
(column-major) order. BART's dimensions are (x, y, z, coils, maps, ...): :func:`load_kspace`
maps x to our H, y to W, z to slices and dimension 3 to coils, giving ``(z, H, W)`` for one
coil and ``(z, coils, H, W)`` for several (other dimensions must have size 1).
"""
import pathlib

import numpy as np

__all__ = ["load_images", "load_nifti", "load_fastmri", "load_array", "load_kspace",
           "read_cfl", "write_cfl", "SUFFIXES", "KSPACE_SUFFIXES"]

SUFFIXES = (".nii", ".nii.gz", ".h5", ".hdf5", ".npy", ".npz")
FASTMRI_KEYS = ("reconstruction_rss", "reconstruction_esc", "kspace")
#: What :func:`load_kspace` reads (``.hdr`` names the same BART pair as ``.cfl``).
KSPACE_SUFFIXES = (".npy", ".npz", ".h5", ".hdf5", ".cfl", ".hdr")


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


# --------------------------------------------------------------------------- k-space
def _cfl_base(path):
    """``NAME`` of ``NAME.cfl`` / ``NAME.hdr`` / ``NAME`` (BART's convention)."""
    path = pathlib.Path(path)
    if path.suffix.lower() in (".cfl", ".hdr"):
        return path.with_suffix("")
    return path


def _cfl_dims(hdr):
    """The sizes on the line after ``# Dimensions`` (BART's header; the second line)."""
    try:
        lines = pathlib.Path(hdr).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{hdr}: could not read the BART header ({e})") from None
    idx = next((i for i, line in enumerate(lines) if line.strip().lower() == "# dimensions"), 0)
    try:
        dims = [int(v) for v in lines[idx + 1].split()]
    except (IndexError, ValueError):
        raise ValueError(f"{hdr}: not a BART header (expected '# Dimensions' and a line of "
                         f"sizes)") from None
    if not dims or any(d < 1 for d in dims):
        raise ValueError(f"{hdr}: bad dimensions {dims} in the BART header")
    return dims


def read_cfl(path):
    """Read a BART ``.cfl``/``.hdr`` pair.

    Args:
        path (path): ``NAME.cfl``, ``NAME.hdr`` or ``NAME``.

    Returns:
        array: complex64 with BART's dimensions (x, y, z, coils, ...), trailing singleton
        dimensions dropped (as BART's own ``readcfl``).

    Raises:
        FileNotFoundError: the ``.cfl`` or its ``.hdr`` is missing.
        ValueError: an unreadable header, or a data file of the wrong size.
    """
    base = _cfl_base(path)
    cfl, hdr = base.with_name(base.name + ".cfl"), base.with_name(base.name + ".hdr")
    if not cfl.exists():
        raise FileNotFoundError(f"no such file: {cfl}")
    if not hdr.exists():
        raise FileNotFoundError(f"{cfl}: no BART header {hdr.name} beside it (a .cfl needs its "
                                f".hdr with the dimensions)")
    dims = _cfl_dims(hdr)
    while len(dims) > 1 and dims[-1] == 1:
        dims.pop()
    n = int(np.prod(dims))
    size = cfl.stat().st_size
    if size != 8 * n:
        raise ValueError(f"{cfl}: holds {size} bytes, but the dimensions {dims} of {hdr.name} "
                         f"need {8 * n} (complex64)")
    data = np.fromfile(cfl, dtype="<c8", count=n)
    return data.reshape(dims, order="F").astype(np.complex64, copy=False)


def write_cfl(path, array):
    """Write ``array`` (BART's dimension order: x, y, z, coils, ...) as ``NAME.cfl``/``.hdr``.

    Both files are written atomically (the header last). Returns the ``.cfl`` path.
    """
    from .._atomic import atomic_path, atomic_write_text

    a = np.asarray(array)
    if a.ndim == 0 or a.ndim > 16:
        raise ValueError(f"write_cfl: expected an array of 1 to 16 dimensions, got shape "
                         f"{a.shape}")
    base = _cfl_base(path)
    cfl, hdr = base.with_name(base.name + ".cfl"), base.with_name(base.name + ".hdr")
    data = np.asarray(a, dtype="<c8").ravel(order="F")
    with atomic_path(cfl) as tmp:
        data.tofile(tmp)
    atomic_write_text(hdr, "# Dimensions\n" + " ".join(str(d) for d in a.shape) + " \n")
    return cfl


def read_cfl_kspace(path):
    """A BART k-space as ``(z, H, W)`` (one coil) or ``(z, coils, H, W)``."""
    a = read_cfl(path)
    shape = list(a.shape) + [1] * (4 - a.ndim)
    if len(shape) > 4:
        extra = [i for i, d in enumerate(shape[4:], start=4) if d > 1]
        if extra:
            raise ValueError(f"{path}: BART dimensions {shape}: only x, y, z and coils (dims 0-3) "
                             f"may be larger than 1, got dims {extra}")
    a = a.reshape(shape[:4], order="F")
    a = np.ascontiguousarray(np.transpose(a, (2, 3, 0, 1)))        # (z, coils, x, y)
    return a[:, 0] if a.shape[1] == 1 else a


def load_kspace(path, key=None):
    """Complex k-space from a file, as stored (no reordering except for BART).

    Args:
        path (path): ``.npy``; ``.npz`` (the array ``key``, default ``kspace``, or the only
            one); ``.h5``/``.hdf5`` (the dataset ``key``, default ``kspace``, or the only one;
            fastMRI stores ``(slices, H, W)`` or ``(slices, coils, H, W)``); BART
            ``.cfl``/``.hdr`` (``(z, H, W)`` or ``(z, coils, H, W)``, see the module
            docstring).
        key (str or None): array / dataset name.

    Returns:
        array: complex64 k-space, at least 2D.

    Raises:
        FileNotFoundError: no such file (or no ``.hdr`` beside a ``.cfl``).
        KeyError: the key is not in the file.
        ValueError: unsupported suffix, unreadable file, real or empty data.
    """
    path = pathlib.Path(path)
    name = path.name.lower()
    suffix = next((s for s in KSPACE_SUFFIXES if name.endswith(s)), None)
    if suffix is None:
        raise ValueError(f"{path}: unsupported k-space file type "
                         f"{''.join(path.suffixes) or '(none)'!r}; supported: "
                         f"{', '.join(KSPACE_SUFFIXES)}")
    label = str(path)
    if suffix in (".cfl", ".hdr"):
        arr = read_cfl_kspace(path)
    else:
        path = _exists(path)
        if suffix in (".h5", ".hdf5"):
            import h5py
            try:
                f = h5py.File(path, "r")
            except OSError as e:
                raise ValueError(f"{path}: could not read HDF5 ({e})") from e
            with f:
                datasets = [k for k in f.keys() if isinstance(f[k], h5py.Dataset)]
                k = _pick_key(path, key, datasets, "dataset")
                arr = f[k][()]
            label = f"{path}[{k}]"
        else:
            try:
                obj = np.load(path, allow_pickle=False)
            except Exception as e:
                raise ValueError(f"{path}: could not read numpy file ({type(e).__name__}: "
                                 f"{e})") from e
            if isinstance(obj, np.lib.npyio.NpzFile):
                with obj:
                    k = _pick_key(path, key, obj.files, "array")
                    arr = obj[k]
                label = f"{path}[{k}]"
            else:
                arr = obj
    arr = np.asarray(arr)
    if arr.dtype.names is not None or arr.dtype == object:
        raise ValueError(f"{label}: expected a complex k-space array, got dtype {arr.dtype}")
    if not np.iscomplexobj(arr):
        raise ValueError(f"{label}: expected complex k-space, got real dtype {arr.dtype} (a "
                         f"magnitude image?)")
    if arr.ndim < 2:
        raise ValueError(f"{label}: expected k-space of at least 2 dimensions (H, W), got shape "
                         f"{arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{label}: the k-space is empty (shape {arr.shape}: no "
                         f"{'slice' if arr.shape[0] == 0 else 'entry'})")
    return arr.astype(np.complex64, copy=False)


def _pick_key(path, key, available, what):
    """``key`` if given, else ``kspace``, else the only one."""
    if key is not None:
        if key not in available:
            raise KeyError(f"{path}: no {what} {key!r}; available: {sorted(available)} "
                           f"(choose one with --key)")
        return key
    if "kspace" in available:
        return "kspace"
    if len(available) == 1:
        return available[0]
    raise KeyError(f"{path}: no {what} 'kspace' and {len(available)} others to choose from; "
                   f"available: {sorted(available)} (choose one with --key)")
