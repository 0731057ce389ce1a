"""Measurement noise, kept apart from the forward operator.

Complex Gaussian noise of total variance ``sigma**2`` per entry: real and imaginary parts
each have standard deviation ``sigma / sqrt(2)`` (the statistics of ``F eps`` for real white
``eps`` under the orthonormal FFT). Real data gets real noise of standard deviation ``sigma``.
"""
import dataclasses
import math

import numpy as np
import sigpy as sp

from ._checks import check_array, check_finite, check_real
from .linop import CropFourier, centred_fft

__all__ = ["GaussianNoise", "simulate_lowres", "estimate_sigma", "highpass_sigma", "mirror_pairs",
           "HIGHPASS_BAND", "HIGHPASS_QUANTILE"]

#: The outer band of measured k-space that :func:`highpass_sigma` reads: samples at least
#: this fraction of the measured half-extent from the centre on either axis.
HIGHPASS_BAND = 0.75
#: With one coil and a phase, :func:`estimate_sigma` also reads the calibration misfit on a
#: band of the calibration region alone: frequencies at least ``CALIBRATION_BAND`` of the
#: region's half-extent from the centre (on the axis where it reaches furthest: the readout
#: of a line mask), at least ``CALIBRATION_EDGE`` lines inside the region's truncated edges.
#: The phase's convolution carries the image's large frequencies just outside the region
#: into its edge lines and its low frequencies; far from both, the misfit is mostly noise.
#: None: off (the estimate is then the smaller of the misfit and the high-pass bound).
CALIBRATION_BAND = 0.75
#: Lines left out at each truncated edge of the calibration region (``CALIBRATION_BAND``).
CALIBRATION_EDGE = 2
#: The quantile of the band image's magnitudes that :func:`highpass_sigma` reads: a low one
#: sees less of the image's sparse detail (noiseless validation slices, Cartesian 4×: the
#: bound fell from 0.006–0.018 with the median to 0.003–0.010; with noise of 0.05 both read
#: 0.051–0.056), and the guided mean of 4 with a smooth phase went from 34.86 (median) to
#: 35.39 dB (``docs/sampler.md``).
HIGHPASS_QUANTILE = 0.1


@dataclasses.dataclass(frozen=True)
class GaussianNoise:
    """Additive (complex) white Gaussian noise; immutable, explicitly seeded.

    Calling the same object twice on the same input gives the same output when ``seed``
    is not None; calling never changes the object.

    Args:
        sigma (float): standard deviation (total, for complex data), ``>= 0``.
        seed (int or None): seed of the generator; None draws fresh entropy each call.
    """

    sigma: float
    seed: int = None

    def __post_init__(self):
        try:
            sigma = float(self.sigma)
        except (TypeError, ValueError):
            raise ValueError(f"GaussianNoise: sigma must be a number, got {self.sigma!r}") from None
        if not np.isfinite(sigma) or sigma < 0:
            raise ValueError(f"GaussianNoise: sigma must be finite and >= 0, got {self.sigma!r}")
        object.__setattr__(self, "sigma", sigma)

    def sample(self, shape, dtype=np.complex64, device=sp.cpu_device):
        """A noise array of the given shape and dtype on ``device``."""
        device = sp.Device(device)
        xp = device.xp
        with device:
            rng = xp.random.default_rng(self.seed)
            if np.issubdtype(np.dtype(dtype), np.complexfloating):
                real_dtype = np.finfo(dtype).dtype
                s = self.sigma / np.sqrt(2)
                n = (rng.standard_normal(shape, dtype=real_dtype)
                     + 1j * rng.standard_normal(shape, dtype=real_dtype)) * s
                return n.astype(dtype, copy=False)
            return (rng.standard_normal(shape, dtype=dtype) * self.sigma).astype(dtype, copy=False)

    def __call__(self, y):
        """``y + noise``, same shape, dtype and device as ``y``."""
        check_array("GaussianNoise y", y)
        if self.sigma == 0:
            return y.copy()
        return y + self.sample(y.shape, y.dtype, sp.get_device(y))


