"""k-space sampling patterns on the full centred grid, all seeded.

Every pattern is a boolean array of shape ``(H, W)``, True where k-space is sampled, on the
centred grid of :mod:`mrirecon_vdm.linop` (the centre of an axis of size n is index ``n // 2``).

* :func:`cartesian_mask`: 1D Cartesian undersampling, whole lines along one axis (the
  phase-encoding direction ``axis``), a fully sampled centre and the other lines
  ``"random"`` (uniform), ``"equispaced"`` or ``"gaussian"`` (variable density), in the
  spirit of fastMRI's mask functions;
* :func:`poisson_mask`: 2D variable-density Poisson-disc sampling through
  :func:`sigpy.mri.poisson`, with a fully sampled calibration square;
* :func:`mask_from_kspace`: the pattern of measured k-space (non-zero entries, any coil);
* :func:`acceleration`, :func:`calibration_shape`: what a mask measures.

**Acceleration.** ``accel = R`` keeps ``round(n / R)`` of the n lines (Cartesian, exactly,
centre lines included) or about ``H W / R`` samples (Poisson-disc, within SigPy's
tolerance of 10 %). fastMRI's ``RandomMaskFunc`` draws each line with a probability instead,
so its acceleration varies from draw to draw; here two masks of the same R always measure
the same number of lines, which keeps benchmark rows comparable.

**Centre.** ``center`` is a fraction of the lines in (0, 1) (fastMRI's ``center_fractions``,
``round(n * center)`` lines) or an integer line count (``>= 1``), placed symmetrically
around index ``n // 2`` (for an even count, one line more on the negative side, the
convention of the centred FFT).

References:
    Zbontar, J., et al. (2018). fastMRI: An open dataset and benchmarks for accelerated MRI.
    arXiv:1811.08839 (the mask functions of its ``subsample.py``).

    Lustig, M., Donoho, D., Pauly, J. M. (2007). Sparse MRI: The application of compressed
    sensing for rapid MR imaging. Magn. Reson. Med. 58(6), 1182-1195.

    Ong, F., Lustig, M. (2019). SigPy: a Python package for high performance iterative
    reconstruction. Proc. ISMRM 27, 4819 (``sigpy.mri.poisson``).
"""
import math

import numpy as np

from ._checks import as_shape

__all__ = ["cartesian_mask", "poisson_mask", "mask_from_kspace", "acceleration",
           "calibration_shape", "center_lines", "max_poisson_accel", "CARTESIAN_PATTERNS"]

#: The line patterns of :func:`cartesian_mask`.
CARTESIAN_PATTERNS = ("random", "equispaced", "gaussian")


def _check_accel(name, accel):
    try:
        accel = float(accel)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: accel must be a number >= 1, got {accel!r}") from None
    if not math.isfinite(accel) or accel < 1:
        raise ValueError(f"{name}: accel must be finite and >= 1, got {accel!r}")
    return accel


def center_lines(n, center, name="center"):
    """The number of fully sampled centre lines of an axis of ``n`` lines.

    Args:
        n (int): lines on the axis.
        center (float or int): a fraction in (0, 1) (``round(n * center)`` lines, at least
            1) or an integer count in ``[1, n]``.
        name (str): the argument's name in messages (``calib`` for :func:`poisson_mask`,
            ``--center-fraction`` for the CLI).

    Returns:
        int: the count.
    """
    if isinstance(center, (bool, np.bool_)):
        raise ValueError(f"{name} must be a fraction in (0, 1) or a line count, got {center!r}")
    if isinstance(center, (int, np.integer)):
        if not 1 <= center <= n:
            raise ValueError(f"{name}: a line count must be in [1, {n}], got {center}")
        return int(center)
    try:
        frac = float(center)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a fraction in (0, 1) or a line count, got "
                         f"{center!r}") from None
    if not 0 < frac < 1:
        raise ValueError(f"{name}: a fraction must be in (0, 1) (or pass an int line count), "
                         f"got {center!r}")
    return max(1, int(round(n * frac)))


