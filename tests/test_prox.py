"""VDMDenoiser (the prior as a SigPy Prox) and PnPVDMRecon, with the analytic Gaussian prior:
the one-step denoiser of a Gaussian prior is its exact posterior mean."""
import numpy as np
import pytest
import sigpy as sp

from mrirecon_vdm.gaussian_prior import GaussianPrior, stationary_variance
from mrirecon_vdm.linop import CropFourier, FourierSampling
from mrirecon_vdm.pnp import PnPVDMRecon
from mrirecon_vdm.prox import VDMDenoiser
from mrirecon_vdm.sampling import cartesian_mask

H = 16


def make_prior():
    yy, xx = np.mgrid[:H, :H]
    mean = 0.4 + 0.2 * np.cos(2 * np.pi * xx / H)
    return GaussianPrior(mean, variance=stationary_variance((H, H), 0.03, 2.0))


@pytest.mark.parametrize("sigma", [0.05, 0.2])
def test_denoiser_is_the_gaussian_posterior_mean(sigma):
    """prox(α, v) = E[x | v = x + σ n] with σ² = λα (real white noise)."""
    prior = make_prior()
    rng = np.random.default_rng(0)
    x = prior.sample(1, seed=1)[0]
    v = (x + sigma * rng.standard_normal((H, H))).astype(np.float32)
    lamda, alpha = 0.5, 2 * sigma ** 2
    P = VDMDenoiser((H, H), prior, lamda=lamda, scale=1.0, bf16=False)
    out = P(alpha, v)
    # the complex measurement model of posterior_mean: real part of the noise has var σ²
    ref = prior.posterior_mean(v.astype(np.complex128), sp.linop.Identity((H, H)),
                               noise_sigma=sigma * np.sqrt(2))
    assert np.abs(out - ref).max() < 2e-3 * np.abs(ref).max()
    assert P.nfe == 1 and abs(P.last_sigma - sigma) < 1e-9
    # denoising moves toward the prior: closer to x than v is
    assert np.linalg.norm(out - x) < np.linalg.norm(v - x)


def test_denoiser_scale_modes_and_schedule():
    prior = make_prior()
    x = prior.sample(1, seed=2)[0].astype(np.float32)
    v = x + 0.1 * np.random.default_rng(1).standard_normal((H, H)).astype(np.float32)
    base = VDMDenoiser((H, H), prior, lamda=0.01, bf16=False)(1.0, v)
    # intensity units: scaling the input and s together scales the output
    scaled = VDMDenoiser((H, H), prior, lamda=0.01 * 49, scale=7.0, bf16=False)(1.0, 7 * v)
    np.testing.assert_allclose(scaled, 7 * base, rtol=1e-4, atol=1e-4)
    phase = np.exp(0.7j)
    real = VDMDenoiser((H, H), prior, lamda=0.01, mode="real", bf16=False)(1.0, v + 0.3j * v)
    np.testing.assert_allclose(real, base, atol=1e-5)                  # imaginary part dropped
    mag = VDMDenoiser((H, H), prior, lamda=0.01, mode="magnitude", bf16=False)(
        1.0, np.abs(v) * phase)
    np.testing.assert_allclose(np.angle(mag[np.abs(mag) > 1e-3]), 0.7, atol=1e-5)
    P = VDMDenoiser((H, H), prior, lamda=[0.04, 0.01], bf16=False)
    P(1.0, v)
    assert abs(P.last_sigma - 0.2) < 1e-9
    P(1.0, v)
    P(1.0, v)
    assert abs(P.last_sigma - 0.1) < 1e-9 and P.nfe == 3                 # last one repeats


