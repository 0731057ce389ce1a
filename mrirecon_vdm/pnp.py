"""``PnPVDMRecon``: plug-and-play reconstruction with the VDM denoiser inside a SigPy solver.

The App wires :class:`mrirecon_vdm.prox.VDMDenoiser` into
:class:`sigpy.app.LinearLeastSquares` (proximal gradient, the half-quadratic splitting of
DPIR when the step is 1/‖A‖²):

.. math::
    x_{k+1} = D_{\\sigma_k}\\big(x_k - \\alpha A^H (A x_k - y)\\big), \\qquad
    \\sigma_k^2 = \\lambda_k \\alpha,

with a geometric schedule λ_k from ``lamda_start`` to ``lamda_end`` (relative to s², the
squared intensity of the image), one network evaluation per iteration. The image is real:
the denoiser keeps the real part (``mode="real"``), and a phase φ (``"auto"`` by default for
coil maps, see :class:`mrirecon_vdm.app.GuidedVDMRecon`) goes into the operator,
``A * Phase(φ)``. With noisy data the schedule stops at the noise level (λ ≥ σ²/s²).

References:
    Zhang, K., Li, Y., Zuo, W., Zhang, L., Van Gool, L., Timofte, R. (2022). Plug-and-play
    image restoration with deep denoiser prior. IEEE TPAMI 44(10), 6360-6376.

    Venkatakrishnan, S. V., Bouman, C. A., Wohlberg, B. (2013). Plug-and-play priors for
    model based reconstruction. IEEE GlobalSIP, 945-948.
"""
import math
import time

import numpy as np
import sigpy as sp

from ._checks import check_measurement

__all__ = ["PnPVDMRecon", "DEFAULT_PNP"]

#: The default schedule, chosen on the validation person (``docs/sampler.md``).
DEFAULT_PNP = {"num_steps": 30, "lamda_start": 3e-2, "lamda_end": 1e-4}


class PnPVDMRecon(sp.app.App):
    """Plug-and-play reconstruction of a real (magnitude) image from ``y = A x + n``.

    Args:
        y (array): measurement, ``A.oshape``, complex (k-space).
        A (sigpy.linop.Linop): forward operator on real images ``(..., H, W)``.
        prior: the prior (protocol of ``docs/architecture.md``).
        num_steps (int): iterations = network evaluations.
        lamda_start, lamda_end (float): the schedule of λ_k / s² (geometric).
        phase (None, str or array): as :class:`mrirecon_vdm.app.GuidedVDMRecon`.
        sigma (float or None): k-space noise std; the schedule does not go below it. None:
            :func:`mrirecon_vdm.noise.estimate_sigma` for operators with coil maps (noise
            and map error), 0 otherwise. Unlike the guided sampler's exact projections, the
            gradient step does not amplify a model error, and the single-coil estimate with a
            phase mostly measures the truncation of the calibration region: as a floor it
            cost 5.7, 2.2 and 0.3 dB on three validation slices (Cartesian 4×, smooth phase:
            30.60 / 26.99 / 33.85 dB against 36.26 / 29.16 / 34.17 dB without).
        scale (float, array or None): image intensity s, a number or one per image
            (``A.ishape[:-2] + (1, 1)``); None: :func:`mrirecon_vdm.app.estimate_scale` (one
            per image for Fourier operators, as the guided sampler): every slice of a stack
            then gets its own noise schedule, all slices in the same network calls.
        bf16 (bool): bfloat16 autocast for the network.
        show_pbar (bool): SigPy's progress bar.

    Attributes (after ``run()``): ``x`` (real, ``A.ishape``), ``nfe``, ``time`` (set-up and
    run, seconds), ``time_network`` (inside the network), ``time_other`` (the rest).
    """

    def __init__(self, y, A, prior, num_steps=None, lamda_start=None, lamda_end=None,
                 phase=None, sigma=None, scale=None, bf16=True, show_pbar=False):
        from .app import _prior_percentile, estimate_scale
        from .linop import fourier_structure
        from .phase import apply_phase, resolve_phase
        from .prox import VDMDenoiser

        start = time.perf_counter()
        check_measurement("PnPVDMRecon", y, A)
        num_steps = DEFAULT_PNP["num_steps"] if num_steps is None else num_steps
        if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) \
                or num_steps < 1:
            raise ValueError(f"PnPVDMRecon: num_steps must be an int >= 1, got {num_steps!r}")
        l0 = DEFAULT_PNP["lamda_start"] if lamda_start is None else float(lamda_start)
        l1 = DEFAULT_PNP["lamda_end"] if lamda_end is None else float(lamda_end)
        if not (math.isfinite(l0) and math.isfinite(l1) and l0 > 0 and l1 > 0):
            raise ValueError(f"PnPVDMRecon: lamda_start and lamda_end must be finite and > 0, "
                             f"got {lamda_start!r}, {lamda_end!r}")
        structure = fourier_structure(A)
        A, phase = apply_phase(resolve_phase("PnPVDMRecon", phase, A), y, A)
        if sigma is None:
            sigma = 0.0
            if structure is not None and structure.maps is not None:
                from .noise import estimate_sigma
                sigma = estimate_sigma(y, A)
        self.device = sp.get_device(y)
        with self.device:
            if scale is None:
                # one scale per image for Fourier operators (each slice its own intensity)
                scale = estimate_scale(y, A, percentile=_prior_percentile(prior))
        s_arr = np.asarray(sp.to_device(scale) if hasattr(scale, "device") else scale,
                           dtype=np.float64)
        try:
            s_img = np.broadcast_to(s_arr, tuple(A.ishape[:-2]) + (1, 1))
        except ValueError:
            raise ValueError(f"PnPVDMRecon: scale must be a number or one per image, shape "
                             f"{tuple(A.ishape[:-2]) + (1, 1)}, got shape {s_arr.shape}") from None
        if not np.all(np.isfinite(s_img)) or not np.all(s_img > 0):
            raise ValueError(f"PnPVDMRecon: scale must be finite and > 0, got {scale!r}")
        self.scale = float(s_arr) if s_arr.ndim == 0 else s_img.copy()
        # per image: geometric from λ_start s² to max(λ_end s², σ²)
        s2 = s_img.reshape(s_img.shape[:-2]) ** 2
        start_, end_ = l0 * s2, np.maximum(l1 * s2, float(sigma) ** 2)
        frac = np.linspace(0.0, 1.0, int(num_steps))
        lamdas = [np.exp(np.log(start_) + f * (np.log(end_) - np.log(start_))) for f in frac]
        self.proxg = VDMDenoiser(A.ishape, prior, lamda=lamdas, scale=self.scale, mode="real",
                                 bf16=bf16)
        alpha = 1.0 if structure is not None else None
        self.A, self.y, self.phase, self.sigma = A, y, phase, float(sigma)
        self._lls = sp.app.LinearLeastSquares(A, y, proxg=self.proxg, max_iter=int(num_steps),
                                              alpha=alpha, show_pbar=False)
        self._setup = time.perf_counter() - start
        self.x = None
        super().__init__(self._lls.alg, show_pbar=show_pbar, leave_pbar=False,
                         record_time=False)

    def run(self):
        start = time.perf_counter()
        out = super().run()
        self.time = self._setup + time.perf_counter() - start
        self.nfe = self.proxg.nfe
        self.time_network = self.proxg.time_network
        self.time_other = self.time - self.time_network
        return out

    def _output(self):
        with self.device:
            self.x = self.device.xp.real(self._lls.x).astype(np.float32)
            return self.x
