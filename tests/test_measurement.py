"""Measurement: the set-up both samplers share (phase, scale, σ̂, data step, refinement)."""
import numpy as np
import pytest

from mrirecon_vdm.app import GuidedVDMRecon
from mrirecon_vdm.coils import birdcage_maps
from mrirecon_vdm.gaussian_prior import GaussianPrior, stationary_variance
from mrirecon_vdm.intensity import estimate_scale, prior_percentile
from mrirecon_vdm.linop import CropFourier, FourierSampling
from mrirecon_vdm.measurement import Measurement
from mrirecon_vdm.noise import estimate_sigma
from mrirecon_vdm.phase import estimate_phase, smooth_phase
from mrirecon_vdm.pnp import PnPVDMRecon
from mrirecon_vdm.sampling import cartesian_mask

H = 16


def make_prior():
    yy, xx = np.mgrid[:H, :H]
    mean = 0.4 + 0.2 * np.cos(2 * np.pi * xx / H)
    return GaussianPrior(mean, variance=stationary_variance((H, H), 0.03, 2.0))


def noisy(A, image, sigma, seed):
    rng = np.random.default_rng(seed)
    y = A(image)
    n = sigma / np.sqrt(2) * (rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape))
    return (y + n).astype(np.complex64)


@pytest.fixture(params=["one coil", "four coils", "two slices"])
def phased(request):
    """A prior sample (intensity 5) with a smooth phase, Cartesian 2x, noise 0.05."""
    prior = make_prior()
    if request.param == "two slices":
        x = prior.sample(2, seed=0).astype(np.float32) * 5
        phi = smooth_phase((2, H, H), seed=3, amplitude=1.0)
        masks = np.stack([cartesian_mask((H, H), 2, center=6, seed=s) for s in range(2)])
        A = FourierSampling((2, H, H), masks)
    else:
        x = prior.sample(1, seed=0)[0].astype(np.float32) * 5
        phi = smooth_phase((H, H), seed=3, amplitude=1.0)
        maps = birdcage_maps((H, H), 4) if request.param == "four coils" else None
        A = FourierSampling((H, H), cartesian_mask((H, H), 2, center=6, seed=0), maps=maps)
    return prior, A, noisy(A, x * np.exp(1j * phi), 0.05, 1)


def test_estimates_are_the_helpers_and_the_apps(phased):
    """phase, scale and σ̂ are those of estimate_phase / estimate_scale / estimate_sigma,
    and both Apps report exactly them."""
    prior, A, y = phased
    m = Measurement("Test", y, A, phase="auto").set_up(prior_percentile(prior))
    assert m.phase_request == "auto" and not m.sigma_given
    np.testing.assert_array_equal(m.phase, estimate_phase(y, A))
    q = prior_percentile(prior)
    np.testing.assert_array_equal(m.scale, estimate_scale(y, m.A, percentile=q))
    assert m.sigma == estimate_sigma(y, m.A) > 0
    # the guided sampler's units: y / s and σ / s
    s = m.scale[..., None, :, :] if m.coils else m.scale
    np.testing.assert_array_equal(m.y_scaled, (y / s).astype(np.complex64))
    assert m.y_scaled is m.y_scaled
    np.testing.assert_array_equal(m.sigma_scaled, m.sigma / m.scale)

    kw = dict(phase="auto", refine_phase=False, show_pbar=False, bf16=False)
    guided = GuidedVDMRecon(y, A, prior, num_steps=2, **kw)
    pnp = PnPVDMRecon(y, A, prior, num_steps=2, **kw)
    for app in (guided, pnp):
        np.testing.assert_array_equal(app.phase, m.phase)
        np.testing.assert_array_equal(app.scale, m.scale)
        assert app.sigma == m.sigma
    np.testing.assert_array_equal(guided.dc.sigma, m.sigma_scaled)
    assert pnp.dc.sigma == m.sigma
    np.testing.assert_array_equal(guided.y, m.y_scaled)
    assert pnp.y is y


def test_given_sigma_and_scale():
    prior = make_prior()
    x = prior.sample(1, seed=0)[0].astype(np.float32)
    A = CropFourier((H, H), (8, 8))
    y = A(x).astype(np.complex64)
    m = Measurement("Test", y, A, sigma=0.1, scale=2.5).set_up()
    assert m.sigma_given and m.sigma == 0.1 and m.phase is None
    assert m.scale.dtype == np.float32 and float(m.scale) == 2.5
    assert m.sigma_scaled == 0.1 / 2.5 and m.image_scale == 2.5
    np.testing.assert_array_equal(m.complex_image(x), x.astype(np.complex64))
    assert m.data_consistency(True).sigma == m.sigma_scaled
    assert m.data_consistency(False).sigma == 0.1


