"""``PnPVDMRecon``: plug-and-play reconstruction with the VDM denoiser inside a SigPy solver.

Each iteration is one data step and one call of the prior's one-step denoiser
:class:`mrirecon_vdm.prox.VDMDenoiser` D_σ (one network evaluation), with a geometric
schedule λ_k from ``lamda_start`` to ``lamda_end`` (relative to s², the squared intensity of
the image; σ_k² = λ_k). Two data steps (``data_step``):

``"prox"`` (half-quadratic splitting with an exact data step, DPIR's iteration;
:class:`HalfQuadraticSplitting`):

.. math::
    x_{k+1} = D_{\\sigma_k}\\big(\\mathrm{prox}(x_k;\\, y, v_k)\\big), \\qquad
    v_k = c\\,\\lambda_{k-1},

the real least-squares data step of :class:`mrirecon_vdm.alg.DataConsistency` (closed form
for single-coil Fourier sampling, batched warm-started CG with coil maps or a phase; with
σ = 0 the projection onto the data), c = ``prox_variance``.

``"gradient"`` (SigPy's proximal gradient, :class:`sigpy.app.LinearLeastSquares` with the
denoiser as ``proxg``; the step is 1/‖A‖², 1 for a recognised Fourier operator and a seeded
power iteration, :func:`mrirecon_vdm.linop.max_eig`, otherwise):

.. math::
    x_{k+1} = D_{\\sigma_k}\\big(x_k - \\alpha A^H (A x_k - y)\\big), \\qquad
    \\sigma_k^2 = \\lambda_k \\alpha.

``"auto"`` (the default) takes ``"prox"`` for a sampling mask, coil maps or a phase, and
``"gradient"`` for a single-coil centre crop without a phase (there the two steps differ
only on the crop's unpaired edge line) and for operators
:func:`mrirecon_vdm.linop.fourier_structure` does not recognise. Chosen on 11 slices of
the validation person (``docs/sampler.md``): the exact step gained +0.43 dB (Cartesian 4×)
and +0.61 dB (Poisson-disc 8×), and lost 0.17 / 0.06 dB on super-resolution 4× / 2×; a
gradient step of a real image moves only half-way on a line whose mirror line is not
sampled, and through a phase or coil maps it moves less still.

The image is real: the denoiser keeps the real part (``mode="real"``), and a phase φ
(``"auto"`` by default for coil maps, see :class:`mrirecon_vdm.app.GuidedVDMRecon`) goes
into the operator, ``A * Phase(φ)``. An estimated phase (``"auto"``) is refined at every
2nd iteration and before the final data step from the current image
(:func:`mrirecon_vdm.phase.refine_phase`): the exact data step through the
calibration-region estimate amplified its small error (20.8 dB instead of 35.1 dB on the
validation slices), and the refined phase brought it to 36.1 dB. With noisy
data the schedule stops at the noise the data step lets into the image, ρσ² (ρ the sampled
share of k-space, :func:`sampled_fraction`; λ ≥ ρσ²/s²), and the exact data step weighs
the denoiser's estimate with variance c λ, c = 16 (8 with coil maps): chosen on six
validation slices (``docs/sampler.md``, "The noise level in plug-and-play"), where a floor of σ²
with c = 4 made a user who passed the true σ lose 3.2 dB against half of it.

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

from .measurement import Measurement
from .progress import run_app

__all__ = ["PnPVDMRecon", "HalfQuadraticSplitting", "DEFAULT_PNP", "DEFAULT_PNP_COILS",
           "DATA_STEPS", "sampled_fraction"]

#: The defaults, chosen on the validation people (``docs/sampler.md``); ``dc_max_iter``
#: None is :data:`mrirecon_vdm.alg.DEFAULT_CG_ITER`.
DEFAULT_PNP = {"num_steps": 30, "lamda_start": 3e-2, "lamda_end": 1e-4, "data_step": "auto",
               "prox_variance": 16.0, "dc_max_iter": None, "min_lam": 1e-4,
               "flip_ensemble": False, "final_data_step": True}
#: What changes for an operator with coil maps (multi-coil, noisy: more steps, a higher
#: start of the schedule, more CG iterations per data step, a smaller c;
#: ``docs/sampler.md``).
DEFAULT_PNP_COILS = {"num_steps": 45, "lamda_start": 0.3, "dc_max_iter": 12,
                     "prox_variance": 8.0}
#: The final data step's variance in units of the last denoiser's λ_N (``final_data_step``):
#: the denoiser's image is closer to the truth than its input's noise level. Six validation
#: slices, noise 0.05: 1 / 0.25 / 0.0625 gave 32.61 / 32.85 / 32.84 dB (Cartesian 4×; 32.82
#: without the step) and 30.92 / 31.23 / 31.30 dB with a phase (31.33); 16 (the loop's c)
#: 29.89 and 28.55 dB.
FINAL_STEP_VARIANCE = 1.0 / 16
#: An estimated phase is refined before every ``PHASE_REFINE_EVERY``-th data step (and
#: before the final one). Every 2nd against every one, six slices of each validation
#: person, Cartesian 4× with a smooth phase: 37.22 / 36.00 against 37.16 / 35.95 dB, with
#: noise 0.05 31.28 / 31.20 against 31.30 / 31.16; 8 coils 30.10 against 30.07; every 3rd
#: 37.02 / 35.97 (``docs/sampler.md``).
PHASE_REFINE_EVERY = 2
#: CG iterations of each data step for one coil with a phase (``dc_max_iter`` None): on
#: the same cells 6 against 8 gave −0.03 / −0.02 dB noiseless and +0.03 / +0.01 dB with
#: noise (5: −0.06 / −0.03 and +0.06 / +0.03), for a quarter less CG time.
PHASE_CG_ITER = 6
#: How the data enter each iteration (``data_step``).
DATA_STEPS = ("auto", "prox", "gradient")


def _auto_data_step(structure, phase):
    """``"prox"`` for Fourier sampling with a mask, coil maps or a phase; ``"gradient"`` for a
    single-coil centre crop without a phase and for operators the package does not know."""
    if structure is None:
        return "gradient"
    if structure.crop is not None and structure.maps is None and structure.phase is None \
            and phase is None:
        return "gradient"
    return "prox"


def _resolve_refine_phase(refine_phase, measurement, data_step):
    """``refine_phase`` checked, None resolved: an estimated phase (``"auto"``) with the
    exact data step."""
    if refine_phase not in (None, True, False):
        raise ValueError(f"PnPVDMRecon: refine_phase must be None, True or False, got "
                         f"{refine_phase!r}")
    request = measurement.phase_request
    refine = (isinstance(request, str) and data_step == "prox" if refine_phase is None
              else refine_phase)
    if refine and request is None:
        raise ValueError("PnPVDMRecon: refine_phase=True needs a phase ('auto' or an "
                         "array); this reconstruction has none")
    if refine and data_step != "prox":
        raise ValueError("PnPVDMRecon: refine_phase needs the exact data step "
                         "(data_step='prox' or 'auto' with a Fourier operator)")
    return bool(refine)


class HalfQuadraticSplitting(sp.alg.Alg):
    """Half-quadratic splitting with an exact data step (the iteration of DPIR):

    .. math::
        x_{k+1} = D\\big(\\mathrm{prox}(x_k;\\, y, v_k)\\big), \\qquad x_0 = 0,

    the data step :meth:`mrirecon_vdm.alg.DataConsistency.prox` over real images (the
    projection onto the data when σ = 0 or v = None), then the denoiser ``denoiser(1, ·)``
    (a :class:`sigpy.prox.Prox`, e.g. :class:`mrirecon_vdm.prox.VDMDenoiser` with its
    schedule).

    Args:
        dc (DataConsistency): the data step, on the operator ``A`` (with its phase, if any).
        y (array): the measurement, ``A.oshape``.
        denoiser (sigpy.prox.Prox): the prior step, shape ``A.ishape``.
        variances (list): v_k per iteration, the last repeated (None: a projection; an
            array: one per image, ``A.ishape[:-2] + (1, 1)``).
        max_iter (int): iterations (denoiser calls).
        before_dc (callable or None): called with the current image before each data step
            after the first (e.g. a phase refinement,
            :meth:`mrirecon_vdm.alg.DataConsistency.refine_phase`), as the guided sampler's
            hook of the same name.

    Attributes:
        x (array): the current image (real).
    """

    def __init__(self, dc, y, denoiser, variances, max_iter, before_dc=None):
        self.dc, self.y, self.denoiser = dc, y, denoiser
        self.variances = list(variances) or [None]
        self.before_dc = before_dc
        device = sp.get_device(y)
        with device:
            self.x = device.xp.zeros(tuple(dc.ishape), dtype=np.float32)
        super().__init__(max_iter)

    def _update(self):
        device = sp.get_device(self.y)
        with device:
            v = self.variances[min(self.iter, len(self.variances) - 1)]
            if v is not None and np.ndim(v) > 0:
                v = sp.to_device(v, device)
            if self.before_dc is not None and self.iter > 0:
                self.before_dc(self.x)
            z = self.dc.prox(self.x[None], self.y, v)[0]
            self.x = self.denoiser(1.0, z)


def sampled_fraction(structure):
    """ρ, the share of the k-space grid an operator measures (the mean of its full mask; a
    crop's block over the grid), or 1 for an operator that is not recognised Fourier
    sampling. The noise a data step lets into a real image is about ρ σ² / 2 a pixel:
    complex noise of variance σ² on the measured share ρ of the frequencies, and half of it
    in the imaginary part that a real image drops."""
    if structure is None:
        return 1.0
    return float(np.mean(structure.full_mask(sp.cpu_device)))


class PnPVDMRecon(sp.app.App):
    """Plug-and-play reconstruction of a real (magnitude) image from ``y = A x + n``.

    Args:
        y (array): measurement, ``A.oshape``, complex (k-space).
        A (sigpy.linop.Linop): forward operator on real images ``(..., H, W)``.
        prior: the prior (protocol of ``docs/architecture.md``).
        num_steps (int or None): iterations = network calls; None: ``DEFAULT_PNP``
            (30), or ``DEFAULT_PNP_COILS`` (45) for an operator with coil maps.
        lamda_start, lamda_end (float): the schedule of λ_k / s² (geometric). None:
            ``DEFAULT_PNP`` (``lamda_start`` 0.03, ``lamda_end`` 1e-4), ``lamda_start`` 0.3
            with coil maps (``DEFAULT_PNP_COILS``).
        phase (None, str or array): as :class:`mrirecon_vdm.app.GuidedVDMRecon`.
        sigma (float or None): k-space noise std (of the complex noise, E|n|² = σ², the
            convention of :class:`mrirecon_vdm.noise.GaussianNoise`): pass the true level.
            The exact data step weighs the data by it, and the schedule stops at the noise
            the data step lets into the image, λ ≥ ``noise_floor`` σ² / s². None:
            :func:`mrirecon_vdm.noise.estimate_sigma` for every Fourier operator: with coil
            maps the misfit (noise and map error), for one coil with a phase the misfit
            capped by the high-pass noise bound (:func:`mrirecon_vdm.noise.highpass_sigma`),
            for one coil without a phase the anti-Hermitian part of the measured pairs
            (k, −k), exactly 0 for noiseless data; 0 for an operator that is not
            recognised Fourier sampling.
        noise_floor (float or None): the schedule's floor in units of σ²; None: ρ, the
            sampled share of k-space (:func:`sampled_fraction`; 1 for an operator that is
            not recognised Fourier sampling). Six validation slices, Cartesian 4× with
            k-space noise 0.05 and the true σ: floor σ² with c = 4 29.59 dB, ρ σ² with
            c = 16 32.82 dB (``docs/sampler.md``).
        scale (float, array or None): image intensity s, a number or one per image
            (``A.ishape[:-2] + (1, 1)``); None: :func:`mrirecon_vdm.intensity.estimate_scale` (one
            per image for Fourier operators, as the guided sampler): every slice of a stack
            then gets its own noise schedule, all slices in the same network calls.
        data_step (str or None): ``"auto"`` (None), ``"prox"`` or ``"gradient"`` (module
            docstring).
        prox_variance (float or None): c > 0 of the exact data step, v_k = c λ_{k−1} (only
            matters with noise, σ > 0); None: ``DEFAULT_PNP`` (16), 8 with coil maps
            (``DEFAULT_PNP_COILS``).
        refine_phase (bool or None): refine the phase before every
            :data:`PHASE_REFINE_EVERY`-th data step and the final one (exact data step
            only); None: yes when ``phase`` is ``"auto"`` and the data step is exact.
        dc_max_iter (int or None): CG iterations of each exact data step (coil maps, a
            phase); None: :data:`PHASE_CG_ITER` (6) for one coil with a phase, 12 with coil
            maps (``DEFAULT_PNP_COILS``), else :data:`mrirecon_vdm.alg.DEFAULT_CG_ITER`.
        min_lam (float or None): the Tikhonov floor of the exact data step's CG
            (:class:`mrirecon_vdm.alg.DataConsistency`); None: ``DEFAULT_PNP`` (1e-4).
        bf16 (bool): bfloat16 autocast for the network where the device runs it fast,
            float32 elsewhere (:func:`mrirecon_vdm.precision.fast_bf16`); False: float32.
        flip_ensemble (bool or None): the denoiser averages its predictions for the image
            and its left-right mirror image (:class:`mrirecon_vdm.prox.VDMDenoiser`; two
            network images per step). None: ``DEFAULT_PNP`` (off: it gained +0.06 dB on
            super-resolution 4× and +0.20 / −0.04 dB with 8 coils on the two validation
            people, for twice the network time; ``docs/sampler.md``).
        final_data_step (bool or None): end with one more data step after the last
            denoiser, with variance max(λ_N / 16, f s²) attached to its image (λ_N the last
            denoiser's level, :data:`FINAL_STEP_VARIANCE`; f the guided sampler's floor,
            :data:`mrirecon_vdm.alg.DEFAULT_DC_VARIANCE_FLOOR`): noiseless data are then
            reproduced exactly, noisy ones weighed against that small variance. None:
            ``DEFAULT_PNP`` (on: on six validation slices +0.11 dB
            Cartesian 4×, +0.23 dB Poisson 8×, +0.10 dB with a phase, ±0.03 dB with noise
            or coil maps; ``docs/sampler.md``).
        show_pbar (bool): show the progress (default True, as SigPy's Apps): a bar on a
            terminal, one line per update in a log (:mod:`mrirecon_vdm.progress`).

    The defaults with coil maps come from 8 noisy coils at 8× (ESPIRiT maps) on 11 + 12
    slices of the two validation people (``docs/sampler.md``): the schedule's start 0.3
    (+0.40 dB over 0.03 on the first person; single-coil undersampling did not gain from a
    higher start), then 45 steps (+0.22 / +0.19 dB over 30; 60 steps +0.30 / +0.28 dB at
    twice the time) with 12 CG iterations (a further +0.10 / +0.22 dB).

    Attributes (after ``run()``): ``x`` (real, ``A.ishape``), ``data_step`` (``"prox"`` or
    ``"gradient"``), ``phase`` (radians, the refined one when refined; None without),
    ``nfe`` (network evaluations per image: steps, twice that with ``flip_ensemble``),
    ``flip_ensemble``, ``time`` (set-up and run, seconds), ``time_network`` (inside the
    network), ``time_other`` (the rest); from the set-up, ``measurement``
    (:class:`mrirecon_vdm.measurement.Measurement`, raw units), ``A`` (with the phase),
    ``y``, ``sigma``, ``scale``, ``dc`` (the exact data step, None with ``"gradient"``).
    """

    def __init__(self, y, A, prior, num_steps=None, lamda_start=None, lamda_end=None,
                 phase=None, sigma=None, scale=None, data_step=None, prox_variance=None,
                 refine_phase=None, dc_max_iter=None, min_lam=None, bf16=True,
                 flip_ensemble=None, noise_floor=None, final_data_step=None, show_pbar=True):
        from .alg import DEFAULT_DC_VARIANCE_FLOOR
        from .intensity import prior_percentile
        from .linop import max_eig
        from .prox import VDMDenoiser

        start = time.perf_counter()
        # -- checks before any work: y, A, σ, scale and the phase request, then the options
        meas = Measurement("PnPVDMRecon", y, A, phase=phase, sigma=sigma, scale=scale,
                           per_image_scale=True, complex_y=True)
        defaults = dict(DEFAULT_PNP)
        if meas.coils:
            defaults.update(DEFAULT_PNP_COILS)
        if num_steps is None:
            num_steps = defaults["num_steps"]
        if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) \
                or num_steps < 1:
            raise ValueError(f"PnPVDMRecon: num_steps must be an int >= 1, got {num_steps!r}")
        l0 = defaults["lamda_start"] if lamda_start is None else float(lamda_start)
        l1 = DEFAULT_PNP["lamda_end"] if lamda_end is None else float(lamda_end)
        if not (math.isfinite(l0) and math.isfinite(l1) and l0 > 0 and l1 > 0):
            raise ValueError(f"PnPVDMRecon: lamda_start and lamda_end must be finite and > 0, "
                             f"got {lamda_start!r}, {lamda_end!r}")
        data_step = DEFAULT_PNP["data_step"] if data_step is None else data_step
        if data_step not in DATA_STEPS:
            raise ValueError(f"PnPVDMRecon: data_step must be one of {DATA_STEPS}, got "
                             f"{data_step!r}")
        c = defaults["prox_variance"] if prox_variance is None else prox_variance
        if isinstance(c, bool) or not isinstance(c, (int, float, np.number)) \
                or not math.isfinite(c) or c <= 0:
            raise ValueError(f"PnPVDMRecon: prox_variance must be a finite number > 0, got "
                             f"{prox_variance!r}")
        if final_data_step is None:
            final_data_step = DEFAULT_PNP["final_data_step"]
        if not isinstance(final_data_step, (bool, np.bool_)):
            raise ValueError(f"PnPVDMRecon: final_data_step must be None, True or False, got "
                             f"{final_data_step!r}")
        if data_step == "auto":
            data_step = _auto_data_step(meas.structure, meas.phase_request)
        refine = _resolve_refine_phase(refine_phase, meas, data_step)
        if noise_floor is None:
            noise_floor = sampled_fraction(meas.structure)
        if isinstance(noise_floor, bool) or not isinstance(noise_floor, (int, float, np.number)) \
                or not math.isfinite(noise_floor) or noise_floor < 0:
            raise ValueError(f"PnPVDMRecon: noise_floor must be a finite number >= 0 or None, "
                             f"got {noise_floor!r}")
        if flip_ensemble is None:
            flip_ensemble = defaults["flip_ensemble"]
        if flip_ensemble not in (True, False):
            raise ValueError(f"PnPVDMRecon: flip_ensemble must be None, True or False, got "
                             f"{flip_ensemble!r}")
        min_lam = DEFAULT_PNP["min_lam"] if min_lam is None else min_lam

        # -- the measurement in raw units: phase, σ̂, the scale (one per image for Fourier
        # operators: every slice of a stack its own noise schedule)
        self.measurement = meas.set_up(prior_percentile(prior))
        self.device, self.A, self.y = meas.device, meas.A, meas.y
        self.scale = meas.image_scale
        self.noise_floor = float(noise_floor)
        per_image = tuple(self.A.ishape[:-2]) + (1, 1)
        # per image: geometric from λ_start s² to max(λ_end s², noise_floor σ²)
        s_img = np.broadcast_to(np.asarray(self.scale, dtype=np.float64), per_image)
        s2 = s_img.reshape(s_img.shape[:-2]) ** 2
        start_, end_ = l0 * s2, np.maximum(l1 * s2, self.noise_floor * self.sigma ** 2)
        frac = np.linspace(0.0, 1.0, int(num_steps))
        lamdas = [np.exp(np.log(start_) + f * (np.log(end_) - np.log(start_))) for f in frac]
        self.flip_ensemble = bool(flip_ensemble)
        self.proxg = VDMDenoiser(self.A.ishape, prior, lamda=lamdas, scale=self.scale,
                                 mode="real", bf16=bf16, flip_ensemble=self.flip_ensemble)

        # -- the iteration
        self.data_step = data_step
        self.refine_phase = refine
        self._lls = self.dc = before_dc = None
        if data_step == "gradient":
            alpha = 1.0 if meas.structure is not None else 1.0 / max_eig(
                self.A, dtype=self.y.dtype, device=self.device)
            self._lls = sp.app.LinearLeastSquares(self.A, self.y, proxg=self.proxg,
                                                  max_iter=int(num_steps), alpha=alpha,
                                                  show_pbar=False)
            alg = self._lls.alg
        else:
            self.dc = meas.data_consistency(
                False, max_iter=defaults["dc_max_iter"] if dc_max_iter is None else dc_max_iter,
                phase_max_iter=PHASE_CG_ITER, min_lam=min_lam)
            # v_k = c λ_{k-1}: the variance of the previous denoiser's input noise
            variances = [None] + [(float(c) * np.reshape(lam, per_image)).astype(np.float32)
                                  for lam in lamdas[:-1]]
            if refine:
                before_dc = meas.phase_refiner(self.dc, False, PHASE_REFINE_EVERY)
            alg = HalfQuadraticSplitting(self.dc, self.y, self.proxg, variances,
                                         int(num_steps), before_dc=before_dc)
        self.final_data_step = bool(final_data_step)
        self._final = None
        if self.final_data_step:
            dc = self.dc if self.dc is not None else meas.data_consistency(False,
                                                                           min_lam=min_lam)
            v = np.maximum(FINAL_STEP_VARIANCE * lamdas[-1], DEFAULT_DC_VARIANCE_FLOOR * s2)
            if dc.structure is None:   # one number for an operator that is not recognised
                v = float(np.max(v))
            else:                      # one per image
                v = np.reshape(v, per_image).astype(np.float32)
            self._final = (dc, v, before_dc)
        self._alg = alg
        self._setup = time.perf_counter() - start
        self.x = None
        super().__init__(alg, show_pbar=show_pbar, leave_pbar=False, record_time=False)

    @property
    def sigma(self):
        """σ: the value given, or the estimate (units of y)."""
        return self.measurement.sigma

    @property
    def complex_image(self):
        """``x · e^{iφ}`` (complex64; ``x`` itself without a phase), after :meth:`run`."""
        if self.x is None:
            return None
        return self.measurement.complex_image(self.x)

    @property
    def phase(self):
        """The phase in radians (refined when refined), or None."""
        return self.measurement.phase

    def run(self):
        start = time.perf_counter()
        out = run_app(self)
        self.time = self._setup + time.perf_counter() - start
        # network evaluations per image: the mirror image of the ensemble counts
        self.nfe = self.proxg.nfe * (2 if self.flip_ensemble else 1)
        self.time_network = self.proxg.time_network
        self.time_other = self.time - self.time_network
        return out

    def _output(self):
        with self.device:
            x = self._lls.x if self._lls is not None else self._alg.x
            x = self.device.xp.real(x).astype(np.float32)
            if self._final is not None:
                # one more data step, variance max(λ_N / 16, f s²) (the phase refined
                # first, as in the loop)
                dc, v, before_dc = self._final
                if before_dc is not None:
                    before_dc(x, final=True)
                if not isinstance(v, float):
                    v = sp.to_device(v, self.device)
                x = dc.prox(x[None], self.y, v)[0]
            self.x = x
            return self.x