def _center_slice(n, count):
    """The centred block of ``count`` lines, as ``sigpy.resize`` crops it."""
    start = n // 2 - count // 2
    return slice(start, start + count)


def cartesian_mask(shape, accel, center=0.08, pattern="random", axis=-1, seed=None):
    """1D Cartesian undersampling: whole k-space lines along ``axis``.

    Args:
        shape (tuple of 2 ints): the k-space grid ``(H, W)``.
        accel (float): acceleration R >= 1: ``round(n / R)`` of the ``n = shape[axis]`` lines
            are sampled, the centre ones included.
        center (float or int): the fully sampled centre, a fraction in (0, 1) or a line
            count (see the module docstring). Default 0.08 (fastMRI's 4x setting).
        pattern (str): how the other lines are chosen, one of :data:`CARTESIAN_PATTERNS`:
            ``"random"`` uniformly without replacement; ``"equispaced"`` every
            ``(n - c) / (k)``-th line from a random offset (fastMRI's equispaced mask, with
            the spacing adjusted so that the count is exact); ``"gaussian"`` without
            replacement with probability ∝ exp(−d² / (2 (n/6)²)), d the distance to the centre
            (variable density).
        axis (int): the undersampled (phase-encoding) axis, -1 / 1 (columns, the default, as
            fastMRI) or -2 / 0 (rows).
        seed (int or None): seed of the generator (None: fresh entropy).

    Returns:
        array: bool ``(H, W)`` mask, lines along the other axis fully sampled.

    Raises:
        ValueError: a bad shape, R < 1, a centre larger than the lines to sample, an unknown
            pattern or axis.

    Example:
        >>> m = cartesian_mask((128, 128), 4, center=16, seed=0)   # 32 lines, 16 central
    """
    shape = as_shape("cartesian_mask shape", shape, min_ndim=2)
    if len(shape) != 2:
        raise ValueError(f"cartesian_mask: shape must be (H, W), got {shape}")
    accel = _check_accel("cartesian_mask", accel)
    if pattern not in CARTESIAN_PATTERNS:
        raise ValueError(f"cartesian_mask: pattern must be one of {CARTESIAN_PATTERNS}, got "
                         f"{pattern!r}")
    if axis not in (-1, 1, -2, 0):
        raise ValueError(f"cartesian_mask: axis must be -1 / 1 (columns) or -2 / 0 (rows), "
                         f"got {axis!r}")
    axis = axis % 2
    n = shape[axis]
    total = max(1, int(round(n / accel)))
    c = center_lines(n, center, "cartesian_mask: center")
    if c > total:
        raise ValueError(f"cartesian_mask: the centre ({c} lines) exceeds the {total} lines "
                         f"that acceleration {accel:g} keeps of {n}; lower center or accel")
    rng = np.random.default_rng(seed)
    lines = np.zeros(n, dtype=bool)
    lines[_center_slice(n, c)] = True
    others = np.flatnonzero(~lines)
    k = total - c
    if k > 0:
        if pattern == "random":
            chosen = rng.choice(others, size=k, replace=False)
        elif pattern == "gaussian":
            d = others - n // 2
            p = np.exp(-d.astype(np.float64) ** 2 / (2 * (n / 6.0) ** 2))
            chosen = rng.choice(others, size=k, replace=False, p=p / p.sum())
        else:
            step = len(others) / k
            offset = rng.uniform(0, step)
            chosen = others[np.minimum((offset + step * np.arange(k)).astype(int),
                                       len(others) - 1)]
        lines[chosen] = True
    mask = np.zeros(shape, dtype=bool)
    if axis == 1:
        mask[:, lines] = True
    else:
        mask[lines, :] = True
    return mask


