"""``GuidedVDMRecon``: super-resolution (or any linear inverse problem) with a VDM prior.

The App does the wiring around :class:`mrirecon_vdm.alg.GuidedVDM`: input checks, the
measurement set-up (:class:`mrirecon_vdm.measurement.Measurement`: the data on the device
once, the phase, the intensity scale, σ̂, the data step and the phase refinement), the
network callable (torch, batched, optional bf16 autocast), the seeded noise, the progress
bar, the timings and the output (posterior mean, per-pixel standard deviation, samples).

References:
    Jiang, Y., Gao, Y., Sun, H. (2023). MR image super-resolution via a variational
    diffusion model. Proc. Intl. Soc. Mag. Reson. Med. 31 (ISMRM 2023), abstract 0163.

    Song, Y., Shen, L., Xing, L., Ermon, S. (2022). Solving inverse problems in medical
    imaging with score-based generative models. ICLR 2022. arXiv:2111.08005.

    Kingma, D. P., Salimans, T., Poole, B., Ho, J. (2021). Variational diffusion models.
    NeurIPS 34, 21696–21707. arXiv:2107.00630.
"""
import contextlib
import time

import numpy as np
import sigpy as sp

from ._checks import check_in_range, check_seed, is_int
from .alg import (DC_VARIANCES, DEFAULT_DC_VARIANCE_FLOOR, DEFAULT_NUM_STEPS, SAMPLERS,
                  TIME_GRIDS, GuidedVDM, resolve_renoise)
from .backend import from_torch, to_torch
from .intensity import estimate_scale, prior_percentile
from .linop import CropFourier
from .measurement import Measurement
from .padding import predict_eps
from .progress import run_app

__all__ = ["GuidedVDMRecon", "estimate_scale", "DEFAULT_BATCH_SIZE", "PHASE_REFINE_EVERY",
           "PHASE_SIGMA_EVERY", "PHASE_CG_ITER"]

#: Images per network call on the CPU when ``batch_size=None`` (``benchmarks/batching.py``,
#: ``docs/results.md``): on the 2-core machine, one torch thread, the time per image is
#: lowest at 4 images per call (0.90x of one image per call) and grows for larger calls
#: (1.12x at 16, 1.45x at 64); on a GPU None means all at once (not measured here).
DEFAULT_BATCH_SIZE = 4