def test_flip_ensemble_averages_the_mirrored_prediction():
    """flip_ensemble: D(v) averaged with the mirror image of D(mirror(v)) (last axis), per
    image of a stack with its own noise level, in one call (nfe counts calls)."""
    prior = make_prior()                       # its mean is not mirror-symmetric
    rng = np.random.default_rng(3)
    v = (prior.sample(2, seed=4) + 0.1 * rng.standard_normal((2, H, H))).astype(np.float32)
    lam = [np.array([0.01, 0.04])]
    plain = VDMDenoiser((2, H, H), prior, lamda=lam, bf16=False)
    ens = VDMDenoiser((2, H, H), prior, lamda=lam, bf16=False, flip_ensemble=True)
    out = ens(1.0, v)
    ref = 0.5 * (plain(1.0, v) + plain(1.0, v[..., ::-1].copy())[..., ::-1])
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    assert ens.nfe == 1 and np.abs(out - plain(1.0, v)).max() > 1e-3
    with pytest.raises(ValueError, match="flip_ensemble must be True or False"):
        VDMDenoiser((2, H, H), prior, flip_ensemble=1)


def test_denoiser_errors():
    prior = make_prior()
    with pytest.raises(ValueError, match="lamda"):
        VDMDenoiser((H, H), prior, lamda=0)
    with pytest.raises(ValueError, match="lamda"):
        VDMDenoiser((H, H), prior, lamda=[0.1, float("nan")])
    with pytest.raises(ValueError, match="mode"):
        VDMDenoiser((H, H), prior, mode="phase")
    with pytest.raises(ValueError, match="scale"):
        VDMDenoiser((H, H), prior, scale=-1.0)
    with pytest.raises(ValueError, match="prior protocol"):
        VDMDenoiser((H, H), object())


def test_pnp_inside_sigpy_solver_and_app():
    """The Prox in sigpy.app.LinearLeastSquares, and the App: with a Gaussian prior the
    annealed plug-and-play iteration lands on the exact posterior mean (noiseless data)."""
    prior = make_prior()
    x = prior.sample(1, seed=3)[0].astype(np.float32)
    mask = cartesian_mask((H, H), 3, center=4, seed=0)
    A = FourierSampling((H, H), mask)
    y = A(x).astype(np.complex64)
    pm = prior.posterior_mean(y, A, 0.0)
    tol = 0.05 * np.linalg.norm(pm - x)
    proxg = VDMDenoiser((H, H), prior, lamda=np.geomspace(3e-2, 1e-4, 20), bf16=False)
    out = sp.app.LinearLeastSquares(A, y, proxg=proxg, max_iter=20, alpha=1.0,
                                    show_pbar=False).run()
    assert np.linalg.norm(out.real - pm) < tol
    app = PnPVDMRecon(y, A, prior, num_steps=20, bf16=False)
    r = app.run()
    assert r.shape == (H, H) and np.isrealobj(r) and app.nfe == 20
    assert np.linalg.norm(r - pm) < tol
    # a crop works too (super-resolution)
    C = CropFourier((H, H), (8, 8))
    r = PnPVDMRecon(C(x).astype(np.complex64), C, prior, num_steps=10, bf16=False).run()
    assert np.all(np.isfinite(r))


