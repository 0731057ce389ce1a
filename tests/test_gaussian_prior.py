"""GaussianPrior: exact ε-prediction (two forms of Σ agree, orthogonality principle), the
closed-form posterior (per-frequency = dense solve), sampling, and input errors."""
import numpy as np
import pytest
import sigpy as sp
import sigpy.mri  # noqa: F401  (sp.mri.linop)
import torch

from mrirecon_vdm.gaussian_prior import GaussianPrior, stationary_variance
from mrirecon_vdm.linop import CropFourier


def image_mean(shape):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return 0.3 + 0.2 * np.cos(2 * np.pi * xx / shape[1]) + 0.05 * ((xx + yy) % 2)


def c128(x):
    """SigPy's FFT casts real input to complex64: pass complex128 to keep float64 precision."""
    return np.asarray(x, dtype=np.complex128)


def crandn(shape, rng):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)


@pytest.fixture
def fourier_prior():
    shape = (8, 8)
    return GaussianPrior(image_mean(shape), variance=stationary_variance(shape, 0.05, 1.5))


def test_protocol_members(fourier_prior):
    assert fourier_prior.image_channels == 1 and fourier_prior.downsample_factor == 1
    g = fourier_prior.gamma(torch.tensor([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(g.numpy(), [-13.3, -4.15, 5.0], rtol=1e-6)
    p = GaussianPrior(np.zeros((4, 4)), variance=np.ones((4, 4)), gamma=lambda t: 2 * t - 1)
    np.testing.assert_allclose(p.gamma(torch.tensor([0.25])).numpy(), [-0.5])


@pytest.mark.parametrize("shape", [(8, 8), (7, 6)])
def test_fourier_and_dense_forms_agree(shape):
    P = stationary_variance(shape, 0.1, 1.0)
    mu = image_mean(shape)
    pf = GaussianPrior(mu, variance=P)
    pd = GaussianPrior(mu, cov=pf.covariance())
    z = torch.randn(5, 1, *shape, dtype=torch.float64)
    t = torch.tensor([0.0, 0.2, 0.5, 0.8, 1.0], dtype=torch.float64)
    for f in ("predict_eps", "predict_x0"):
        np.testing.assert_allclose(getattr(pf, f)(z, t).numpy(), getattr(pd, f)(z, t).numpy(),
                                   rtol=1e-8, atol=1e-8)
    assert pf.predict_eps(z.float(), t).dtype == torch.float32


def test_eps_prediction_is_the_conditional_mean():
    """Orthogonality principle: E[(ε − ε̂(z)) zᵀ] = 0 and E[ε − ε̂] = 0, by Monte Carlo."""
    shape = (4, 4)
    prior = GaussianPrior(image_mean(shape), variance=stationary_variance(shape, 0.2, 1.0))
    n = 20000
    x = torch.as_tensor(prior.sample(n, seed=0))[:, None]
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    t = torch.full((n,), 0.7, dtype=torch.float64)
    g = prior.gamma(t)[:, None, None, None]
    z = torch.sigmoid(-g).sqrt() * x + torch.sigmoid(g).sqrt() * eps
    err = (eps - prior.predict_eps(z, t)).reshape(n, -1)
    zc = (z - z.mean(0)).reshape(n, -1)
    cross = (err.T @ zc / n).numpy()
    scale = np.sqrt(np.outer(err.var(0).numpy(), zc.var(0).numpy()) / n)
    assert np.abs(cross / scale).max() < 5            # all within 5 standard errors
    assert np.abs(err.mean(0).numpy() / np.sqrt(err.var(0).numpy() / n)).max() < 5
    # and a perturbed predictor is worse
    e_hat = prior.predict_eps(z, t)
    assert ((eps - e_hat) ** 2).mean() < ((eps - 1.1 * e_hat) ** 2).mean()


def test_samples_have_the_prior_covariance(fourier_prior):
    x = fourier_prior.sample(8000, seed=3).reshape(8000, -1)
    cov = fourier_prior.covariance()
    np.testing.assert_allclose(x.mean(0), fourier_prior.mean.ravel(),
                               atol=5 * np.sqrt(cov.max() / 8000))
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.1 * cov.max())


@pytest.mark.parametrize("shapes", [((8, 8), (4, 4)), ((8, 8), (5, 3)), ((7, 9), (3, 4)),
                                    ((8, 8), (8, 4))])
@pytest.mark.parametrize("noise_sigma", [0.0, 0.1])
def test_posterior_mean_closed_form_matches_dense_solve(shapes, noise_sigma):
    hr, lr = shapes
    rng = np.random.default_rng(0)
    prior = GaussianPrior(image_mean(hr), variance=stationary_variance(hr, 0.05, 1.5))
    A = CropFourier(hr, lr)
    y = A(c128(prior.sample(1, seed=1)[0])) + noise_sigma * crandn(lr, rng)
    closed = prior.posterior_mean(y, A, noise_sigma)
    # the same operator as a plain SigPy composition takes the dense path
    A_dense = sp.linop.Resize(lr, hr) * sp.linop.FFT(hr, center=True)
    dense = prior.posterior_mean(y, A_dense, noise_sigma)
    np.testing.assert_allclose(closed, dense, atol=1e-7)
    if noise_sigma == 0:
        np.testing.assert_allclose(A(c128(closed)), y, atol=1e-9)   # noiseless: consistent


def test_posterior_mean_batch_axes(fourier_prior):
    A1 = CropFourier((8, 8), (4, 4))
    A3 = CropFourier((3, 8, 8), (3, 4, 4))
    y = A3(c128(fourier_prior.sample(3, seed=0)))
    x3 = fourier_prior.posterior_mean(y, A3, 0.05)
    for i in range(3):
        np.testing.assert_allclose(x3[i], fourier_prior.posterior_mean(y[i], A1, 0.05), atol=1e-12)


def test_posterior_limits_and_variance(fourier_prior):
    A = CropFourier((8, 8), (4, 4))
    y = A(c128(fourier_prior.sample(1, seed=2)[0]))
    # huge noise: the data say nothing, posterior = prior
    np.testing.assert_allclose(fourier_prior.posterior_mean(y, A, 1e6), fourier_prior.mean,
                               atol=1e-8)
    pv = fourier_prior.posterior_variance(A, 0.0)
    prior_var = np.diag(fourier_prior.covariance()).reshape(8, 8)
    assert np.all(pv <= prior_var + 1e-12)
    # stationary prior, noiseless crop: the posterior keeps exactly the unmeasured
    # frequencies, so the average pixel variance is their total power / n
    P = fourier_prior.variance
    measured = sp.resize(np.ones((4, 4)), (8, 8)) > 0
    partner = measured[(2 * 4 - np.arange(8)) % 8][:, (2 * 4 - np.arange(8)) % 8]
    free = ~(measured | partner)
    np.testing.assert_allclose(pv.mean(), P[free].sum() / 64, rtol=1e-8)


@pytest.mark.parametrize("shapes", [((8, 8), (4, 4)), ((8, 6), (5, 3)), ((7, 7), (3, 4))])
@pytest.mark.parametrize("noise_sigma", [0.0, 0.2])
def test_posterior_variance_closed_form_matches_dense_solve(shapes, noise_sigma):
    hr, lr = shapes
    prior = GaussianPrior(image_mean(hr), variance=stationary_variance(hr, 0.05, 1.5))
    closed = prior.posterior_variance(CropFourier(hr, lr), noise_sigma)
    dense = prior.posterior_variance(sp.linop.Resize(lr, hr) * sp.linop.FFT(hr, center=True),
                                     noise_sigma)
    np.testing.assert_allclose(closed, dense, rtol=1e-6, atol=1e-10)


def test_dense_posterior_other_operators():
    """A noiseless full-rank operator pins x; the dense path handles a coil axis."""
    shape = (6, 6)
    prior = GaussianPrior(image_mean(shape), variance=stationary_variance(shape, 0.05, 1.0))
    x = prior.sample(1, seed=0)[0]
    A = sp.linop.FFT(shape, center=True)
    np.testing.assert_allclose(prior.posterior_mean(A(c128(x)), A, 0.0), x, atol=1e-9)
    mps = np.stack([np.ones(shape), np.exp(1j * np.linspace(0, 1, 36)).reshape(shape)]) / np.sqrt(2)
    mask = np.zeros(shape)
    mask[::3] = 1
    S = sp.mri.linop.Sense(mps, weights=mask)
    xp = prior.posterior_mean(S(c128(x)), S, 0.0)
    np.testing.assert_allclose(S(c128(xp)), S(c128(x)), atol=1e-8)
    assert np.linalg.norm(xp - x) < np.linalg.norm(prior.mean - x)


def test_bad_inputs():
    P = stationary_variance((4, 4))
    with pytest.raises(ValueError, match="exactly one"):
        GaussianPrior(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="exactly one"):
        GaussianPrior(np.zeros((4, 4)), variance=P, cov=np.eye(16))
    asym = P.copy()
    asym[0, 1] *= 2
    with pytest.raises(ValueError, match="Hermitian-symmetric"):
        GaussianPrior(np.zeros((4, 4)), variance=asym)
    with pytest.raises(ValueError, match="> 0"):
        GaussianPrior(np.zeros((4, 4)), variance=np.zeros((4, 4)))
    with pytest.raises(ValueError, match="positive semi-definite"):
        GaussianPrior(np.zeros((2, 2)), cov=-np.eye(4))
    with pytest.raises(ValueError, match="real"):
        GaussianPrior(np.zeros((4, 4), complex), variance=P)
    prior = GaussianPrior(np.zeros((4, 4)), variance=P)
    with pytest.raises(ValueError, match=r"\(B, 1, 4, 4\)"):
        prior.predict_eps(torch.zeros(2, 4, 4), torch.zeros(2))
    with pytest.raises(ValueError, match="does not end in"):
        prior.posterior_mean(np.zeros((2, 2), complex), CropFourier((8, 8), (2, 2)))
