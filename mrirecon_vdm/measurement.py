"""``Measurement``: what both samplers need from ``(y, A)``, set up once.

A measurement ``y = A x + n`` of a real image x, seen the way
:class:`mrirecon_vdm.app.GuidedVDMRecon` and :class:`mrirecon_vdm.pnp.PnPVDMRecon` see
it: the operator's structure (mask, coil maps, crop, phase;
:func:`mrirecon_vdm.linop.fourier_structure`), the image phase φ folded into the operator
(``A * Phase(φ)``), the intensity scale s, the noise level σ̂, and from them the data step
(:class:`mrirecon_vdm.alg.DataConsistency`), the phase refinement during sampling
(:func:`mrirecon_vdm.phase.refine_phase`) and the complex image ``x · e^{iφ}``.

Two units: the guided sampler works in the prior's units, y / s with σ / s
(:attr:`Measurement.y_scaled`, :attr:`Measurement.sigma_scaled`); plug-and-play works on
the raw y with the raw σ (:attr:`Measurement.y`, :attr:`Measurement.sigma`) and hands s to
its denoiser (:attr:`Measurement.image_scale`). The factories take ``scaled`` to say which.

The object is built in two steps so that a caller checks everything before any work:
``Measurement(...)`` checks the measurement and the requests and reads the operator's
structure (cheap); :meth:`Measurement.set_up` then moves y to the device and estimates the
phase, the scale and σ̂.
"""
import math

import numpy as np
import sigpy as sp

from ._checks import check_measurement

__all__ = ["Measurement", "check_scale"]


def check_scale(name, scale, A, coils=False, per_image=False):
    """``ValueError`` unless ``scale`` is a finite positive number, or a real array of them
    that broadcasts to ``A.ishape`` and (with a coil axis inserted before the image axes for
    an operator with coil maps, ``coils``) to ``A.oshape``; with ``per_image``, one value per
    image: an array that broadcasts to ``A.ishape[:-2] + (1, 1)``."""
    if hasattr(scale, "shape") and hasattr(scale, "dtype"):
        s = np.asarray(sp.to_device(scale, sp.cpu_device))
    else:
        try:
            s = np.asarray(scale)
        except (TypeError, ValueError):
            s = np.asarray(None)
    if s.dtype.kind not in "biuf":
        raise ValueError(f"{name}: expected a number or a real array, got "
                         f"{type(scale).__name__}" + (f" of dtype {s.dtype}"
                                                      if hasattr(scale, "dtype") else ""))
    ishape, oshape = tuple(A.ishape), tuple(A.oshape)
    shape = tuple(s.shape)
    yshape = shape
    if coils and s.ndim > 0:
        yshape = shape[:-2] + (1,) + shape[-2:] if s.ndim >= 2 else None

    def fits(a, b):
        try:
            return a is not None and np.broadcast_shapes(a, b) == b
        except ValueError:
            return False
    example = ishape[:-2] + (1, 1)
    if per_image and not fits(shape, example):
        raise ValueError(f"{name}: expected a number or one per image, shape {example}, got "
                         f"shape {shape}")
    if not (fits(shape, ishape) and fits(yshape, oshape)):
        raise ValueError(f"{name}: expected a number or an array that broadcasts to the image "
                         f"shape A.ishape {ishape} and the measurement shape A.oshape {oshape} "
                         f"(e.g. one value per slice, shape {example}), got shape {shape}")
    if not (np.all(np.isfinite(s)) and np.all(s > 0)):
        raise ValueError(f"{name}: expected finite values > 0, got "
                         f"{s if s.size <= 8 else f'min {s.min()}, max {s.max()}'}")