class GuidedVDMRecon(sp.app.App):
    """k-space-guided VDM reconstruction of a real image x from ``y = A x + n``.

    .. math::
        x \\sim p_\\theta(x \\mid y) \\propto p_\\theta(x)\\, \\mathcal{CN}(y; A x, \\sigma^2 I),
        \\qquad \\hat x = \\frac{1}{K}\\sum_{k=1}^K x^{(k)}

    with the VDM prior p_θ and one of the samplers of :class:`mrirecon_vdm.alg.GuidedVDM`.
    For super-resolution ``A = CropFourier((N1, N2), (m1, m2))`` and y the low-resolution
    k-space (see :func:`mrirecon_vdm.linop.lowres_image_to_kspace` for an LR *image*).

    Intensities: the prior was trained on slices with maximum ≈ 1; the App divides y (and
    σ) by ``scale`` (default :func:`estimate_scale`, per image for CropFourier), samples in
    the prior's units and multiplies back.

    Real images: the prior models real magnitude images; every data-consistency step is
    solved over real images (exactly, including the outermost row/column of an even-sized
    centre crop, whose Hermitian partner is not measured), so the output is real.

    Args:
        y (array): measurement, shape ``A.oshape`` (complex k-space), numpy or cupy.
        A (sigpy.linop.Linop): forward operator on real images ``(..., H, W)``; leading
            axes of ``A.ishape`` (slices) are reconstructed in the same network calls.
        prior: an object with the prior protocol (``docs/architecture.md``):
            ``gamma(t)``, ``predict_eps(z, t)``, ``image_channels``, ``downsample_factor``;
            e.g. :func:`mrirecon_vdm.load_pretrained` or
            :class:`mrirecon_vdm.gaussian_prior.GaussianPrior`. A ``torch.nn.Module`` prior
            must already be on the torch device matching ``device``.
        lamda (float): λ ∈ [0, 1], the weight of the data (1: hard consistency, 0: ignore y).
        num_steps (int or None): network evaluations (default 1000 for "paper", 50 for
            "fast").
        sampler (str): ``"fast"`` (x̂₀ data consistency + renoising) or ``"paper"`` (the
            abstract's ancestral sampler with measurement mixing).
        num_samples (int): K posterior samples, drawn in the same network calls; the output
            is their mean, with ``.std`` and ``.samples``.
        phase (None, str or array): the image phase φ. ``"none"``: the image is real;
            an array (radians, broadcastable to ``A.ishape``): a known phase, the magnitude
            is reconstructed through ``A * Phase(A.ishape, φ)``; ``"auto"``: φ estimated from
            the fully sampled k-space centre (:func:`mrirecon_vdm.phase.estimate_phase`;
            needs a Fourier sampling operator with a calibration region). None (default):
            ``"auto"`` for operators with coil maps and no phase of their own (ESPIRiT maps
            carry an arbitrary phase, so the image in their frame is complex even for a real
            object), ``"none"`` otherwise. ``.complex_image`` holds x·e^{iφ}.
        sigma (float or None): k-space noise std σ (units of y). None: the level the data
            show against the model, :func:`mrirecon_vdm.noise.estimate_sigma`: for
            single-coil operators without a phase the anti-Hermitian part of the measured
            pairs (k, −k), which a real image does not have (exactly 0 for noiseless data,
            so hard data consistency, the paper's choice); with coil maps or a phase the
            misfit (noise plus the error of estimated maps or phase, which hard consistency
            would amplify). Pass σ when it is known (e.g. from a noise scan). Used by the
            fast sampler only; ``.sigma`` holds the value used.
        renoise (str or None): how the fast sampler goes from the data-consistent x̂₀′ to
            the next noise level. ``"fresh"`` (None, the default): the forward process
            z_s = α_s x̂₀′ + σ_s ε with all of the noise new; ``"ddim"``: DDIM's step,
            which keeps the implied noise ε̂′ (with η).
            With the shipped prior fresh renoising gains +0.6 dB (4x) and +0.9 dB (2x) for
            the mean of 4 on the validation person and several dB on undersampled k-space
            (``docs/sampler.md``, "Fresh renoising"). Not used by the paper sampler.
        eta (float or None): η ∈ [0, 1], DDIM stochasticity (0 deterministic, 1 ancestral;
            None: 1). Only with ``renoise="ddim"``: an η other than 1 with fresh renoising,
            which has no η, is an error rather than ignored.
        time_grid (str or None): one of ``"uniform"``, ``"logsnr"``, ``"karras"`` (default:
            uniform for "paper", logsnr for "fast").
        t_start (float): first time, in (0, 1]; below 1 the sampler starts from the noised
            minimum-norm consistent image A⁺y (a warm start; the zero-filled image for
            CropFourier), or from ``x_init``, instead of pure noise.
        x_init (array or None): the warm start's image for ``t_start`` < 1 (real,
            ``A.ishape``, intensity units), e.g. a :class:`mrirecon_vdm.pnp.PnPVDMRecon`
            reconstruction; None: A⁺y.
        dc_variance (str): the variance attached to x̂₀ in the fast sampler's noisy data
            consistency: ``"flat"`` (σ_t²/α_t²) or ``"unit"`` (σ_t²).
        dc_variance_floor (float or None): the smallest variance attached to x̂₀ (units of
            the image over ``scale``): late in the sampler σ_t²/α_t² goes to 0 while x̂₀
            still carries the error of the whole trajectory, and with σ > 0 the data would
            stop counting. None: :data:`DEFAULT_DC_VARIANCE_FLOOR`. No effect with σ = 0.
        scale (float, array or None): intensity scale (None: :func:`estimate_scale`); an
            array must broadcast against both ``A.ishape`` and ``A.oshape`` (e.g. one value
            per slice, shape ``(S, 1, 1)``).
        seed (int or None): seed of the torch generator of all the noise; same seed, same
            output. None draws fresh entropy. Nothing is seeded globally.
        device (sigpy.Device or int): where to compute (-1 CPU, else a GPU id).
        batch_size (int, "all" or None): images per network call. None (default):
            :data:`DEFAULT_BATCH_SIZE` (4) on the CPU, where the time per image grows with
            larger calls (measured: 1.45x at 64 images per call against 1, one thread), and
            all K × slices at once on a GPU; ``"all"``: all at once.
        bf16 (bool): run the network under bfloat16 autocast (default) where the device
            runs it fast (:func:`mrirecon_vdm.precision.fast_bf16`: a GPU with bfloat16, a CPU
            with AVX-512 or ARM bf16), in float32 elsewhere; False: float32. On a 2-core
            AVX-512 CPU bfloat16 was 1.8x faster than float32 with the same PSNR/SSIM to two
            decimals (shipped prior, 4x, 4 held-out slices); on an AVX2-only CPU it would be
            about 120x slower. Data consistency stays in float32. The choice made is
            ``self.bf16``.
        dc_max_iter (int or None), dc_tol (float): CG iterations and relative tolerance of
            the data consistency for operators without a closed form (None: 8 warm-started
            iterations for Fourier operators with coil maps, :data:`PHASE_CG_ITER` (4) for
            one coil with a phase, 50 for operators the package does not recognise; see
            :class:`mrirecon_vdm.alg.DataConsistency`).
        slice_correlation (float): ρ ∈ [0, 1], the correlation of the sampler noise of
            neighbouring slices along the first axis of ``A.ishape`` before the image axes
            (:mod:`mrirecon_vdm.slice_noise`: every noise draw is AR(1) along that axis,
            each slice's noise still N(0, I)), so that one sample is consistent from slice
            to slice. Default 0 (independent), right for slices that are not neighbours;
            :func:`mrirecon_vdm.volume.reconstruct_volume` sets it for volumes. No effect
            without a slice axis.
        preceding_noise (callable or None): ``preceding_noise(shape)`` -> the noise of the
            slice before the first one, ``(K, *ishape[1:])``, for each draw of shape
            ``shape``: how :func:`~mrirecon_vdm.volume.reconstruct_volume` continues the
            chain across runs (:class:`mrirecon_vdm.slice_noise.PrecedingRuns`).
        calibration ("auto", None or float): the factor c in ``std = c · std_raw``
            (:mod:`mrirecon_vdm.calibration`). ``"auto"`` (default): the factor stored for
            this prior's weights, sampler, operator family (a 4x centre crop) and K (4 or
            8) in ``mrirecon_vdm/uncertainty_calibration.json``, else none; None: no factor
            (``std`` is the raw spread); a number: that factor.
        refine_phase (bool or None): refine the phase at every
            :data:`PHASE_REFINE_EVERY`-th step (4) of the fast sampler
            from the mean of the samples' x̂₀ (:func:`mrirecon_vdm.phase.refine_phase`, as
            plug-and-play does) and, when σ is not given, re-estimate σ against the refined
            phase. None (default): yes for an estimated phase (``"auto"``) of a single coil
            with the fast sampler; no for a given phase and with coil maps. On 11
            validation slices, mean of 4: Cartesian 4× with a smooth phase 31.70 dB against
            31.17 dB without; 8 coils, Cartesian 8× (ESPIRiT maps, phase ``"auto"`` by
            default) 28.31 against 28.32 dB, for 5–8 % more time. On five (one sample) 29.55
            against 29.03 dB (29.74 dB for the same masks without a phase). Keeping σ = 0
            instead gained more there (30.01 dB) but went far off on a 16 × 16
            Gaussian-prior test whose phase the refinement could not pin down
            (``docs/sampler.md``). ``.phase`` is then the refined phase, ``.sigma`` the last
            estimate.
        show_pbar (bool), leave_pbar (bool): the tqdm progress bar.

    Attributes (after ``run()``):
        x (array): the reconstruction, ``A.ishape``, real, on ``device``.
        complex_image (array): ``x · e^{iφ}`` (complex; ``x`` itself without a phase).
        phase (array or None): φ (radians, ``A.ishape``) that was used.
        samples (array): (K, *A.ishape) the posterior samples (original units).
        std_raw (array or None): per-pixel standard deviation of the K samples (ddof 1;
            K ≥ 2), the spread of the samples.
        std (array or None): the uncertainty of ``x``: ``calibration · std_raw``, an
            estimate of the standard deviation of the error of ``x`` (the mean of the K
            samples), so that ``x ± 1.96 std`` covers the truth on about 95 % of pixels
            (measured on head pixels; ``docs/results.md``). Without a calibration factor
            (``calibration`` None) it equals ``std_raw``, which is too small (coverage far
            below 95 %).
        calibration (float or None): the factor that was applied.
        nfe (int): network evaluations per image, all samples included (``num_samples`` x
            the steps: the convention of the benchmark and of :class:`PnPVDMRecon`).
        network_calls (int): calls of the network (the samples of an image go through it
            in the same batched calls: one per step).
        time (float): wall time of ``run()`` in seconds; ``time_network`` the part inside
            the network, ``time_other`` the rest.
        scale (array): the intensity scale that was used.
        measurement (Measurement): the set-up of y and A
            (:class:`mrirecon_vdm.measurement.Measurement`), in the sampler's units
            (``y`` is ``measurement.y_scaled``).

    Raises:
        ValueError: y.shape != A.oshape, real y for a Fourier sampling operator (an image
            passed as k-space?), a bad phase, λ or η outside [0, 1], num_steps < 1, an unknown
            sampler or time grid, a prior whose downsample factor does not divide the image
            size or whose channels do not match, non-finite y, num_samples < 1, σ < 0.

    References:
        Jiang, Y., Gao, Y., Sun, H. (2023). MR image super-resolution via a variational
        diffusion model. Proc. ISMRM 31, abstract 0163.

        Song, Y., Shen, L., Xing, L., Ermon, S. (2022). Solving inverse problems in medical
        imaging with score-based generative models. ICLR 2022. arXiv:2111.08005.
    """

    def __init__(self, y, A, prior, lamda=1.0, num_steps=None, sampler="fast", num_samples=1,
                 sigma=None, eta=None, time_grid=None, t_start=1.0, x_init=None,
                 dc_variance="flat", dc_variance_floor=None,
                 scale=None, seed=None, device=sp.cpu_device, batch_size=None, bf16=True,
                 dc_max_iter=None, dc_tol=1e-6, phase=None, slice_correlation=0.0,
                 preceding_noise=None, calibration="auto", refine_phase=None, show_pbar=True,
                 leave_pbar=True, renoise=None):
        # -- checks before any work
        if sampler not in SAMPLERS:
            raise ValueError(f"GuidedVDMRecon: sampler must be one of {SAMPLERS}, got {sampler!r}")
        if time_grid is not None and time_grid not in TIME_GRIDS:
            raise ValueError(f"GuidedVDMRecon: time_grid must be one of {TIME_GRIDS}, got "
                             f"{time_grid!r}")
        if dc_variance not in DC_VARIANCES:
            raise ValueError(f"GuidedVDMRecon: dc_variance must be one of {DC_VARIANCES}, got "
                             f"{dc_variance!r}")
        if dc_variance_floor is not None and (
                isinstance(dc_variance_floor, bool)
                or not isinstance(dc_variance_floor, (int, float, np.number))
                or not (np.isfinite(dc_variance_floor) and dc_variance_floor >= 0)):
            raise ValueError(f"GuidedVDMRecon: dc_variance_floor must be None or a finite "
                             f"number >= 0, got {dc_variance_floor!r}")
        # y, A, σ, scale and the phase request; k-space must be complex for Fourier
        # operators, other operators may be real
        meas = Measurement("GuidedVDMRecon", y, A, phase=phase, sigma=sigma, scale=scale)
        if dc_max_iter is not None and (not is_int(dc_max_iter) or dc_max_iter < 1):
            raise ValueError(f"GuidedVDMRecon: dc_max_iter must be None or an integer >= 1, "
                             f"got {dc_max_iter!r}")
        check_in_range("GuidedVDMRecon lamda", lamda, 0.0, 1.0)
        if not is_int(num_samples) or num_samples < 1:
            raise ValueError(f"GuidedVDMRecon: num_samples must be an integer >= 1, got "
                             f"{num_samples!r}")
        renoise, eta = resolve_renoise("GuidedVDMRecon", sampler, renoise, eta)
        num_steps = DEFAULT_NUM_STEPS[sampler] if num_steps is None else num_steps
        if not is_int(num_steps) or num_steps < 1:
            raise ValueError(f"GuidedVDMRecon: num_steps must be an integer >= 1, got "
                             f"{num_steps!r}")
        if batch_size not in (None, "all") and (not is_int(batch_size) or batch_size < 1):
            raise ValueError(f"GuidedVDMRecon: batch_size must be None, 'all' or an integer "
                             f">= 1, got {batch_size!r}")
        if not (isinstance(slice_correlation, (int, float, np.integer, np.floating))
                and not isinstance(slice_correlation, bool) and 0 <= slice_correlation <= 1):
            raise ValueError(f"GuidedVDMRecon: slice_correlation must be a number in [0, 1], "
                             f"got {slice_correlation!r}")
        if preceding_noise is not None and not callable(preceding_noise):
            raise ValueError(f"GuidedVDMRecon: preceding_noise must be None or a callable "
                             f"shape -> array, got {type(preceding_noise).__name__}")
        from .calibration import check_calibration
        check_calibration("GuidedVDMRecon calibration", calibration)
        if not 0.0 < t_start <= 1.0:
            raise ValueError(f"GuidedVDMRecon: t_start must be in (0, 1], got {t_start!r}")
        if x_init is not None and t_start >= 1.0:
            raise ValueError("GuidedVDMRecon: x_init is the warm start of t_start < 1; got "
                             f"t_start={t_start!r}")
        check_seed("GuidedVDMRecon seed", seed)
        self.refine_phase = _resolve_refine_phase(refine_phase, meas, sampler)
        self.image_shape, self.channels = _check_prior(prior, A)
        self.device = sp.Device(device)
        self._torch, self.torch_device = _torch_device(prior, self.device)

        # -- the measurement on the device, once: phase, scale, σ̂, the data step
        self.measurement = meas.set_up(prior_percentile(prior), self.device, single=True)
        # .phase: the phase as set up; run() replaces it by the refined one when refined
        self.A, self.y, self.scale, self.phase = meas.A, meas.y_scaled, meas.scale, meas.phase
        self.dc = meas.data_consistency(True, max_iter=dc_max_iter, phase_max_iter=PHASE_CG_ITER,
                                        tol=dc_tol)
        before_dc = None
        if self.refine_phase:
            before_dc = meas.phase_refiner(self.dc, True, PHASE_REFINE_EVERY,
                                           sigma_every=PHASE_SIGMA_EVERY, batched=True)

        # -- the sampler
        self.prior = prior
        self.num_samples = int(num_samples)
        if batch_size is None:
            batch_size = DEFAULT_BATCH_SIZE if self.device.id < 0 else "all"
        self.batch_size = None if batch_size == "all" else int(batch_size)
        # the slice axis of the state (K, *A.ishape): the first axis before the image axes
        n_lead = len(A.ishape) - 2 - (1 if self.channels > 1 else 0)
        self.slice_correlation = float(slice_correlation) if n_lead >= 1 else 0.0
        self.preceding_noise = preceding_noise if n_lead >= 1 else None
        self.calibration_request = calibration
        self.renoise = renoise
        self._sampler = sampler
        from .precision import use_bf16
        self.bf16 = use_bf16(bf16, self.torch_device, "GuidedVDMRecon: bf16")
        self.seed = seed
        self.generator = self._torch.Generator(device=self.torch_device)
        if seed is not None:
            self.generator.manual_seed(int(seed))
        else:
            self.generator.seed()
        self.time_network = 0.0
        shape = (self.num_samples,) + tuple(A.ishape)
        alg = GuidedVDM(self._denoise, self._gamma, self.y, self.dc, shape, sampler=sampler,
                        num_steps=int(num_steps), lamda=lamda, eta=eta, time_grid=time_grid,
                        t_start=t_start, dc_variance=dc_variance, randn=self._randn,
                        dc_variance_floor=DEFAULT_DC_VARIANCE_FLOOR if dc_variance_floor is None
                        else dc_variance_floor,
                        dtype=np.float32, before_dc=before_dc,
                        x_init=self._x_init(x_init, A), renoise=renoise)
        self.x = self.samples = self.std = self.std_raw = self.complex_image = None
        self.calibration = None
        super().__init__(alg, show_pbar=show_pbar, leave_pbar=leave_pbar, record_time=False)

    @property
    def sigma(self):
        """σ̂ in units of y: the value given, or the last estimate (re-estimated against the
        refined phase during ``run()`` when the phase is refined)."""
        return self.measurement.sigma

    def _x_init(self, x_init, A):
        """The warm-start image in the sampler's units (divided by the scale), or None."""
        if x_init is None:
            return None
        with self.device:
            xp = self.device.xp
            x = sp.to_device(x_init, self.device)
            if np.iscomplexobj(x) or tuple(x.shape) != tuple(A.ishape):
                raise ValueError(f"GuidedVDMRecon: x_init must be a real image of shape "
                                 f"{tuple(A.ishape)}, got {x.dtype} of shape {tuple(x.shape)}")
            if not bool(xp.all(xp.isfinite(x))):
                raise ValueError("GuidedVDMRecon: x_init has NaN or infinite values")
            return (x / self.scale).astype(np.float32, copy=False)

    # ------------------------------------------------------------ callables
    def _randn(self, shape):
        """Standard normals for one noise draw of the sampler: independent, or AR(1) along
        the slice axis with ``slice_correlation`` (:mod:`mrirecon_vdm.slice_noise`)."""
        torch = self._torch
        t = torch.randn(tuple(shape), generator=self.generator, device=self.torch_device,
                        dtype=torch.float32)
        if self.slice_correlation > 0 or self.preceding_noise is not None:
            from .slice_noise import ar1_slices
            prev = None
            if self.preceding_noise is not None:
                prev = self.preceding_noise(tuple(shape))
                prev = None if prev is None else to_torch(prev).to(t.device, t.dtype)
            t = ar1_slices(t, self.slice_correlation, previous=prev)
        return from_torch(t)

    def _gamma(self, t):
        """γ(t) of the prior, float64 numpy (:func:`mrirecon_vdm.gamma_cache.prior_gamma`:
        the time grid is computed once per prior state, not once per slice)."""
        from .gamma_cache import prior_gamma
        return prior_gamma(self.prior, t, self.torch_device)

    def _autocast(self):
        if not self.bf16:
            return contextlib.nullcontext()
        return self._torch.autocast(self.torch_device.type, dtype=self._torch.bfloat16)

    def _denoise(self, z, t):
        """ε̂_θ(z_t; t) for the state z (K, *ishape): reshaped to (B, C, H, W) images."""
        torch = self._torch
        start = time.perf_counter()
        zt = to_torch(z)
        imgs = zt.reshape((-1, self.channels) + self.image_shape)
        n = imgs.shape[0]
        bs = n if self.batch_size is None else self.batch_size
        out = torch.empty_like(imgs)
        tt = torch.full((min(bs, n),), float(t), device=imgs.device, dtype=torch.float32)
        with torch.inference_mode(), self._autocast():
            for i in range(0, n, bs):
                chunk = imgs[i:i + bs]
                out[i:i + bs] = predict_eps(self.prior, chunk,
                                            tt[:chunk.shape[0]]).to(out.dtype)
        if out.device.type == "cuda":
            torch.cuda.synchronize(out.device)
        self.time_network += time.perf_counter() - start
        return from_torch(out.reshape(zt.shape))

    # ------------------------------------------------------------ run
    @contextlib.contextmanager
    def _eval_mode(self):
        torch = self._torch
        module = self.prior if isinstance(self.prior, torch.nn.Module) else None
        was_training = module.training if module is not None else False
        if module is not None:
            module.eval()
        try:
            yield
        finally:
            if module is not None and was_training:
                module.train()

    def run(self):
        """Run the sampler; returns the reconstruction ``x`` (``A.ishape``, real)."""
        start = time.perf_counter()
        with self._eval_mode():
            out = run_app(self)
        self.time = time.perf_counter() - start
        self.time_other = self.time - self.time_network
        self.network_calls = self.alg.nfe
        self.nfe = self.alg.nfe * self.num_samples
        return out

    def _output(self):
        with self.device:
            xp = self.device.xp
            s = self.scale
            samples = self.alg.x * s
            self.samples = samples.astype(np.float32, copy=False)
            self.x = self.samples.mean(axis=0)
            self.phase = self.measurement.phase              # refined, when refined
            self.complex_image = self.measurement.complex_image(self.x)
            self.std_raw = self.samples.std(axis=0, ddof=1) if self.num_samples > 1 else None
            self.calibration = None
            self.std = None
            if self.std_raw is not None:
                from .calibration import calibration_factor, sampler_key
                self.std_raw = xp.asarray(self.std_raw, dtype=np.float32)
                self.calibration = calibration_factor(
                    self.calibration_request, self.prior, self.A,
                    sampler_key(self._sampler, self.renoise), self.num_samples)
                c = 1.0 if self.calibration is None else self.calibration
                self.std = (c * self.std_raw).astype(np.float32, copy=False)
            return self.x