def simulate_lowres(x_hr, lr_shape, sigma=0.0, seed=None):
    """Simulate the low-resolution k-space of a high-resolution magnitude image.

    .. math::
        \\hat y_0 = \\mathcal{P}^{-1}(\\Lambda) F x_0 + \\varepsilon,
        \\quad \\varepsilon \\sim \\mathcal{CN}(0, \\sigma^2)

    Args:
        x_hr (array): real high-resolution image(s), ``(..., N1, N2)``.
        lr_shape (tuple of 2 ints): the low resolution ``(m1, m2)``.
        sigma (float): noise standard deviation in k-space (same scale as ``x_hr``).
        seed (int or None): noise seed.

    Returns:
        array: complex64/complex128 k-space block ``(..., m1, m2)``.

    Raises:
        ValueError: ``x_hr`` is not a real numeric array of at least 2 dimensions, holds
            NaN/Inf, or is so large that its k-space (or the noisy k-space) overflows the
            floating-point type (the orthonormal FFT adds up to ``sqrt(N1 N2)`` times the
            largest value).
    """
    check_array("simulate_lowres x_hr", x_hr)
    check_real("simulate_lowres x_hr", x_hr)
    if x_hr.ndim < 2:
        raise ValueError(f"simulate_lowres: x_hr must have at least 2 dimensions, got shape {x_hr.shape}")
    check_finite("simulate_lowres x_hr", x_hr)
    lr_shape = tuple(lr_shape)
    if len(lr_shape) != 2:
        raise ValueError(f"simulate_lowres: lr_shape must be (m1, m2), got {lr_shape}")
    A = CropFourier(x_hr.shape, x_hr.shape[:-2] + lr_shape)
    dtype = np.complex128 if x_hr.dtype == np.float64 else np.complex64
    with np.errstate(over="ignore", invalid="ignore"):
        y = A(x_hr).astype(dtype, copy=False)
        y = GaussianNoise(sigma, seed)(y)
    xp = sp.get_device(y).xp
    if not bool(xp.all(xp.isfinite(y))):
        peak = float(xp.abs(x_hr).max())
        raise ValueError(f"simulate_lowres x_hr: the k-space overflows {np.dtype(dtype).name} "
                         f"(the largest |x_hr| is {peak:.3g}, and the orthonormal FFT of a "
                         f"{x_hr.shape[-2]} x {x_hr.shape[-1]} image can be "
                         f"{np.sqrt(x_hr.shape[-2] * x_hr.shape[-1]):.3g} times larger); "
                         f"scale the image down or pass float64")
    return y


