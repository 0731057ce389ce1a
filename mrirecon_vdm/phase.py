"""Image phase: estimated from the calibration region, or simulated smooth.

Real MR images carry a smooth phase (B0, receive chain, and an arbitrary one in ESPIRiT
maps); the prior models the magnitude. The package reconstructs the magnitude ``m`` through
``A ∘ diag(e^{iφ})`` (:func:`mrirecon_vdm.linop.Phase`), a linear operator on real images,
so φ has to be known or estimated first:

* :func:`estimate_phase`: φ of the low-resolution image of the fully sampled k-space centre
  (the calibration region), Hann-windowed, coil-combined with the operator's maps: the
  smooth phase of homodyne / phase-constrained partial-Fourier reconstruction;
* :func:`smooth_phase`: a seeded random smooth phase for simulations (tests, benchmarks).

References:
    Noll, D. C., Nishimura, D. G., Macovski, A. (1991). Homodyne detection in magnetic
    resonance imaging. IEEE Trans. Med. Imaging 10(2), 154-163.
"""
import numpy as np
import sigpy as sp

from ._checks import as_shape

__all__ = ["estimate_phase", "refine_phase", "refine_window", "smooth_phase", "resolve_phase",
           "apply_phase", "MIN_CALIBRATION"]

#: The smallest calibration region (lines per axis) ``estimate_phase`` accepts.
MIN_CALIBRATION = 4


def _hann(n, width, xp, symmetric=False):
    """A length-``n`` window: a Hann window of ``width`` centred at ``n // 2``, zeros outside."""
    w = np.zeros(n, dtype=np.float32)
    if symmetric and width % 2 == 0:
        width -= 1
    start = n // 2 - width // 2
    w[start:start + width] = np.hanning(width + 2)[1:-1]
    return xp.asarray(w)


def _calibration(st, calib=None):
    """The calibration size of a Fourier structure: the crop, or the largest fully sampled
    centred rectangle of the mask (sampled in every slice)."""
    return tuple(calib) if calib is not None else st.calibration()


def estimate_phase(y, A, calib=None):
    """The smooth image phase φ from the centre of measured k-space.

    .. math::
        \\varphi = \\arg\\, S^H F^{-1} \\big(H \\odot \\mathcal{P}(y)\\big)

    with H a separable Hann window over the calibration region (the largest fully sampled
    centred rectangle of the mask, :func:`mrirecon_vdm.sampling.calibration_shape`; the
    whole block for a centre crop), 𝒫 the zero-filling onto the full grid and S the coil maps
    of ``A`` (none for a single coil).

    Args:
        y (array): the measurement, ``A.oshape``, complex.
        A (sigpy.linop.Linop): a Fourier operator :func:`~mrirecon_vdm.linop.fourier_structure`
            recognises (crop, mask, SENSE), without a phase of its own.
        calib (tuple of 2 ints or None): the calibration size (None: read from the mask).

    Returns:
        array: φ in radians, float32, ``A.ishape``, on ``y``'s device.

    Raises:
        ValueError: an operator without a Fourier structure, one that already has a phase,
            or a mask whose centre is not sampled (fewer than :data:`MIN_CALIBRATION` lines).
    """
    from .linop import fourier_structure

    st = fourier_structure(A)
    if st is None:
        raise ValueError(f"estimate_phase: phase='auto' needs a Fourier sampling operator "
                         f"(CropFourier, FourierSampling, Sense), got {A!r}; pass the phase "
                         f"as an array instead")
    if st.phase is not None:
        raise ValueError("estimate_phase: the operator already applies a phase")
    if tuple(y.shape) != tuple(A.oshape):
        raise ValueError(f"estimate_phase: expected y of shape {tuple(A.oshape)}, got "
                         f"{tuple(y.shape)}")
    device = sp.get_device(y)
    with device:
        xp = device.xp
        hr = st.hr_shape
        c = _calibration(st, calib)
        k = sp.resize(y, y.shape[:-2] + hr) if st.crop is not None else y
        if min(c) < MIN_CALIBRATION:
            raise ValueError(f"estimate_phase: the mask samples only {c} lines at the k-space "
                             f"centre; phase='auto' needs a fully sampled centre of at least "
                             f"{MIN_CALIBRATION} x {MIN_CALIBRATION} lines (use a mask with "
                             f"a calibration region, or pass the phase)")
        win = _hann(hr[0], c[0], xp)[:, None] * _hann(hr[1], c[1], xp)[None, :]
        img = sp.ifft(k * win, axes=(-2, -1), center=True)
        if st.maps is not None:
            maps = sp.to_device(st.maps, device)
            img = (img * maps.conj()).sum(axis=-3)
        return xp.angle(img).astype(np.float32)