def poisson_mask(shape, accel, calib=0.08, seed=0, crop_corner=True):
    """2D variable-density Poisson-disc sampling (:func:`sigpy.mri.poisson`).

    Args:
        shape (tuple of 2 ints): the k-space grid ``(H, W)``.
        accel (float): acceleration R > 1 (SigPy reaches it within 10 %).
        calib (float or int or tuple): the fully sampled centre square, as a fraction of
            each side or a side length (or a ``(c1, c2)`` pair of them).
        seed (int): seed (SigPy's generator needs an int).
        crop_corner (bool): leave the corners beyond the inscribed ellipse unsampled
            (SigPy's default).

    Returns:
        array: bool ``(H, W)`` mask.
    """
    shape = as_shape("poisson_mask shape", shape, min_ndim=2)
    if len(shape) != 2:
        raise ValueError(f"poisson_mask: shape must be (H, W), got {shape}")
    accel = _check_accel("poisson_mask", accel)
    if accel <= 1:
        raise ValueError(f"poisson_mask: accel must be > 1, got {accel!r}")
    if seed is None or isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"poisson_mask: seed must be an int, got {seed!r}")
    cal = calib if isinstance(calib, (tuple, list)) else (calib, calib)
    if len(cal) != 2:
        raise ValueError(f"poisson_mask: calib must be one value or a pair, got {calib!r}")
    cal = tuple(center_lines(n, c, "poisson_mask: calib") for n, c in zip(shape, cal))
    most = max_poisson_accel(shape, cal, seed, crop_corner)
    if accel > most * (1 + POISSON_RELATIVE_TOL):
        raise ValueError(f"poisson_mask: accel {accel:g} is beyond what a {shape[0]} x "
                         f"{shape[1]} Poisson-disc pattern with a {cal[0]} x {cal[1]} "
                         f"calibration square reaches (at most {most:.3g}); lower accel or "
                         f"calib")
    mask = _poisson(shape, accel, cal, int(seed), crop_corner)
    # SigPy centres its calibration region at n // 2 with n // 2 - c // 2 as start; make
    # sure it is fully sampled in our convention too
    mask[_center_slice(shape[0], cal[0]), _center_slice(shape[1], cal[1])] = True
    return mask


#: Bisection steps of :func:`poisson_mask` on SigPy's density slope (SigPy's own loop has
#: no bound and can turn forever on a target it cannot reach).
POISSON_MAX_ITER = 60
#: The tolerance of a second bisection, relative to the acceleration, where SigPy's (0.1, or
#: one sample) is not met.
POISSON_RELATIVE_TOL = 0.02


def _poisson_tol(shape, accel):
    """SigPy's tolerance on the reached acceleration (0.1), or the step of one sample more
    or less where that is coarser (small grids at high accelerations)."""
    return max(0.1, 1.5 * accel ** 2 / (shape[0] * shape[1]))


def _poisson_density(shape, cal, slope, seed, crop_corner):
    """SigPy's variable-density Poisson-disc pattern at one density slope (the loop body of
    :func:`sigpy.mri.poisson`, with its numba core)."""
    from sigpy.mri.samp import _poisson as core

    ny, nx = shape
    y, x = np.mgrid[:ny, :nx]
    x = np.maximum(abs(x - nx / 2) - cal[-1] / 2, 0)
    x /= max(x.max(), 1e-12)
    y = np.maximum(abs(y - ny / 2) - cal[-2] / 2, 0)
    y /= max(y.max(), 1e-12)
    r = np.sqrt(x ** 2 + y ** 2)
    radius_x = np.clip((1 + r * slope) * nx / max(nx, ny), 1, None)
    radius_y = np.clip((1 + r * slope) * ny / max(nx, ny), 1, None)
    state = np.random.get_state()
    try:
        mask = core(nx, ny, 30, radius_x, radius_y, cal, seed)
    finally:
        np.random.set_state(state)
    if crop_corner:
        mask *= r < 1
    return mask