def estimate_sigma(y, A, upper=None):
    """The k-space noise level a measurement shows against its model (maps, phase).

    In the fully sampled calibration region (the largest fully sampled centred rectangle;
    the whole block of a crop) the coil images ``u_c`` should be ``S_c e^{iφ} m`` for one
    real image m (S the coil maps, φ the phase of the operator when it has one). What the
    model cannot explain,

    .. math::
        R_c = u_c - S_c \\sum_{c'} \\bar S_{c'} u_{c'} \\quad\\text{(coils)}, \\qquad
        R = i\\, e^{i\\varphi} \\mathrm{Im}(e^{-i\\varphi} u) \\quad\\text{(one coil, a phase)},

    holds the noise (a (C − 1)/C share of it with C coils, one half with one coil and a
    phase) and the error of the model (estimated maps, an estimated phase, and, with one
    coil, the calibration region's own truncation: the phase's convolution mixes the
    frequencies just outside it in), so

    .. math::
        \\hat\\sigma^2 = \\frac{\\|P_{cal} F R\\|^2}{d\\, n_{cal}}, \\qquad d = C - 1
        \\text{ (coils) or } \\tfrac12 \\text{ (one coil)}.

    Hard data consistency through an ill-conditioned operator amplifies exactly that part,
    so the samplers use σ̂ as the noise level when none is given. With true maps it is an
    unbiased estimate of white k-space noise (``tests/test_noise.py``).

    **One coil and a phase**: the misfit is then mostly model error, not noise (noiseless
    validation slices, Cartesian 4×: 0.004–0.05 with the estimated phase, and still
    0.003–0.03 with the true one), and a soft data step at that level cost 1.4 dB against
    σ = 0 (``docs/sampler.md``). So the estimate is the smallest of three upper bounds of
    the noise that overestimate it for different reasons: the misfit; the misfit on the
    band of :data:`CALIBRATION_BAND` alone (far from the region's truncated edges and from
    its low frequencies, where the phase's convolution puts the truncation error; read
    through the phase low-passed by :func:`mrirecon_vdm.phase.refine_window`, since an
    estimate from noisy data holds some of the band's own noise, and normalised by the
    share of white noise the demodulation keeps there: unbiased for noise, 0.0012–0.0028 on
    noiseless validation slices against 0.003–0.017 for the other two); and
    :func:`highpass_sigma` (the outer measured k-space: noise plus the image's finest
    detail, and the images' own noise, which a phase makes look like k-space noise).

    Args:
        y (array): ``A.oshape`` complex k-space.
        A (sigpy.linop.Linop or FourierStructure): a Fourier sampling operator
            (:func:`mrirecon_vdm.linop.fourier_structure`), or its structure (the samplers'
            phase refinement passes the data consistency's, whose calibration region is then
            found once, not at every step).
        upper (float or None): for one coil, :func:`highpass_sigma` of the
            same data when the caller has it already (the samplers re-estimate σ at every
            phase refinement); None: computed here. Unused otherwise.

    **One coil without a phase**: every real image fits the data, but not every datum is a
    real image's: a real image's k-space is Hermitian, y(−k) = conj(y(k)), so where both k
    and −k are measured (:func:`mirror_pairs`) the anti-Hermitian part of the data is noise
    alone, half of it, and none of the image, its detail or its aliasing. σ̂ reads it
    (exactly 0 for noiseless data, within a few % of σ on validation slices for Cartesian,
    Poisson-disc and crop operators), capped by :func:`highpass_sigma` (data with a phase
    the operator does not model).

    Returns:
        float: σ̂ in the units of ``y``; 0.0 where nothing can be compared (an operator
        without a Fourier structure; one coil without a phase and no measured pair (k, −k),
        or noiseless data).

    Raises:
        ValueError: coil maps or a phase and a mask without a fully sampled centre of at
            least 4 x 4 lines.
    """
    from .linop import FourierStructure, fourier_structure

    st = A if isinstance(A, FourierStructure) else fourier_structure(A)
    if st is None:
        return 0.0
    if st.maps is None and st.phase is None:
        sigma = _hermitian_sigma(y, st)
        if sigma > 0:
            sigma = min(sigma, highpass_sigma(y, st) if upper is None else float(upper))
        return sigma
    device = sp.get_device(y)
    with device:
        xp = device.xp
        hr = st.hr_shape
        k = sp.resize(y, y.shape[:-2] + hr) if st.crop is not None else y
        cal = st.calibration()
        if min(cal) < 4:
            raise ValueError(f"estimate_sigma: the mask samples only {cal} lines at the k-space "
                             f"centre; the noise level is estimated from a fully sampled "
                             f"centre of at least 4 x 4 lines: pass sigma")
        cached = _calibration(st, y, k, cal, xp)
        box, u = cached["box"], cached["image"]
        phase = None if st.phase is None else sp.to_device(st.phase, device)
        if st.maps is not None:
            maps = sp.to_device(st.maps, device)
            if phase is not None:
                maps = maps * phase[..., None, :, :]
            comb = (u * maps.conj()).sum(axis=-3, keepdims=True)
            resid = u - maps * comb
            dof = int(st.maps.shape[-3]) - 1
        else:
            resid = 1j * phase * xp.imag(u * phase.conj())
            dof = 0.5
        if dof <= 0:
            return 0.0
        r = centred_fft(resid) * box
        n = int(np.prod(r.shape[:-2])) // (int(st.maps.shape[-3]) if st.maps is not None
                                             else 1) * int(np.prod(cal))
        power = xp.abs(r) ** 2
        sigma = float(xp.sqrt(power.sum() / (dof * n)))
        if st.maps is None and CALIBRATION_BAND is not None:
            band = _band(cached, hr, cal, xp)
            if band is not None:
                # the phase without its finest frequencies (an estimate from noisy data
                # carries some of the band's own noise there, which would cancel it)
                from .linop import plain_fft
                ps = plain_fft(plain_fft(phase, (-2, -1)) * cached["lowpass"], (-2, -1),
                                inverse=True)
                mag = xp.abs(ps)
                ps = xp.where(mag > 0, ps / xp.where(mag > 0, mag, 1), 1)
                resid_b = 1j * ps * xp.imag(u * ps.conj())
                power = xp.abs(centred_fft(resid_b) * box) ** 2
                kept = _noise_kept(ps, band["weight"], xp)
                if kept > 0:
                    sigma = min(sigma, float(xp.sqrt((power * band["band"]).sum()
                                                 / (dof * kept))))
    if st.maps is None:
        sigma = min(sigma, highpass_sigma(y, st) if upper is None else float(upper))
    return sigma