def smooth_phase(shape, seed=None, amplitude=np.pi):
    """A random smooth phase map (second-order polynomial), for simulations.

    .. math::
        \\varphi(u, v) = a\\,(c_0 + c_1 u + c_2 v + c_3 u^2 + c_4 u v + c_5 v^2),
        \\quad u, v \\in [-1, 1],\\ c_i \\sim U(-\\tfrac12, \\tfrac12)

    Args:
        shape (tuple of ints): ``(..., H, W)``; each leading index gets its own draw.
        seed (int or None): seed.
        amplitude (float): a (radians).

    Returns:
        array: φ, float32, ``shape``.
    """
    shape = as_shape("smooth_phase shape", shape, min_ndim=2)
    rng = np.random.default_rng(seed)
    h, w = shape[-2:]
    u, v = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    basis = np.stack([np.ones_like(u), u, v, u * u, u * v, v * v])       # (6, H, W)
    n = int(np.prod(shape[:-2]))
    coef = rng.uniform(-0.5, 0.5, size=(n, 6))
    phi = amplitude * np.tensordot(coef, basis, axes=1)
    return phi.reshape(shape).astype(np.float32)


def resolve_phase(name, phase, A):
    """The phase request of a reconstruction, checked before any work.

    Args:
        name (str): the caller, for messages.
        phase (None, str or array): None (the default: ``"auto"`` for an operator with coil
            maps and no phase of its own, ESPIRiT maps carrying an arbitrary phase; else
            ``"none"``), ``"none"``, ``"auto"`` or a real array of radians.
        A (sigpy.linop.Linop): the operator.

    Returns:
        None (a real image), ``"auto"`` or the array.

    Raises:
        ValueError: another string, ``"auto"`` for an operator without a Fourier structure,
            a complex, non-numeric or non-finite array.
    """
    from ._checks import check_array, check_finite
    from .linop import fourier_structure

    st = fourier_structure(A)
    if phase is None:
        phase = "auto" if st is not None and st.maps is not None and st.phase is None else "none"
    if isinstance(phase, str):
        if phase not in ("auto", "none"):
            raise ValueError(f"{name}: phase must be None, 'auto', 'none' or an array, got "
                             f"{phase!r}")
        if phase == "auto" and st is None:
            raise ValueError(f"{name}: phase='auto' needs a Fourier sampling operator "
                             f"(CropFourier, FourierSampling, Sense); pass the phase as an "
                             f"array for other operators")
        return None if phase == "none" else phase
    check_array(f"{name} phase", phase)
    if np.iscomplexobj(phase):
        raise ValueError(f"{name}: phase must be a real array of radians, got {phase.dtype}")
    check_finite(f"{name} phase", phase)
    return phase


def apply_phase(phase, y, A, device=None):
    """``(A * Phase(φ), φ)`` for a request of :func:`resolve_phase` (φ estimated from ``y``
    for ``"auto"``, float32 on ``device``), or ``(A, None)`` without a phase."""
    from .linop import Phase

    if phase is None:
        return A, None
    if isinstance(phase, str):
        phase = estimate_phase(y, A)
    device = sp.get_device(y) if device is None else sp.Device(device)
    phase = sp.to_device(phase, device).astype(np.float32, copy=False)
    return A * Phase(A.ishape, phase), phase