#: The guided fast sampler refines an estimated phase (and re-estimates σ against it) at
#: every ``PHASE_REFINE_EVERY``-th step, from the first on. Cartesian 4× with a smooth
#: phase, six validation slices, mean of 4: every step 35.39 dB, every 2nd 35.49, every 4th
#: 35.52 (σ = 0.05: 31.56 every step), for a half and a quarter of the refinement's time
#: (``docs/sampler.md``).
PHASE_REFINE_EVERY = 4
#: ... and re-estimates σ (not given) at every ``PHASE_SIGMA_EVERY``-th refinement, from the
#: first on; its data steps (one coil with a phase, ``dc_max_iter`` None) take
#: ``PHASE_CG_ITER`` warm-started CG iterations, which keeps the work outside the network
#: under 5 % of a run: against every refinement and 8 iterations, the same six slices of each
#: validation person, mean of 4, gave +0.05 / +0.06 dB noiseless and −0.01 / −0.01 dB with
#: noise 0.05 (``docs/sampler.md``).
PHASE_SIGMA_EVERY = 2
PHASE_CG_ITER = 4


def _resolve_refine_phase(refine_phase, measurement, sampler):
    """``refine_phase`` checked, None resolved: an estimated phase (``"auto"``) of one coil
    with the fast sampler."""
    if refine_phase not in (None, True, False):
        raise ValueError(f"GuidedVDMRecon: refine_phase must be None, True or False, got "
                         f"{refine_phase!r}")
    request = measurement.phase_request
    if refine_phase is None:
        refine_phase = isinstance(request, str) and sampler == "fast" \
            and not measurement.coils
    if refine_phase and (request is None or sampler != "fast"):
        raise ValueError("GuidedVDMRecon: refine_phase=True needs a phase ('auto' or an "
                         "array) and the fast sampler")
    return bool(refine_phase)


