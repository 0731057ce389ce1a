"""Siemens raw data (twix ``.dat``) to the fastMRI k-space layout.

The one real raw k-space that ships in a registry package is twixtools' Siemens phantom
(:data:`TWIX_PHANTOM`: ``example_data/gre.dat`` of the PyPI source release of ``twixtools``
0.24, MIT; a 2D gradient echo, 2 coils, 160 x 160, 1.25 mm, 4 mm slice; not a brain). It is
read with ``twixtools`` (the optional extra ``pip install mrirecon_vdm[twix]``), its readout
oversampling removed, and written as a fastMRI-style HDF5 file that ``mrirecon-vdm recon
--undersampled`` reads: ``kspace`` ``(slices, coils, H, W)`` complex64 with H the readout and
W the phase encoding (fastMRI's order: a 1D mask selects columns), on the centred grid of
:mod:`mrirecon_vdm.linop` (k-space centre at ``(H // 2, W // 2)``), and the voxel size in mm in
the attribute ``voxel_size_mm`` (readout, phase, slice).

    mrirecon-vdm data twix gre.dat --out gre.h5
"""
import pathlib

import numpy as np

from ..data.sources import Source

__all__ = ["TWIX_PHANTOM", "read_twix_kspace", "write_fastmri", "twix_to_fastmri"]

#: The Siemens phantom of twixtools' source release (fetched like the brain volumes).
TWIX_PHANTOM = Source("twix_gre_phantom", "io", "sdist", "twixtools", "0.24",
                      "twixtools-0.24/example_data/gre.dat", "MIT",
                      "a phantom (no person)",
                      "Siemens twix raw k-space, 2D gradient echo, 2 coils, 160 x 160, "
                      "1.25 mm, 4 mm slice")
#: The twix dimensions a 2D Cartesian scan may have besides lines, coils and columns.
_ALLOWED = {"Sli", "Lin", "Cha", "Col"}


def read_twix_kspace(path):
    """``(kspace, voxel_mm)`` of the last measurement of a twix file.

    Args:
        path (path): a Siemens ``.dat`` file (VB or VD/VE).

    Returns:
        tuple: complex64 ``(slices, coils, H, W)`` (H the readout without oversampling, W the
        phase encoding) and ``(readout, phase, slice)`` voxel sizes in mm.

    Raises:
        ImportError: twixtools is missing.
        FileNotFoundError: no such file.
        ValueError: not a 2D Cartesian scan (averages, echoes, repetitions or 3D partitions
            are not converted), or no image data.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        import twixtools
    except ImportError:
        raise ImportError("reading Siemens twix files needs twixtools (pip install "
                          "mrirecon_vdm[twix], or pip install twixtools)") from None
    try:
        scans = twixtools.read_twix(str(path), verbose=False)
        mapped = twixtools.map_twix(scans[-1])
        image = mapped["image"]
    except Exception as e:
        raise ValueError(f"{path}: could not read a twix measurement with image data "
                         f"({type(e).__name__}: {e})") from None
    dims = list(image.non_singleton_dims)
    extra = [d for d in dims if d not in _ALLOWED]
    if extra:
        raise ValueError(f"{path}: a 2D Cartesian scan (slices, lines, coils, columns) is "
                         f"converted; this one also has {', '.join(extra)}")
    image.flags["remove_os"] = True
    k = np.asarray(image[:])
    names = list(image.dims)
    order = [names.index(d) for d in ("Sli", "Cha", "Col", "Lin")]
    others = [i for i in range(k.ndim) if i not in order]       # all of size 1
    shape = [k.shape[i] for i in order]
    k = np.transpose(k, others + order).reshape(shape)          # (slices, coils, readout, lines)
    k = np.ascontiguousarray(k).astype(np.complex64)
    voxel = (1.0, 1.0, 1.0)
    try:
        yaps = scans[-1]["hdr"]["MeasYaps"]
        sl = yaps["sSliceArray"]["asSlice"][0]
        voxel = (float(sl["dReadoutFOV"]) / k.shape[-2], float(sl["dPhaseFOV"]) / k.shape[-1],
                 float(sl["dThickness"]))
    except (KeyError, IndexError, TypeError, ValueError):
        pass
    return k, voxel


def write_fastmri(out, kspace, voxel_mm=None):
    """Write ``kspace`` ``(slices, coils, H, W)`` as a fastMRI-style HDF5 file (atomically).

    Returns:
        pathlib.Path: ``out``.
    """
    import h5py

    from .._atomic import atomic_path
    out = pathlib.Path(out)
    with atomic_path(out, suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as f:
            f["kspace"] = np.asarray(kspace, dtype=np.complex64)
            if voxel_mm is not None:
                f.attrs["voxel_size_mm"] = np.asarray(voxel_mm, dtype=np.float64)
    return out


def twix_to_fastmri(path, out):
    """Convert a twix file (:func:`read_twix_kspace`) to fastMRI's layout
    (:func:`write_fastmri`); returns ``(out, shape, voxel_mm)``."""
    k, voxel = read_twix_kspace(path)
    return write_fastmri(out, k, voxel), k.shape, voxel