def _noise_kept(phase, weight, xp):
    """Σ over the band (and the images) of (w(k) + w(−k)) / 2, w(k) the share of white
    k-space noise that ``e^{−iφ} F⁻¹(box · n)`` keeps at frequency k; its imaginary part
    holds half of that, so the band's power over ½ Σ is σ² for any phase.

    Demodulation convolves the box-limited noise with K = F(e^{−iφ})/√N (Σ|K|² = 1), so
    w(k) = (|K|² ⊛ box)(k): 1 far inside the box, less near its edge, where the phase's
    spectrum carries noise out. The sum over the band is then Σ_j |K(j)|² C(j) with
    C = b_s ⋆ box, b_s the band made symmetric, the data-only ``weight`` of
    :func:`_band` (unshifted, like |K|²): one FFT per estimate."""
    from .linop import plain_fft

    hr = tuple(weight.shape[-2:])
    # |K|² unshifted: |F(ifftshift(e^{-iφ}))|² / N with the orthonormal FFT
    k2 = xp.abs(plain_fft(xp.fft.ifftshift(phase.conj(), axes=(-2, -1)), (-2, -1))) ** 2
    return float((k2 * weight).sum()) / float(hr[0] * hr[1])


def _mirror(a, xp):
    """``a(−k)`` on the centred grid over the last two axes."""
    for ax in (-2, -1):
        a = xp.roll(xp.flip(a, axis=ax), 1 - a.shape[ax] % 2, axis=ax)
    return a