def _torch_device(prior, device):
    """``(torch, the torch device of the sigpy device)``; ValueError for a torch prior
    elsewhere."""
    import torch

    torch_device = (torch.device("cpu") if device.id < 0 else torch.device("cuda", device.id))
    if isinstance(prior, torch.nn.Module):
        devs = {p.device for p in prior.parameters()} | {b.device for b in prior.buffers()}
        if devs and devs != {torch_device}:
            raise ValueError(f"GuidedVDMRecon: the prior is on {sorted(map(str, devs))} but "
                             f"the data go to {torch_device}; move it with "
                             f"prior.to({str(torch_device)!r})")
    return torch, torch_device


def _check_prior(prior, A):
    """(H, W) and C of the prior's images, or ValueError."""
    for name in ("gamma", "predict_eps", "image_channels", "downsample_factor"):
        if not hasattr(prior, name):
            raise ValueError(f"GuidedVDMRecon: the prior has no {name!r}; expected the prior "
                             f"protocol (gamma, predict_eps, image_channels, downsample_factor)")
    ishape = tuple(A.ishape)
    if len(ishape) < 2:
        raise ValueError(f"GuidedVDMRecon: expected an operator on images (..., H, W), got "
                         f"ishape {ishape}")
    c = int(prior.image_channels)
    if c > 1 and (len(ishape) < 3 or ishape[-3] != c):
        raise ValueError(f"GuidedVDMRecon: the prior has {c} image channels, so A.ishape must "
                         f"end in ({c}, H, W); got {ishape}")
    return ishape[-2:], c