#: The largest k-space window of :func:`refine_window` (lines per axis). Cartesian 4× with
#: a smooth phase, plug-and-play, 11 + 12 validation slices of the two validation people:
#: 31 / 63 / 127 gave 37.26 / 37.35 / 37.33 and 37.48 / 37.54 / 37.53 dB (docs/sampler.md).
REFINE_WINDOW_MAX = 63


def refine_window(y, structure, max_width=REFINE_WINDOW_MAX):
    """The k-space low-pass of :func:`refine_phase`: a separable Hann window inside the
    calibration region (odd widths, symmetric about the k-space centre, at most
    ``max_width``), float32 ``(H, W)`` on ``y``'s device."""
    device = sp.get_device(y)
    hr = structure.hr_shape
    c = _calibration(structure)
    w = [max(1, min(int(n), int(max_width))) for n in c]
    with device:
        xp = device.xp
        return (_hann(hr[0], w[0], xp, symmetric=True)[:, None]
                * _hann(hr[1], w[1], xp, symmetric=True)[None, :]).astype(np.float32)


def refine_phase(y, structure, x, window, aty0=None):
    """One fixed-point update of the phase e^{iφ} of ``structure`` from a magnitude ``x``.

    .. math::
        c = u + A_0^H\\big(y - A_0 u\\big),\\quad u = x\\, e^{i\\varphi}, \\qquad
        e^{i\\varphi'} = e^{i\\varphi}\\, \\frac{d}{|d|}, \\quad
        d = \\mathrm{LP}\\big(c\\, e^{-i\\varphi}\\big),

    A₀ the operator without its phase and LP the k-space ``window``
    (:func:`refine_window`): the measured data put into the current complex image, and
    the smooth, magnitude-weighted part of their disagreement with the current phase turned
    into a correction. The true phase is a fixed point when ``x`` is the true magnitude (d
    is then LP(x), real); with the true magnitude of the validation slices it took the
    calibration-region estimate of :func:`estimate_phase` from 0.007–0.07 rad RMS in the
    head to 0.003–0.03 rad in five updates.

    Args:
        y (array): the measurement.
        structure (FourierStructure): the operator's structure, with a phase (unit-modulus
            complex ``e^{iφ}``, broadcastable to the image shape).
        x (array): real magnitude estimate, the image shape.
        window (array): ``(H, W)`` k-space window.
        aty0 (array or None): A₀ᴴy when the caller keeps it (the samplers refine with the
            same y many times); None: computed here.

    Computed without centring shifts: ``u + A₀ᴴy − A₀ᴴA₀u`` through
    :meth:`~mrirecon_vdm.linop.FourierStructure.normal` (1D FFTs for a line mask), and the
    low-pass as ``F⁻¹ W' F`` with W' the ifftshifted window (a centred FFT is
    ``S F S⁻¹`` and the circular convolution commutes with the shift S).

    Returns:
        array: the new e^{iφ'}, complex64, the image shape, on ``x``'s device.
    """
    from .linop import plain_fft

    if structure.phase is None:
        raise ValueError("refine_phase: the operator has no phase to refine")
    device = sp.get_device(x)
    with device:
        xp = device.xp
        e = sp.to_device(structure.phase, device)
        st0 = structure.without_phase()
        u = x.astype(np.complex64) * e
        if aty0 is None:
            aty0 = st0.adjoint(y)
        c = u + aty0 - st0.normal(u)
        lp = xp.fft.ifftshift(window, axes=(-2, -1))
        d = plain_fft(plain_fft(c * e.conj(), (-2, -1)) * lp, (-2, -1), inverse=True)
        mag = xp.abs(d)
        rot = xp.where(mag > 0, d / xp.where(mag > 0, mag, 1), 1)
        return xp.broadcast_to(e * rot, tuple(x.shape)).astype(np.complex64)
