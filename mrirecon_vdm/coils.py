"""Coil sensitivity maps: simulated (birdcage), estimated (ESPIRiT, SigPy or BART), combined.

* :func:`birdcage_maps`: simulated maps of a birdcage coil (:func:`sigpy.mri.birdcage_maps`),
  normalised to a unit root-sum-of-squares, for benchmarks and tests;
* :func:`espirit_maps`: ESPIRiT maps from the fully sampled k-space centre with
  :class:`sigpy.mri.app.EspiritCalib` (the calibration size read from the data's mask);
* :func:`bart_espirit_maps`: the same through BART ``ecalib`` (for the BART baseline);
* :func:`rss`: root-sum-of-squares coil combination.

Maps are ``(C, H, W)`` (or ``(S, C, H, W)``, one set per slice), complex64, on the centred
grid of :mod:`mrirecon_vdm.linop`; the k-space they go with is ``(C, H, W)`` (or
``(S, C, H, W)``), zeros where not sampled.

References:
    Uecker, M., Lai, P., Murphy, M. J., Virtue, P., Elad, M., Pauly, J. M., Vasanawala,
    S. S., Lustig, M. (2014). ESPIRiT: an eigenvalue approach to autocalibrating parallel
    MRI, where SENSE meets GRAPPA. Magn. Reson. Med. 71(3), 990-1001.

    Pruessmann, K. P., Weiger, M., Scheidegger, M. B., Boesiger, P. (1999). SENSE:
    sensitivity encoding for fast MRI. Magn. Reson. Med. 42(5), 952-962.
"""
import numpy as np
import sigpy as sp

from ._checks import as_shape, check_finite

__all__ = ["birdcage_maps", "espirit_maps", "bart_espirit_maps", "rss", "kernel_width_for",
           "DEFAULT_CALIB_MAX", "ESPIRIT_MIN_CALIB", "DEFAULT_KERNEL_WIDTH", "DEFAULT_CROP"]

#: The largest calibration region (lines per axis) handed to ESPIRiT.
DEFAULT_CALIB_MAX = 24
#: ESPIRiT's kernel width where the calibration region allows it (SigPy's and BART's default).
DEFAULT_KERNEL_WIDTH = 6
#: ESPIRiT's crop: the maps are set to zero wherever the calibration's largest eigenvalue
#: falls below it (BART ``ecalib``'s default; SigPy's is 0.95). The reconstructions treat
#: zero maps as "no object" (:class:`mrirecon_vdm.alg.DataConsistency` sets the image to 0
#: there), and from a noisy 13-line centre the eigenvalue drops below 0.95 inside the head:
#: 8 coils, Cartesian 8×, smooth phase, every 8th slice of the validation people
#: (``val_person`` | ``val_coronal``), plug-and-play 29.23 | 28.21 dB with 0.95, 30.64 |
#: 30.41 with 0.8, 30.53 | 30.45 with no crop; BART's phase-constrained L1-wavelet 27.43 |
#: 26.35, 27.50 | 26.52, 27.37 | 26.46 (``benchmarks/espirit_crop.py``;
#: ``docs/undersampled.md``, "Coil maps: ESPIRiT's crop").
DEFAULT_CROP = 0.8
#: The smallest calibration region (lines per axis) the maps are estimated from. With fewer
#: lines than twice the kernel width ESPIRiT finds no sensitivity (all-zero maps at 8 lines
#: with kernel 6, a third of the head at 10), so the kernel shrinks with the region
#: (:func:`kernel_width_for`); at 8 lines (kernel 4) the maps are as good as at 12 (kernel 6)
#: to within 0.02 (``docs/undersampled.md``, "Coil maps from a small calibration region").
ESPIRIT_MIN_CALIB = 8