class Measurement:
    """The measurement set-up of a reconstruction: y, the operator with its phase, the
    intensity scale, σ̂, and the data step and phase refinement built from them.

    .. math::
        y = A\\, \\mathrm{diag}(e^{i\\varphi})\\, x + n, \\qquad n \\sim \\mathcal{CN}(0,
        \\sigma^2 I), \\qquad x \\text{ real}, \\quad s \\approx
        \\operatorname{percentile}_q |A^H y|

    Args:
        name (str): the caller, first word of every error message (e.g. ``"PnPVDMRecon"``).
        y (array): the measurement, ``A.oshape``, numpy or cupy.
        A (sigpy.linop.Linop): forward operator on real images ``(..., H, W)``.
        phase (None, str or array): the phase request of
            :func:`mrirecon_vdm.phase.resolve_phase` (None, ``"none"``, ``"auto"`` or radians).
        sigma (float or None): k-space noise std σ (units of y); None: estimated
            (:func:`mrirecon_vdm.noise.estimate_sigma`).
        scale (float, array or None): intensity scale s; None: estimated
            (:func:`mrirecon_vdm.intensity.estimate_scale`). Checked by :func:`check_scale`.
        per_image_scale (bool): a given ``scale`` must be a number or one per image
            (``A.ishape[:-2] + (1, 1)``) rather than anything that broadcasts to the image
            and the measurement.
        complex_y (bool or None): y must be complex; None: only for an operator
            :func:`~mrirecon_vdm.linop.fourier_structure` recognises (k-space).

    Attributes (after the constructor):
        structure (FourierStructure or None): what was read out of ``A`` (its own phase
            included, the requested one not).
        phase_request (None, str or array): None (a real image), ``"auto"`` or the array.
        coils (bool): the operator has coil maps.
        sigma_given (bool): σ was passed.

    Attributes (after :meth:`set_up`):
        device (sigpy.Device): where the data live.
        y (array): the measurement on ``device`` (complex64 / float32 with
            ``single=True``).
        A (sigpy.linop.Linop): the operator with the phase, ``A * Phase(φ)``, or ``A``.
        scale (array): s, float32 on ``device``: ``A.ishape[:-2] + (1, 1)`` when estimated
            for a Fourier operator, else the shape given (``()`` for a number).
        sigma (float): σ̂ in units of y (the last estimate, once a phase refiner re-estimates
            it).
        sigma_scaled (float or array): σ / s as the guided sampler's data step takes it
            (0.0 for σ = 0; an array for a per-image s).

    Raises:
        TypeError: ``A`` not a SigPy Linop.
        ValueError: y not of shape ``A.oshape``, real y for a Fourier operator, non-finite y,
            coil maps that are not normalised, a bad σ, scale or phase request.
    """

    def __init__(self, name, y, A, phase=None, sigma=None, scale=None, per_image_scale=False,
                 complex_y=None):
        from .linop import check_maps_normalised, fourier_structure
        from .phase import resolve_phase

        self.name = name
        structure = fourier_structure(A) if isinstance(A, sp.linop.Linop) else None
        check_measurement(name, y, A, complex_required=structure is not None
                          if complex_y is None else bool(complex_y))
        if structure is not None:
            check_maps_normalised(f"{name} A", structure.maps)
        if sigma is not None:
            try:
                ok = np.ndim(sigma) == 0 and math.isfinite(float(sigma)) and float(sigma) >= 0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(f"{name}: sigma must be None or a finite number >= 0, got "
                                 f"{sigma!r}")
        self.coils = structure is not None and structure.maps is not None
        if scale is not None:
            check_scale(f"{name} scale", scale, A, coils=self.coils, per_image=per_image_scale)
        self.structure = structure
        self.phase_request = resolve_phase(name, phase, A)
        self.sigma_given = sigma is not None
        self._y, self._A, self._sigma, self._scale = y, A, sigma, scale
        self.device = self.y = self.A = self.scale = self.sigma = self.sigma_scaled = None
        self._phase = self._y_scaled = self._refined = None

    def set_up(self, percentile=100.0, device=None, single=False):
        """Move y to the device and estimate what was not given: the phase (``"auto"``), the
        intensity scale (``percentile`` of |Aᴴy|, the prior's
        :func:`~mrirecon_vdm.intensity.prior_percentile`) and σ̂. Returns ``self``.

        Args:
            percentile (float): q of :func:`mrirecon_vdm.intensity.estimate_scale`.
            device (sigpy.Device, int or None): where to compute; None: y's device.
            single (bool): cast y to complex64 (float32 for a real y).
        """
        from .intensity import estimate_scale
        from .noise import estimate_sigma
        from .phase import apply_phase

        device = sp.get_device(self._y) if device is None else sp.Device(device)
        self.device = device
        with device:
            xp = device.xp
            y = sp.to_device(self._y, device)
            if single:
                y = y.astype(np.complex64 if np.iscomplexobj(y) else np.float32, copy=False)
            A, self._phase = apply_phase(self.phase_request, y, self._A, device)
            if self._scale is None:
                scale = estimate_scale(y, A, percentile=percentile)
            else:
                scale = xp.asarray(self._scale, dtype=np.float32)
                if not bool(xp.all(xp.isfinite(scale))) or not bool(xp.all(scale > 0)):
                    raise ValueError(f"{self.name}: scale must be finite and > 0, got {scale}")
            sigma = estimate_sigma(y, A) if self._sigma is None else self._sigma
            if float(sigma) == 0:
                sigma_scaled = 0.0
            elif scale.ndim == 0:
                sigma_scaled = float(sigma) / float(scale)
            else:
                sigma_scaled = float(sigma) / scale
        self.y, self.A, self.scale = y, A, scale
        self.sigma, self.sigma_scaled = float(sigma), sigma_scaled
        return self

    @property
    def y_scaled(self):
        """y / s, the guided sampler's data (the same array at every call; s gets a coil
        axis for an operator with coil maps)."""
        if self._y_scaled is None:
            with self.device:
                s = self.scale
                if self.coils and s.ndim > 0:
                    s = s[..., None, :, :]          # the coil axis of y
                self._y_scaled = (self.y / s).astype(self.y.dtype, copy=False)
        return self._y_scaled

    @property
    def image_scale(self):
        """s as plug-and-play's denoiser takes it, float64 on the CPU: a number when a number
        was given (or estimated for an operator that is not recognised), else one per image,
        ``A.ishape[:-2] + (1, 1)``."""
        scale = self.scale if self._scale is None else self._scale
        s = np.asarray(sp.to_device(scale) if hasattr(scale, "device") else scale,
                       dtype=np.float64)
        if s.ndim == 0:
            return float(s)
        return np.broadcast_to(s, tuple(self.A.ishape[:-2]) + (1, 1)).copy()

    @property
    def phase(self):
        """φ in radians, float32 on the device (None without a phase): the refined phase of
        the data step once :meth:`phase_refiner` has been built for it, else the phase of
        :meth:`set_up`."""
        if self._refined is not None:
            with self.device:
                return self.device.xp.angle(self._refined.structure.phase).astype(np.float32)
        return self._phase

    def complex_image(self, x):
        """``x · e^{iφ}`` for a real image ``x`` (complex64; ``x`` itself without a phase),
        with :attr:`phase`."""
        with self.device:
            phase = self.phase
            if phase is None:
                return x.astype(np.complex64)
            phase = sp.to_device(phase, self.device)
            return (x * self.device.xp.exp(1j * phase)).astype(np.complex64)

    def data_consistency(self, scaled, max_iter=None, phase_max_iter=None, tol=1e-6,
                         min_lam=0.0):
        """The data step on the operator with its phase, in the sampler's units.

        Args:
            scaled (bool): σ / s (the guided sampler, data :attr:`y_scaled`) or σ (the raw
                data :attr:`y`).
            max_iter (int or None): CG iterations; None: ``phase_max_iter`` for one coil with
                a phase when given, else the default of
                :class:`~mrirecon_vdm.alg.DataConsistency`.
            phase_max_iter (int or None): the iterations for one coil with a phase.
            tol (float), min_lam (float): as :class:`~mrirecon_vdm.alg.DataConsistency`.

        Returns:
            DataConsistency: the step (its sigma in the units asked for).
        """
        from .alg import DataConsistency

        sigma = self.sigma_scaled if scaled else self.sigma
        dc = DataConsistency(self.A, sigma, max_iter=max_iter, tol=tol, min_lam=min_lam)
        st = dc.structure
        if max_iter is None and phase_max_iter is not None and st is not None \
                and st.maps is None and st.phase is not None:
            dc.max_iter = phase_max_iter
        return dc

    def phase_refiner(self, dc, scaled, every, sigma_every=None, batched=False):
        """The hook that refines the phase of ``dc`` during sampling:
        ``hook(x, final=False)``, called with the current image before a data step.

        At every ``every``-th call, from the first on, and at a ``final`` call, one update of
        :meth:`mrirecon_vdm.alg.DataConsistency.refine_phase` from ``x`` (the mean over the
        first axis with ``batched``: the samples). With ``sigma_every`` and σ not given,
        σ is re-estimated against the refined phase at every ``sigma_every``-th refinement,
        from the first on (:func:`mrirecon_vdm.noise.estimate_sigma`, capped by the data's
        :func:`~mrirecon_vdm.noise.highpass_sigma`); :attr:`sigma` follows it. From now on
        :attr:`phase` is the phase of ``dc``.

        Args:
            dc (DataConsistency): the data step (from :meth:`data_consistency`), with a phase.
            scaled (bool): the units ``dc`` was built in.
            every (int): refine at every ``every``-th call.
            sigma_every (int or None): re-estimate σ at every ``sigma_every``-th refinement;
                None: never.
            batched (bool): ``x`` carries a leading axis of samples.

        Returns:
            callable: ``hook(x, final=False)``.
        """
        from .noise import estimate_sigma, highpass_sigma
        from .phase import refine_window

        y = self.y_scaled if scaled else self.y
        window = refine_window(y, dc.structure)
        reestimate = sigma_every is not None and not self.sigma_given
        upper = highpass_sigma(y, dc.structure) if reestimate else None   # once: data only
        self._refined = dc
        calls, refinements = [0], [0]

        def hook(x, final=False):
            calls[0] += 1
            if not final and (calls[0] - 1) % every:
                return
            with self.device:
                dc.refine_phase(y, x.mean(axis=0) if batched else x, window)
                if reestimate and refinements[0] % sigma_every == 0:
                    # the structure now carries the refined phase
                    dc.set_sigma(estimate_sigma(y, dc.structure, upper=upper))
                    self.sigma = (dc.sigma * float(self.device.xp.mean(self.scale)) if scaled
                                  else dc.sigma)
            refinements[0] += 1
        return hook