def max_poisson_accel(shape, calib, seed=0, crop_corner=True):
    """The highest acceleration :func:`poisson_mask` reaches on ``shape`` with a calibration
    square ``calib`` (lines, a pair): the pattern at SigPy's steepest density slope."""
    mask = _poisson_density(tuple(shape), tuple(calib), max(shape), seed, crop_corner)
    return float(mask.size / max(1, int(mask.sum())))


def _poisson(shape, accel, cal, seed, crop_corner):
    """:func:`sigpy.mri.poisson`'s bisection on the density slope, bounded by
    :data:`POISSON_MAX_ITER` steps: the same pattern wherever SigPy's loop ends; where it
    would not (no slope within its tolerance), the first within
    :data:`POISSON_RELATIVE_TOL` of ``accel``."""
    for tol in (_poisson_tol(shape, accel), POISSON_RELATIVE_TOL * accel):
        lo, hi = 0.0, float(max(shape))
        for _ in range(POISSON_MAX_ITER):
            slope = (hi + lo) / 2
            mask = _poisson_density(shape, cal, slope, seed, crop_corner)
            reached = mask.size / max(1, int(mask.sum()))
            if abs(reached - accel) < tol:
                return mask > 0
            if reached < accel:
                lo = slope
            else:
                hi = slope
    raise ValueError(f"poisson_mask: no Poisson-disc pattern of {shape[0]} x {shape[1]} "
                     f"reaches accel {accel:g} within {tol:.2g} (last {reached:.4g}); try "
                     f"another accel or seed")


def mask_from_kspace(kspace, coil_axis=None):
    """The sampling pattern of measured k-space: True where any coil holds a non-zero value.

    Args:
        kspace (array): ``(..., H, W)`` k-space on the full grid, zeros where not measured.
        coil_axis (int or None): the coil axis, reduced with "any" (e.g. -3 for
            ``(slices, coils, H, W)``).

    Returns:
        array: bool mask, ``kspace.shape`` without the coil axis.

    Raises:
        ValueError: nothing is measured, or NaN/Inf entries (which would read as sampled).
    """
    import sigpy as sp

    from ._checks import check_finite

    check_finite("mask_from_kspace: the k-space", kspace)
    xp = sp.get_device(kspace).xp
    mask = kspace != 0
    if coil_axis is not None:
        mask = xp.any(mask, axis=coil_axis)
    if not bool(mask.any()):
        raise ValueError("mask_from_kspace: the k-space holds no non-zero entry, so no "
                         "sampling pattern can be read from it; pass the mask explicitly")
    return mask


def acceleration(mask):
    """The acceleration ``H W / (samples)`` of a 2D pattern (the mean over leading axes)."""
    m = np.asarray(mask) != 0
    n = int(m.sum())
    if n == 0:
        raise ValueError("acceleration: the mask samples nothing")
    return float(m.size / n)


def calibration_shape(mask):
    """The largest fully sampled centred rectangle ``(c1, c2)`` of a 2D mask.

    Grows a centred box (the centre convention of the module docstring) one line at a time
    along each axis while every entry stays sampled. Used for ESPIRiT calibration and
    ``phase="auto"``.

    Returns:
        tuple of 2 ints: ``(0, 0)`` when the centre itself is not sampled.
    """
    m = np.asarray(mask) != 0
    if m.ndim != 2:
        raise ValueError(f"calibration_shape: expected a 2D mask, got shape {m.shape}")
    h, w = m.shape
    if not m[h // 2, w // 2]:
        return (0, 0)
    c1 = c2 = 1
    grown = True
    while grown:
        grown = False
        for axis in (0, 1):
            n1, n2 = (c1 + 1, c2) if axis == 0 else (c1, c2 + 1)
            if n1 > h or n2 > w:
                continue
            if m[_center_slice(h, n1), _center_slice(w, n2)].all():
                c1, c2 = n1, n2
                grown = True
    return (c1, c2)