def kernel_width_for(calib):
    """ESPIRiT's kernel width for a calibration region of ``calib`` lines:
    ``min(DEFAULT_KERNEL_WIDTH, calib // 2)`` (6 from 12 lines, 5 at 10, 4 at 8)."""
    return int(min(DEFAULT_KERNEL_WIDTH, int(calib) // 2))


def birdcage_maps(shape, num_coils, radius=1.5):
    """Simulated birdcage coil maps with a unit root-sum-of-squares.

    Args:
        shape (tuple of 2 ints): ``(H, W)``.
        num_coils (int): C >= 1.
        radius (float): the coil radius relative to the field of view (SigPy's ``r``).

    Returns:
        array: complex64 ``(C, H, W)``.
    """
    import sigpy.mri

    shape = as_shape("birdcage_maps shape", shape, min_ndim=2)
    if len(shape) != 2:
        raise ValueError(f"birdcage_maps: shape must be (H, W), got {shape}")
    if isinstance(num_coils, bool) or not isinstance(num_coils, (int, np.integer)) \
            or num_coils < 1:
        raise ValueError(f"birdcage_maps: num_coils must be an int >= 1, got {num_coils!r}")
    mps = sigpy.mri.birdcage_maps((int(num_coils),) + shape, r=float(radius))
    mps = mps / np.sqrt((np.abs(mps) ** 2).sum(0, keepdims=True))
    return mps.astype(np.complex64)


def _check_kspace(name, kspace):
    if not hasattr(kspace, "shape") or kspace.ndim < 3:
        raise ValueError(f"{name}: expected multi-coil k-space of shape (C, H, W) or "
                         f"(S, C, H, W), got {getattr(kspace, 'shape', type(kspace).__name__)}")
    if not np.iscomplexobj(kspace):
        raise ValueError(f"{name}: expected complex k-space, got dtype {kspace.dtype}")
    check_finite(f"{name} k-space", kspace)


def _calib_width(name, kspace, calib):
    from .sampling import calibration_shape, mask_from_kspace

    if calib is not None:
        if isinstance(calib, bool) or not isinstance(calib, (int, np.integer)) \
                or not ESPIRIT_MIN_CALIB <= calib <= min(kspace.shape[-2:]):
            raise ValueError(f"{name}: calib must be an int in [{ESPIRIT_MIN_CALIB}, "
                             f"{min(kspace.shape[-2:])}] (lines of the calibration region), got "
                             f"{calib!r}")
        return int(calib)
    m = np.asarray(sp.to_device(mask_from_kspace(kspace, coil_axis=-3)))
    m = m.reshape((-1,) + m.shape[-2:]).min(axis=0)
    c = min(calibration_shape(m))
    if c < ESPIRIT_MIN_CALIB:
        raise ValueError(f"{name}: the k-space centre is fully sampled over only {c} lines; "
                         f"ESPIRiT coil maps need a calibration region of at least "
                         f"{ESPIRIT_MIN_CALIB} x {ESPIRIT_MIN_CALIB} lines (use a mask with a "
                         f"larger centre, or pass maps)")
    return min(c, DEFAULT_CALIB_MAX)


def _check_found(name, maps, width, kernel_width):
    """ESPIRiT returns all-zero maps (no eigenvalue reaches the crop) when the calibration
    region is too small for its kernel (e.g. 8 or 10 lines with kernel width 6): refuse
    them instead of returning an operator that measures nothing."""
    xp = sp.get_device(maps).xp
    if not bool(xp.any(maps != 0)):
        raise ValueError(f"{name}: ESPIRiT found no coil sensitivity (all maps are zero) from a "
                         f"calibration region of {width} x {width} lines with kernel width "
                         f"{kernel_width}; use a mask with a larger fully sampled centre (about "
                         f"2 x kernel_width lines or more), a smaller kernel, or pass maps")
    return maps


def espirit_maps(kspace, calib=None, thresh=0.02, kernel_width=None, crop=None, device=None):
    """ESPIRiT coil maps from the calibration region (:class:`sigpy.mri.app.EspiritCalib`).

    Args:
        kspace (array): ``(C, H, W)`` or ``(S, C, H, W)`` complex k-space on the full grid,
            zeros where not sampled.
        calib (int or None): the calibration width, at least :data:`ESPIRIT_MIN_CALIB` (None:
            the largest fully sampled centred square of the data, at most
            :data:`DEFAULT_CALIB_MAX`).
        thresh (float): ESPIRiT's threshold of the calibration matrix's singular values
            (SigPy's default).
        crop (float or None): ESPIRiT's eigenvalue crop; None: :data:`DEFAULT_CROP`.
        kernel_width (int or None): ESPIRiT's kernel (None: :func:`kernel_width_for` the
            calibration width: SigPy's 6 from 12 lines, smaller below).
        device: SigPy device (None: ``kspace``'s).

    Returns:
        array: complex64 maps, ``kspace``'s shape.

    Raises:
        ValueError: no coil axis, real or non-finite k-space, a calibration region smaller
            than :data:`ESPIRIT_MIN_CALIB` lines, or one too small for the kernel (all-zero
            maps).
    """
    import sigpy.mri

    _check_kspace("espirit_maps", kspace)
    width = _calib_width("espirit_maps", kspace, calib)
    if kernel_width is None:
        kernel_width = kernel_width_for(width)
    crop = DEFAULT_CROP if crop is None else crop
    if isinstance(crop, bool) or not isinstance(crop, (int, float, np.number)) \
            or not 0 <= crop < 1:
        raise ValueError(f"espirit_maps: crop must be a number in [0, 1), got {crop!r}")
    device = sp.get_device(kspace) if device is None else sp.Device(device)
    if kspace.ndim > 3:
        flat = kspace.reshape((-1,) + kspace.shape[-3:])
        out = [espirit_maps(k, width, thresh, kernel_width, crop, device) for k in flat]
        return device.xp.stack(out).reshape(kspace.shape)
    app = sigpy.mri.app.EspiritCalib(kspace, calib_width=width, thresh=thresh,
                                     kernel_width=kernel_width, crop=crop, device=device,
                                     show_pbar=False)
    return _check_found("espirit_maps", app.run().astype(np.complex64), width, kernel_width)


def bart_espirit_maps(kspace, calib=None):
    """ESPIRiT maps with BART ``ecalib -m 1`` (one set of maps), ``(C, H, W)`` complex64,
    with the kernel of :func:`kernel_width_for` the calibration width.

    BART's centred FFT agrees with ours for even sizes up to a sign per axis of size 2 (mod
    4), which is a constant phase of the maps and cancels in SENSE; odd sizes are refused.

    Raises:
        RuntimeError: BART is missing.
        ValueError: as :func:`espirit_maps`, or an odd image size.
    """
    from .bart import bart
    from .config import require_bart

    _check_kspace("bart_espirit_maps", kspace)
    if kspace.ndim > 3:
        flat = kspace.reshape((-1,) + kspace.shape[-3:])
        return np.stack([bart_espirit_maps(k, calib) for k in flat]).reshape(kspace.shape)
    if any(n % 2 for n in kspace.shape[-2:]):
        raise ValueError(f"bart_espirit_maps: BART needs even image sizes, got "
                         f"{tuple(kspace.shape[-2:])}")
    require_bart()
    width = _calib_width("bart_espirit_maps", kspace, calib)
    k = np.asarray(sp.to_device(kspace)).astype(np.complex64)
    k = np.transpose(k, (1, 2, 0))[:, :, None, :]            # BART: (x, y, z, coils)
    kernel = kernel_width_for(width)
    mps = bart(1, f"ecalib -m 1 -r {width} -k {kernel} -c {DEFAULT_CROP}", k)
    mps = np.asarray(mps).reshape(k.shape)[:, :, 0, :]
    mps = np.ascontiguousarray(np.transpose(mps, (2, 0, 1))).astype(np.complex64)
    return _check_found("bart_espirit_maps", mps, width, kernel)


def rss(coil_images, axis=-3):
    """Root-sum-of-squares combination over the coil ``axis``."""
    xp = sp.get_device(coil_images).xp
    return xp.sqrt((xp.abs(coil_images) ** 2).sum(axis=axis))