def _calibration_band(hr, cal, xp):
    """The 0/1 band of :data:`CALIBRATION_BAND` on the ``hr`` grid: inside the centred
    calibration region ``cal``, :data:`CALIBRATION_EDGE` lines away from each edge that
    truncates k-space (an axis the region fills is not truncated), at least the band's
    fraction of the region's half-extent from the centre on the axis where it is largest."""
    inner = tuple(c if c >= n else max(c - 2 * CALIBRATION_EDGE, 0) for c, n in zip(cal, hr))
    if min(inner) == 0:
        return xp.zeros(hr, dtype=np.float32)
    box = sp.resize(xp.ones(inner, dtype=np.float32), tuple(hr))
    axis = int(np.argmax(cal))
    d = xp.abs(xp.arange(hr[axis]) - hr[axis] // 2) / max(cal[axis] / 2.0, 1.0)
    far = (d >= float(CALIBRATION_BAND)).astype(np.float32)
    far = far[:, None] if axis == 0 else far[None, :]
    return box * far


def _band(cached, hr, cal, xp):
    """The band of :data:`CALIBRATION_BAND` and the weight of :func:`_noise_kept`, kept in
    the calibration cache for the module's settings; None for an empty band."""
    from .linop import plain_fft

    key = (CALIBRATION_BAND, CALIBRATION_EDGE)
    hit = cached.get("band")
    if hit is None or hit[0] != key:
        band = _calibration_band(hr, cal, xp)
        value = None
        if float(band.sum()) > 0:
            # C(j) = Σ_u b_s(u) box(u − j), the circular cross-correlation of the symmetric
            # band with the box, unshifted (orthonormal FFTs: √N F⁻¹(F b_s · conj F box))
            axes = (-2, -1)
            sym = xp.fft.ifftshift(0.5 * (band + _mirror(band, xp)), axes=axes)
            weight = plain_fft(plain_fft(sym.astype(np.complex64), axes)
                                * cached["box_fft"].conj(), axes, inverse=True).real
            value = {"band": band, "weight": weight * float(np.sqrt(hr[0] * hr[1]))}
        hit = cached["band"] = (key, value)
    return hit[1]


def _calibration(st, y, k, cal, xp):
    """What σ̂ reads from the calibration region that depends on the data alone, kept on the
    structure for the last ``y`` and region (the samplers re-estimate σ from the same data at
    every phase refinement): the box (full grid), the image of the measured k-space inside
    it, the box's orthonormal FFT (unshifted), the ifftshifted
    :func:`mrirecon_vdm.phase.refine_window` that low-passes the phase for the band, and
    (added by :func:`_band`) the band and its noise-share weight."""
    from .linop import plain_fft
    from .phase import refine_window

    hit = getattr(st, "_sigma_cal", None)
    if hit is None or hit[0] is not y or hit[1] != cal:
        box = sp.resize(xp.ones(cal, dtype=np.float32), tuple(st.hr_shape))
        axes = (-2, -1)
        hit = st._sigma_cal = (y, cal, {
            "box": box,
            "image": centred_fft(k * box, inverse=True),
            "box_fft": plain_fft(xp.fft.ifftshift(box, axes=axes).astype(np.complex64), axes),
            "lowpass": xp.fft.ifftshift(refine_window(y, st), axes=axes)})
    return hit[2]


def mirror_pairs(mask):
    """The samples of ``mask`` (``(..., H, W)``, centred k-space) whose mirror sample −k is
    sampled too: ``mask * mask[-k]``, 0/1 float32. On the centred grid the mirror of index
    j is (2 ⌊N/2⌋ − j) mod N on each axis (the Nyquist line of an even size is its own)."""
    xp = sp.get_device(mask).xp
    return (mask * _mirror(mask, xp)).astype(np.float32)


def _hermitian_sigma(y, st):
    """σ̂ for one coil without a phase: the model is a real image, whose k-space is
    Hermitian, y(−k) = conj(y(k)), so wherever both k and −k are measured the anti-Hermitian
    part of the data is noise alone (half of it) and holds none of the image, its detail or
    its aliasing. 0 where no pair is measured, and below the float32 round-off of the data
    (1e-6 of their largest magnitude: noiseless data made by a float32 FFT)."""
    device = sp.get_device(y)
    with device:
        xp = device.xp
        hr = st.hr_shape
        k = sp.resize(y, y.shape[:-2] + hr) if st.crop is not None else y
        pairs = mirror_pairs(st.full_mask(device))
        n = float(xp.broadcast_to(pairs, k.shape).sum())
        if n == 0:
            return 0.0
        u = centred_fft(k * pairs, inverse=True)
        r = centred_fft(1j * xp.imag(u)) * pairs
        sigma = float(xp.sqrt((xp.abs(r) ** 2).sum() / (0.5 * n)))
        peak = float(xp.abs(k).max())
    return 0.0 if sigma <= 1e-6 * peak else sigma


def highpass_sigma(y, A, band=HIGHPASS_BAND, quantile=None):
    """An upper bound of the k-space noise level from the outer measured k-space.

    The measured samples at least ``band`` of the measured half-extent from the centre on
    either axis (the full grid for a mask, the block for a crop) hold white noise and the
    image's finest detail, which is sparse: their inverse FFT is noise at almost every
    pixel and detail at a few (edges, and their aliases). So a low quantile of that image's
    magnitudes, read as complex Gaussian noise (the q-quantile of |u| is s √(−ln(1 − q)),
    s² = σ² n / (H W) for n samples of an H × W grid), gives σ with little of the detail on
    top: on noiseless validation slices (Cartesian 4×) 0.003–0.010, with noise of σ = 0.05
    0.051–0.056 (``docs/sampler.md``).

    Args:
        y (array): ``A.oshape`` complex k-space.
        A (sigpy.linop.Linop or FourierStructure): a Fourier sampling operator, or its
            structure.
        band (float): the band's inner edge, in (0, 1).
        quantile (float or None): q in (0, 1); None: :data:`HIGHPASS_QUANTILE`.

    Returns:
        float: σ̂ in the units of ``y``; ``inf`` where the band holds no sample (no bound)
        or the operator has no Fourier structure.

    Raises:
        ValueError: ``band`` or ``quantile`` outside (0, 1).
    """
    from .linop import FourierStructure, fourier_structure

    if not 0.0 < float(band) < 1.0:
        raise ValueError(f"highpass_sigma: band must be in (0, 1), got {band!r}")
    q = HIGHPASS_QUANTILE if quantile is None else float(quantile)
    if not 0.0 < q < 1.0:
        raise ValueError(f"highpass_sigma: quantile must be in (0, 1), got {quantile!r}")
    st = A if isinstance(A, FourierStructure) else fourier_structure(A)
    if st is None:
        return float("inf")
    device = sp.get_device(y)
    with device:
        xp = device.xp
        hr = st.hr_shape
        k = sp.resize(y, y.shape[:-2] + hr) if st.crop is not None else y
        extent = tuple(st.crop) if st.crop is not None else hr
        dist = [xp.abs(xp.arange(n) - n // 2) / max(e / 2.0, 1.0) for n, e in zip(hr, extent)]
        outer = (xp.maximum(dist[0][:, None], dist[1][None, :]) >= float(band))
        w = st.full_mask(device) * outer.astype(np.float32)
        n = float(w.reshape((-1,) + hr).sum(axis=(-2, -1)).mean())
        if n == 0:
            return float("inf")
        if st.maps is not None:
            w = w[..., None, :, :]
        u = centred_fft(k * w, inverse=True)
        level = float(xp.quantile(xp.abs(u), q))
        return level / math.sqrt(-math.log1p(-q)) * math.sqrt(hr[0] * hr[1] / n)