def test_data_step_and_refiner():
    """One coil with a phase takes ``phase_max_iter`` CG iterations unless told; the refiner
    refines at every ``every``-th call and at a final one, re-estimates σ at every
    ``sigma_every``-th refinement, and ``phase`` then follows the data step."""
    prior = make_prior()
    x = prior.sample(1, seed=0)[0].astype(np.float32) * 5
    A = FourierSampling((H, H), cartesian_mask((H, H), 2, center=6, seed=0))
    phi = smooth_phase((H, H), seed=3, amplitude=1.0)
    y = noisy(A, x * np.exp(1j * phi), 0.05, 2)
    m = Measurement("Test", y, A, phase="auto").set_up()
    assert m.data_consistency(False, phase_max_iter=3).max_iter == 3
    assert m.data_consistency(False, max_iter=9, phase_max_iter=3).max_iter == 9
    dc = m.data_consistency(True, phase_max_iter=3)
    calls = []
    real = dc.refine_phase
    dc.refine_phase = lambda *a: calls.append(1) or real(*a)
    first = m.phase
    sigmas = []
    hook = m.phase_refiner(dc, True, every=2, sigma_every=2, batched=True)
    for _ in range(5):                               # refinements at calls 1, 3, 5
        hook(np.stack([x, x]) / m.scale)
        sigmas.append(m.sigma)
    hook(x[None] / m.scale, final=True)
    assert len(calls) == 4
    assert sigmas[0] != estimate_sigma(y, m.A)           # re-estimated at the 1st ...
    assert sigmas[0] == sigmas[1] == sigmas[2] != sigmas[4]   # ... and the 3rd refinement
    assert m.sigma == pytest.approx(dc.sigma * float(np.mean(m.scale)))
    assert not np.array_equal(m.phase, first)
    np.testing.assert_allclose(np.exp(1j * m.phase), dc.structure.phase, atol=1e-6)
    np.testing.assert_allclose(m.complex_image(x), x * dc.structure.phase, atol=1e-5)


def test_bad_input_names_the_caller():
    A = FourierSampling((H, H), cartesian_mask((H, H), 2, center=6, seed=0))
    y = A(np.ones((H, H), np.float32)).astype(np.complex64)
    with pytest.raises(ValueError, match="MyRecon y .*lowres_image_to_kspace"):
        Measurement("MyRecon", y.real.copy(), A)
    with pytest.raises(ValueError, match="MyRecon y .*must match A.oshape"):
        Measurement("MyRecon", y[:4], A)
    with pytest.raises(TypeError, match="MyRecon: A must be a sigpy Linop"):
        Measurement("MyRecon", y, np.eye(3))
    for sigma in (-1.0, float("nan"), "x", [0.1]):
        with pytest.raises(ValueError, match="MyRecon: sigma must be None or a finite"):
            Measurement("MyRecon", y, A, sigma=sigma)
    with pytest.raises(ValueError, match="MyRecon scale: expected finite values > 0"):
        Measurement("MyRecon", y, A, scale=-1.0)
    with pytest.raises(ValueError, match="MyRecon scale: .*got shape"):
        Measurement("MyRecon", y, A, scale=np.ones(3))
    with pytest.raises(ValueError, match="MyRecon scale: .*one per image"):
        Measurement("MyRecon", y, A, scale=np.ones((H, H)), per_image_scale=True)
    Measurement("MyRecon", y, A, scale=np.ones((H, H)))       # per pixel: the guided sampler
    with pytest.raises(ValueError, match="MyRecon: phase must be None, 'auto', 'none'"):
        Measurement("MyRecon", y, A, phase="maybe")
    with pytest.raises(ValueError, match="MyRecon: scale must be finite and > 0"):
        Measurement("MyRecon", y, A, scale=1e-60).set_up()        # 0 in float32
    maps = birdcage_maps((H, H), 4) * 2
    Ac = FourierSampling((H, H), A.mask, maps=maps)
    with pytest.raises(ValueError, match="MyRecon A"):
        Measurement("MyRecon", Ac(np.ones((H, H), np.float32)).astype(np.complex64), Ac)