def test_pnp_errors():
    prior = make_prior()
    A = FourierSampling((H, H), cartesian_mask((H, H), 2, center=4, seed=0))
    y = A(np.ones((H, H), np.float32)).astype(np.complex64)
    with pytest.raises(ValueError, match="lowres_image_to_kspace"):
        PnPVDMRecon(y.real.copy(), A, prior)
    with pytest.raises(ValueError, match="num_steps"):
        PnPVDMRecon(y, A, prior, num_steps=0)
    with pytest.raises(ValueError, match="phase"):
        PnPVDMRecon(y, A, prior, phase="maybe")
    bad = y.copy()
    bad[H // 2, H // 2] = np.nan
    with pytest.raises(ValueError, match="finite"):
        PnPVDMRecon(bad, A, prior)
    for sigma in (-0.1, float("nan"), float("inf"), "0.1x", [0.1]):
        with pytest.raises(ValueError, match="PnPVDMRecon: sigma must be None or a finite"):
            PnPVDMRecon(y, A, prior, sigma=sigma)
    import torch
    with pytest.raises(ValueError, match="expected a numpy or cupy array, got torch.Tensor"):
        PnPVDMRecon(torch.from_numpy(y), A, prior)
    with pytest.raises(ValueError, match="largest magnitude is .*e\\+31.*divide the data"):
        PnPVDMRecon(y * np.float32(1e30), A, prior)


def test_zero_and_unnormalised_coil_maps_are_refused_by_both_apps():
    from mrirecon_vdm.app import GuidedVDMRecon
    from mrirecon_vdm.coils import birdcage_maps

    mask = cartesian_mask((H, H), 2, center=8, seed=0)
    maps = birdcage_maps((H, H), 4)
    y = FourierSampling((H, H), mask, maps=maps)(np.ones((H, H), np.float32))
    for app in (PnPVDMRecon, GuidedVDMRecon):
        with pytest.raises(ValueError, match="maps are all zero"):
            app(y, FourierSampling((H, H), mask, maps=0 * maps), make_prior())
        for c in (1e-20, 1e-3, 30.0):
            with pytest.raises(ValueError, match=f"{app.__name__} A: the coil maps' "
                                                 f"root-sum-of-squares peaks at {c:.3g}"):
                app(y, FourierSampling((H, H), mask, maps=c * maps), make_prior())


def test_extreme_intensities():
    """Tiny k-space is scaled into the prior's units; k-space beyond float32's squared range
    is refused by name before any work (no overflow warning, no solver exception)."""
    import warnings

    from mrirecon_vdm.app import GuidedVDMRecon

    A = FourierSampling((H, H), cartesian_mask((H, H), 2, center=4, seed=0))
    x = make_prior().mean.astype(np.float32)
    y = A(x).astype(np.complex64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ref = PnPVDMRecon(y, A, make_prior(), num_steps=3).run()
        tiny = PnPVDMRecon(y * np.float32(1e-30), A, make_prior(), num_steps=3).run()
        np.testing.assert_allclose(tiny * 1e30, ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max())
        big = PnPVDMRecon(y * np.float32(1e12), A, make_prior(), num_steps=3).run()
        np.testing.assert_allclose(big / 1e12, ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max())
        for app in (PnPVDMRecon, GuidedVDMRecon):
            with pytest.raises(ValueError, match=f"{app.__name__} y: the largest magnitude"):
                app(y * np.float32(1e30), A, make_prior())


def test_per_slice_scales_equal_separate_calls():
    """A stack with one intensity per slice: every slice gets its own noise schedule in the
    same network calls, and the result equals reconstructing each slice on its own."""
    prior = make_prior()
    xs = prior.sample(2, seed=5).astype(np.float32) * np.array([1.0, 6.0], np.float32)[:, None,
                                                                                         None]
    masks = np.stack([cartesian_mask((H, H), 2, center=4, seed=s) for s in range(2)])
    A = FourierSampling((2, H, H), masks)
    y = A(xs).astype(np.complex64)
    app = PnPVDMRecon(y, A, prior, num_steps=8, bf16=False)
    both = app.run()
    assert np.shape(app.scale) == (2, 1, 1) and app.nfe == 8
    for i in range(2):
        Ai = FourierSampling((H, H), masks[i])
        one = PnPVDMRecon(y[i], Ai, prior, num_steps=8, bf16=False).run()
        np.testing.assert_allclose(both[i], one, rtol=1e-4, atol=1e-4 * float(xs[i].max()))
    with pytest.raises(ValueError, match="one per image"):
        PnPVDMRecon(y, A, prior, scale=np.ones(3))


@pytest.mark.parametrize("data_step", ["prox", "gradient"])
def test_both_data_steps_land_on_the_posterior_mean(data_step):
    """The exact data step (half-quadratic splitting) and SigPy's proximal gradient both
    reach the Gaussian posterior mean on noiseless data; ``auto`` is the exact one for a
    mask (or a phase, coil maps) and the gradient one for a plain crop and for an operator
    the package does not know."""
    prior = make_prior()
    x = prior.sample(1, seed=3)[0].astype(np.float32)
    A = FourierSampling((H, H), cartesian_mask((H, H), 3, center=4, seed=0))
    y = A(x).astype(np.complex64)
    pm = prior.posterior_mean(y, A, 0.0)
    app = PnPVDMRecon(y, A, prior, num_steps=20, data_step=data_step, bf16=False)
    r = app.run()
    assert app.data_step == data_step and app.nfe == 20
    assert np.linalg.norm(r - pm) < 0.05 * np.linalg.norm(pm - x)
    assert PnPVDMRecon(y, A, prior, bf16=False).data_step == "prox"
    C = CropFourier((H, H), (8, 8))
    yc = C(x).astype(np.complex64)
    assert PnPVDMRecon(yc, C, prior, bf16=False).data_step == "gradient"
    assert PnPVDMRecon(yc, C, prior, phase=np.zeros((H, H), np.float32),
                       bf16=False).data_step == "prox"
    B = sp.linop.Multiply((H, H), np.linspace(0.5, 1.0, H * H).reshape(H, H))
    assert PnPVDMRecon(B(x).astype(np.complex64), B, prior, bf16=False).data_step == "gradient"


def test_default_steps_and_schedule_start_depend_on_coil_maps():
    """Without options: 30 iterations, 8 CG iterations and the schedule's start 0.03 for a
    single coil; 45, 12 and 0.3 with coil maps (chosen on both validation people with 8
    noisy coils); no self-ensemble; explicit values win (the self-ensemble: two network
    images a step)."""
    from mrirecon_vdm.alg import DEFAULT_CG_ITER
    from mrirecon_vdm.coils import birdcage_maps
    from mrirecon_vdm.pnp import DEFAULT_PNP, DEFAULT_PNP_COILS

    prior = make_prior()
    x = prior.sample(1, seed=3)[0].astype(np.float32)
    mask = cartesian_mask((H, H), 3, center=4, seed=0)
    for maps, d in ((None, dict(DEFAULT_PNP, dc_max_iter=DEFAULT_CG_ITER)),
                    (birdcage_maps((H, H), 4), dict(DEFAULT_PNP, **DEFAULT_PNP_COILS))):
        A = FourierSampling((H, H), mask, maps=maps)
        y = A(x).astype(np.complex64)
        app = PnPVDMRecon(y, A, prior, sigma=1e-3, bf16=False)
        app.run()
        flips = 2 if d["flip_ensemble"] else 1
        assert app.flip_ensemble is app.proxg.flip_ensemble is d["flip_ensemble"]
        assert app.nfe == flips * d["num_steps"] and app.proxg.nfe == d["num_steps"]
        assert app.dc.max_iter == d["dc_max_iter"]
        s2 = float(np.asarray(app.scale).ravel()[0]) ** 2
        assert np.allclose(app.proxg.lamdas[0] / s2, d["lamda_start"])
        assert np.allclose(app.proxg.lamdas[-1] / s2, d["lamda_end"])
        app = PnPVDMRecon(y, A, prior, num_steps=7, dc_max_iter=3, sigma=1e-3, bf16=False,
                          flip_ensemble=not d["flip_ensemble"])
        app.run()
        assert app.nfe == (1 if flips == 2 else 2) * 7 and app.dc.max_iter == 3
    assert DEFAULT_PNP_COILS == {"num_steps": 45, "lamda_start": 0.3, "dc_max_iter": 12,
                                 "prox_variance": 8.0}
    with pytest.raises(ValueError, match="flip_ensemble must be None, True or False"):
        PnPVDMRecon(y, A, prior, flip_ensemble="yes", bf16=False)


def test_exact_data_step_through_a_known_phase_and_with_noise():
    """With a known phase in the operator the exact step comes close to the posterior mean
    of the phase-carrying problem, much closer than the gradient step, and stays there with
    many steps and CG iterations (min_lam: without it this diverged); with noise the data
    step is a weighted one and the result stays close to the noisy posterior mean."""
    from mrirecon_vdm.linop import Phase
    from mrirecon_vdm.phase import smooth_phase
    prior = make_prior()
    x = prior.sample(1, seed=4)[0].astype(np.float32)
    A = FourierSampling((H, H), cartesian_mask((H, H), 3, center=4, seed=1))
    phi = smooth_phase((H, H), seed=2)
    y = A(x * np.exp(1j * phi)).astype(np.complex64)
    pm = prior.posterior_mean(y, A * Phase((H, H), phi), 0.0)
    ref = np.linalg.norm(pm - x)
    # noiseless, σ = 0 given (the default estimates it for one coil with a phase)
    app = PnPVDMRecon(y, A, prior, num_steps=20, phase=phi, dc_max_iter=30, bf16=False,
                      sigma=0.0)
    r = app.run()
    assert not app.refine_phase and app.dc.method == "cg"
    np.testing.assert_allclose(app.phase, phi, atol=1e-6)
    assert np.linalg.norm(r - pm) < 0.2 * ref
    grad = PnPVDMRecon(y, A, prior, num_steps=20, phase=phi, data_step="gradient",
                       bf16=False, sigma=0.0).run()
    assert np.linalg.norm(r - pm) < 0.5 * np.linalg.norm(grad - pm)
    long = PnPVDMRecon(y, A, prior, num_steps=60, phase=phi, dc_max_iter=100,
                       bf16=False, sigma=0.0).run()
    assert np.linalg.norm(long - pm) < 0.2 * ref
    with pytest.raises(ValueError, match="min_lam"):
        PnPVDMRecon(y, A, prior, phase=phi, min_lam=-1.0)
    # noise: σ floors the schedule and weighs the data step
    sigma = 0.02
    rng = np.random.default_rng(0)
    yn = (y + sigma / np.sqrt(2) * (rng.standard_normal(y.shape)
                                    + 1j * rng.standard_normal(y.shape)) * A.mask)
    yn = yn.astype(np.complex64)
    pmn = prior.posterior_mean(yn, A * Phase((H, H), phi), sigma)
    # c = 4, the weight under which the annealed iteration tracks a Gaussian prior's
    # posterior mean (the default c = 16 trusts the data more, for a learned prior on
    # people it never saw: docs/sampler.md)
    rn = PnPVDMRecon(yn, A, prior, num_steps=20, phase=phi, sigma=sigma, dc_max_iter=30,
                     prox_variance=4.0, bf16=False).run()
    assert np.linalg.norm(rn - pmn) < 0.3 * np.linalg.norm(pmn - x)


def test_estimated_phase_is_refined():
    """phase="auto": the calibration-region estimate is refined as the iterations go, and the
    refined phase is closer to the truth than the estimate."""
    from mrirecon_vdm.phase import estimate_phase, smooth_phase
    prior = make_prior()
    x = prior.sample(1, seed=6)[0].astype(np.float32)
    A = FourierSampling((H, H), cartesian_mask((H, H), 2, center=6, seed=2))
    phi = smooth_phase((H, H), seed=4)
    y = A(x * np.exp(1j * phi)).astype(np.complex64)
    app = PnPVDMRecon(y, A, prior, num_steps=15, phase="auto", sigma=0.0, bf16=False)
    r = app.run()
    assert app.refine_phase and np.all(np.isfinite(r))

    def err(p):
        return float(np.sqrt(np.mean(np.angle(np.exp(1j * (p - phi))) ** 2)))
    assert err(app.phase) < err(estimate_phase(y, A))
    off = PnPVDMRecon(y, A, prior, num_steps=15, phase="auto", refine_phase=False, bf16=False)
    off.run()
    np.testing.assert_allclose(off.phase, estimate_phase(y, A), atol=1e-6)


def test_phase_refinement_cadence_and_cg_iterations():
    """An estimated phase is refined before every PHASE_REFINE_EVERY-th data step after the
    first and before the final one (15 iterations: steps 2, 4, ..., 14 and the final step
    with a cadence of 2); one coil with a phase takes PHASE_CG_ITER CG iterations unless
    told otherwise, while a known phase in the operator given by the user does too."""
    from mrirecon_vdm import pnp
    from mrirecon_vdm.alg import DataConsistency
    from mrirecon_vdm.linop import Phase
    from mrirecon_vdm.phase import smooth_phase
    prior = make_prior()
    x = prior.sample(1, seed=6)[0].astype(np.float32)
    A = FourierSampling((H, H), cartesian_mask((H, H), 2, center=6, seed=2))
    phi = smooth_phase((H, H), seed=4)
    y = A(x * np.exp(1j * phi)).astype(np.complex64)
    calls = []
    orig = DataConsistency.refine_phase

    def spy(self, *a, **k):
        calls.append(1)
        return orig(self, *a, **k)

    assert pnp.PHASE_REFINE_EVERY == 2 and pnp.PHASE_CG_ITER == 6
    DataConsistency.refine_phase = spy
    try:
        for every, expected in ((2, 7 + 1), (1, 14 + 1), (3, 5 + 1)):
            calls.clear()
            pnp.PHASE_REFINE_EVERY = every
            app = PnPVDMRecon(y, A, prior, num_steps=15, phase="auto", sigma=0.0, bf16=False)
            app.run()
            assert len(calls) == expected, (every, len(calls))
    finally:
        DataConsistency.refine_phase = orig
        pnp.PHASE_REFINE_EVERY = 2
    assert app.dc.max_iter == pnp.PHASE_CG_ITER
    assert PnPVDMRecon(y, A, prior, phase=phi, bf16=False).dc.max_iter == pnp.PHASE_CG_ITER
    assert PnPVDMRecon(y, A * Phase((H, H), phi), prior, bf16=False).dc.max_iter \
        == pnp.PHASE_CG_ITER
    assert PnPVDMRecon(y, A, prior, phase="auto", dc_max_iter=9, bf16=False).dc.max_iter == 9


def test_data_step_errors():
    prior = make_prior()
    A = FourierSampling((H, H), cartesian_mask((H, H), 2, center=4, seed=0))
    y = A(np.ones((H, H), np.float32)).astype(np.complex64)
    with pytest.raises(ValueError, match="data_step must be one of"):
        PnPVDMRecon(y, A, prior, data_step="admm")
    with pytest.raises(ValueError, match="prox_variance"):
        PnPVDMRecon(y, A, prior, prox_variance=0.0)
    with pytest.raises(ValueError, match="refine_phase=True needs a phase"):
        PnPVDMRecon(y, A, prior, refine_phase=True)
    with pytest.raises(ValueError, match="refine_phase needs the exact data step"):
        PnPVDMRecon(y, A, prior, phase="auto", data_step="gradient", refine_phase=True)
    assert not PnPVDMRecon(y, A, prior, phase="auto", data_step="gradient").refine_phase
    with pytest.raises(ValueError, match="refine_phase must be"):
        PnPVDMRecon(y, A, prior, refine_phase="yes")


def test_pnp_sigma_default_with_a_phase():
    """σ=None: the estimate for one coil with a phase (known or estimated), with coil maps
    and for one coil without a phase; a given σ is kept."""
    from mrirecon_vdm.coils import birdcage_maps
    from mrirecon_vdm.linop import Phase
    from mrirecon_vdm.noise import GaussianNoise, estimate_sigma
    from mrirecon_vdm.phase import smooth_phase
    from mrirecon_vdm.pnp import DEFAULT_PNP

    prior = make_prior()
    x = prior.sample(1, seed=3)[0].astype(np.float32)
    mask = cartesian_mask((H, H), 2, center=8, seed=0)
    phi = smooth_phase((H, H), seed=1, amplitude=1.0)
    A = FourierSampling((H, H), mask)
    y = (GaussianNoise(0.05, 0)(A(x * np.exp(1j * phi))) * mask).astype(np.complex64)
    assert DEFAULT_PNP["prox_variance"] == 16.0
    for phase in ("auto", phi):
        app = PnPVDMRecon(y, A, prior, phase=phase, num_steps=2, bf16=False)
        Ap = A * Phase((H, H), app.phase if isinstance(phase, str) else phi)
        if not isinstance(phase, str):
            assert app.sigma == pytest.approx(estimate_sigma(y, Ap), rel=1e-5)
        assert app.sigma > 0
    # one coil without a phase: the anti-Hermitian part of the measured pairs (here the
    # unmodelled phase, capped by the high-pass bound), exactly 0 for a real noiseless image
    assert PnPVDMRecon(y, A, prior, num_steps=2, bf16=False).sigma == pytest.approx(
        estimate_sigma(y, A), rel=1e-6)
    assert estimate_sigma(y, A) > 0
    assert PnPVDMRecon(A(x).astype(np.complex64), A, prior, num_steps=2,
                       bf16=False).sigma == 0.0
    assert PnPVDMRecon(y, A, prior, phase="auto", sigma=0.01, num_steps=2,
                       bf16=False).sigma == 0.01
    Ac = FourierSampling((H, H), mask, maps=birdcage_maps((H, H), 4))
    yc = (GaussianNoise(0.05, 0)(Ac(x)) * mask).astype(np.complex64)
    app = PnPVDMRecon(yc, Ac, prior, num_steps=2, bf16=False)
    assert app.sigma == pytest.approx(estimate_sigma(yc, Ac * Phase((H, H), app.phase)),
                                      rel=1e-5)


def test_pnp_noise_floor_is_the_sampled_share_of_sigma2():
    """The schedule ends at max(λ_end s², ρ σ²), ρ the sampled share of k-space (a crop's
    block over the grid, 1 for an operator that is not Fourier sampling); the exact data
    step's c is 16 for one coil and 8 with coil maps; a bad noise_floor is refused."""
    from mrirecon_vdm.coils import birdcage_maps
    from mrirecon_vdm.linop import fourier_structure
    from mrirecon_vdm.pnp import DEFAULT_PNP_COILS, sampled_fraction

    prior = make_prior()
    x = prior.sample(1, seed=3)[0].astype(np.float32)
    mask = cartesian_mask((H, H), 4, center=4, seed=0)
    A = FourierSampling((H, H), mask)
    y = A(x).astype(np.complex64)
    rho = float(mask.mean())
    assert rho < 0.5
    assert sampled_fraction(fourier_structure(A)) == pytest.approx(rho)
    assert sampled_fraction(fourier_structure(CropFourier((H, H), (8, 4)))) == 0.125
    assert sampled_fraction(None) == 1.0
    sigma, s = 0.3, 0.5
    app = PnPVDMRecon(y, A, prior, sigma=sigma, scale=s, num_steps=5, bf16=False)
    assert app.noise_floor == pytest.approx(rho)
    last = float(np.ravel(app.proxg.lamdas[-1])[0])
    assert last == pytest.approx(max(1e-4 * s ** 2, rho * sigma ** 2), rel=1e-5)
    app = PnPVDMRecon(y, A, prior, sigma=sigma, scale=s, num_steps=5, noise_floor=1.0,
                      bf16=False)
    assert float(np.ravel(app.proxg.lamdas[-1])[0]) == pytest.approx(sigma ** 2, rel=1e-5)
    # the data step's variance: c λ_(k-1), c = 16
    assert float(np.ravel(app._alg.variances[-1])[0]) == pytest.approx(
        16.0 * float(np.ravel(app.proxg.lamdas[-2])[0]), rel=1e-5)
    Ac = FourierSampling((H, H), mask, maps=birdcage_maps((H, H), 4))
    yc = Ac(x).astype(np.complex64)
    app = PnPVDMRecon(yc, Ac, prior, sigma=sigma, scale=s, num_steps=5, bf16=False)
    assert DEFAULT_PNP_COILS["prox_variance"] == 8.0
    assert float(np.ravel(app._alg.variances[-1])[0]) == pytest.approx(
        8.0 * float(np.ravel(app.proxg.lamdas[-2])[0]), rel=1e-5)
    for bad in (-1.0, float("nan"), True, "rho"):
        with pytest.raises(ValueError, match="noise_floor"):
            PnPVDMRecon(y, A, prior, noise_floor=bad)


@pytest.mark.parametrize("kind", ["mask", "crop"])
def test_pnp_ends_with_a_data_step(kind):
    """By default the output is the last denoiser's image put through one more data step
    with variance max(λ_N / 16, floor s²): noiseless, it reproduces the measured data
    exactly (the denoiser's image alone does not); with noise it equals that prox of the
    denoiser's image; a bad value is refused."""
    from mrirecon_vdm.alg import DataConsistency
    from mrirecon_vdm.app import DEFAULT_DC_VARIANCE_FLOOR
    from mrirecon_vdm.pnp import FINAL_STEP_VARIANCE

    prior = make_prior()
    x = prior.sample(1, seed=5)[0].astype(np.float32)
    if kind == "mask":
        A = FourierSampling((H, H), cartesian_mask((H, H), 4, center=4, seed=1))
    else:
        A = CropFourier((H, H), (8, 8))
    y = A(x).astype(np.complex64)
    off = PnPVDMRecon(y, A, prior, sigma=0.0, num_steps=4, bf16=False, final_data_step=False)
    x_off = off.run()
    on = PnPVDMRecon(y, A, prior, sigma=0.0, num_steps=4, bf16=False)
    assert on.final_data_step
    x_on = on.run()
    scale = np.abs(y).max()
    assert np.abs(A(x_off) - y).max() > 1e-4 * scale
    assert np.abs(A(x_on) - y).max() < 1e-5 * scale
    # noisy: the prox of the denoiser's image with variance max(λ_N / 16, floor s²)
    yn = (y + 0.05 * np.random.default_rng(2).standard_normal(y.shape)).astype(np.complex64)
    kw = dict(sigma=0.05, scale=1.0, num_steps=4, bf16=False)
    off = PnPVDMRecon(yn, A, prior, final_data_step=False, **kw)
    x_off = off.run()
    on = PnPVDMRecon(yn, A, prior, **kw)
    v = max(FINAL_STEP_VARIANCE * float(np.ravel(on.proxg.lamdas[-1])[0]),
            DEFAULT_DC_VARIANCE_FLOOR)                                       # s = 1
    ref = DataConsistency(A, 0.05, min_lam=1e-4).prox(x_off[None], yn, v)[0]
    np.testing.assert_allclose(on.run(), ref, atol=1e-5)
    with pytest.raises(ValueError, match="final_data_step must be None, True or False"):
        PnPVDMRecon(y, A, prior, final_data_step=1)


def test_pnp_final_data_step_with_an_operator_it_does_not_recognise():
    """A general linop (gradient path, no Fourier structure): the final data step takes
    one variance for the image and brings noiseless data closer."""
    prior = make_prior()
    x = prior.sample(1, seed=6)[0].astype(np.float32)
    rng = np.random.default_rng(7)
    A = sp.linop.Multiply((H, H), (rng.standard_normal((H, H)) * (rng.random((H, H)) > 0.5))
                          .astype(np.complex64))
    y = A(x).astype(np.complex64)
    kw = dict(num_steps=4, bf16=False)
    off = PnPVDMRecon(y, A, prior, sigma=0.0, final_data_step=False, **kw).run()
    on = PnPVDMRecon(y, A, prior, sigma=0.0, **kw)
    assert on.data_step == "gradient" and isinstance(on._final[1], float)
    assert np.linalg.norm(A(on.run()) - y) < 0.5 * np.linalg.norm(A(off) - y)
    yn = (y + 0.05 * rng.standard_normal(y.shape)).astype(np.complex64)
    assert np.all(np.isfinite(PnPVDMRecon(yn, A, prior, sigma=0.05, **kw).run()))


def test_pnp_complex_image():
    """``.complex_image`` is x·e^{iφ} with the (refined) phase, x itself without a phase."""
    from mrirecon_vdm.phase import smooth_phase

    A = FourierSampling((H, H), cartesian_mask((H, H), 2, center=6, seed=0))
    x = make_prior().mean.astype(np.float32)
    phi = smooth_phase((H, H), seed=1)
    app = PnPVDMRecon(A(x * np.exp(1j * phi)).astype(np.complex64), A, make_prior(),
                      phase="auto", num_steps=4)
    assert app.complex_image is None
    out = app.run()
    assert app.complex_image.dtype == np.complex64
    np.testing.assert_allclose(app.complex_image, out * np.exp(1j * app.phase), rtol=1e-5,
                               atol=1e-6)
    real = PnPVDMRecon(A(x).astype(np.complex64), A, make_prior(), num_steps=4)
    np.testing.assert_array_equal(real.run().astype(np.complex64), real.complex_image)
