"""GuidedVDM and DataConsistency against closed forms, with the analytic GaussianPrior.

The samplers are affine in their noise for a Gaussian prior, so running them with all
noise set to zero gives the *exact* mean of their output (the "mean path"); that is
compared with the closed-form posterior mean. Monte Carlo checks the spread.
"""
import numpy as np
import pytest
import sigpy as sp
import sigpy.mri  # noqa: F401  (sp.mri.linop)
import torch

from mrirecon_vdm.alg import (DataConsistency, GuidedVDM, crop_hermitian_weights,
                              hermitian_weights, make_time_grid)
from mrirecon_vdm.backend import to_torch
from mrirecon_vdm.gaussian_prior import GaussianPrior, stationary_variance
from mrirecon_vdm.linop import CropFourier

H = 16


def c128(x):
    return np.asarray(x, dtype=np.complex128)


def image_mean(shape):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    # content at measured and at unmeasured (Nyquist) frequencies
    return 0.3 + 0.2 * np.cos(2 * np.pi * xx / shape[1]) + 0.1 * ((xx + yy) % 2)


def stationary_prior(shape=(H, H)):  # noqa: B008
    return GaussianPrior(image_mean(shape), variance=stationary_variance(shape, 0.05, 2.0))


def callables(prior):
    def denoise(z, t):
        zt = to_torch(z)[:, None]
        return prior.predict_eps(zt, torch.full((z.shape[0],), t, dtype=zt.dtype))[:, 0]

    def gamma(t):
        return prior.gamma(torch.as_tensor(t, dtype=torch.float64)).numpy()
    return denoise, gamma


def zeros(shape):
    return np.zeros(shape)


def run(prior, y, dc, k=1, dtype=np.float64, randn=zeros, **kw):
    denoise, gamma = callables(prior)
    alg = GuidedVDM(denoise, gamma, y, dc, (k,) + dc.ishape, randn=randn, dtype=dtype, **kw)
    while not alg.done():
        alg.update()
    return alg


def rel_err(x, ref, prior):
    return np.linalg.norm(x - ref) / np.linalg.norm(ref - prior.mean)


def mask_and_sense(shape=(H, H), frac=0.12, seed=0, centre_rows=2):
    rng = np.random.default_rng(seed)
    mask = rng.random(shape) < frac
    c = shape[0] // 2
    mask[c - centre_rows // 2:c + (centre_rows + 1) // 2] = True
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    mps = np.stack([np.exp(-((xx - shape[1] / 2) ** 2 + yy ** 2) / (2 * (shape[0] / 1.5) ** 2))
                    * np.exp(0.2j * xx),
                    np.exp(-((xx - shape[1] / 2) ** 2 + (yy - shape[0]) ** 2)
                           / (2 * (shape[0] / 1.5) ** 2)) * np.exp(-0.1j * yy)])
    mps /= np.sqrt((np.abs(mps) ** 2).sum(0))
    M = sp.linop.Multiply(shape, mask.astype(float)) * sp.linop.FFT(shape, center=True)
    S = sp.mri.linop.Sense(mps, weights=mask.astype(float))
    return mask, M, S


# ------------------------------------------------------------------ Hermitian weights
def test_hermitian_weights_of_crops():
    w = crop_hermitian_weights((8, 8), (4, 4))
    expected = np.ones((4, 4))
    expected[0, :] = 2          # frequency -2 in the first axis: +2 is not in the crop
    expected[:, 0] = 2
    np.testing.assert_array_equal(w, expected)
    np.testing.assert_array_equal(crop_hermitian_weights((9, 9), (5, 3)), np.ones((5, 3)))
    np.testing.assert_array_equal(crop_hermitian_weights((8, 8), (8, 8)), np.ones((8, 8)))
    m = np.zeros((4, 4), bool)
    m[2, 2] = m[1, 1] = m[3, 3] = True      # centre (self-conjugate), a pair, a lone sample
    w = hermitian_weights(m)
    assert w[2, 2] == 1 and w[1, 1] == 1 and w[3, 3] == 1
    m[3, 3] = False
    assert hermitian_weights(m)[1, 1] == 2 and hermitian_weights(m).sum() == 3


@pytest.mark.parametrize("shapes", [((16, 16), (8, 8)), ((16, 12), (7, 6)), ((15, 15), (5, 5))])
def test_projection_is_exact_for_real_images(shapes):
    """λ = 1, σ = 0: A Π(x) = y for y of a real image (even sizes included), while the
    naive "complex projection, then real part" misses the outermost row/column."""
    hr, lr = shapes
    rng = np.random.default_rng(0)
    A = CropFourier(hr, lr)
    y = A(c128(rng.standard_normal(hr)))
    x0 = rng.standard_normal((3,) + hr)
    dc = DataConsistency(A)
    x = dc.project(x0, y)
    assert x.dtype == np.float64
    for xi in x:
        np.testing.assert_allclose(A(c128(xi)), y, atol=1e-12)
    naive = np.real(x0 - np.stack([A.H(A(c128(xi)) - y) for xi in x0]))
    err = np.abs(A(c128(naive[0])) - y).max()
    if any(m % 2 == 0 and m < n for m, n in zip(lr, hr)):
        assert err > 1e-3
    else:
        assert err < 1e-12
    # an orthogonal projection: idempotent, and the step x − x0 is orthogonal to every real
    # u with A u = 0 (u = projection of random images onto the null space)
    np.testing.assert_allclose(dc.project(x, y), x, atol=1e-12)
    u = dc.project(rng.standard_normal((3,) + hr), np.zeros(lr))
    np.testing.assert_allclose(A(c128(u[1])), 0, atol=1e-12)
    for i in range(3):
        step = x[i] - x0[i]
        assert abs(np.vdot(step, u[i])) < 1e-10 * np.linalg.norm(u[i]) * np.linalg.norm(step)


def test_crop_mixing_identity():
    """z − λAᴴ(Az − ŷ) = F⁻¹[λ𝒫(Λ)ŷ + (1−λ)ΛFz + (I−Λ)Fz] for CropFourier, and the
    sampler's real mixing is its real part (odd sizes, where the crop is Hermitian)."""
    rng = np.random.default_rng(1)
    for hr, lr in [((16, 16), (8, 8)), ((15, 13), (5, 7))]:
        A = CropFourier(hr, lr)
        z = rng.standard_normal(hr)
        y_t = A(c128(rng.standard_normal(hr)))
        lam = 0.7
        lhs = z - lam * A.H(A(c128(z)) - y_t)
        Lam = sp.resize(np.ones(lr), hr)                       # Λ on the full grid
        P_y = sp.resize(y_t, hr)                               # 𝒫(Λ) ŷ: zero-padding
        Fz = sp.fft(c128(z), center=True)
        rhs = sp.ifft(lam * P_y + (1 - lam) * Lam * Fz + (1 - Lam) * Fz, center=True)
        np.testing.assert_allclose(lhs, rhs, atol=1e-12)
        mixed = z[None] - lam * (z[None] - DataConsistency(A).project(z[None], y_t))
        if all(m % 2 for m in lr):
            np.testing.assert_allclose(mixed[0], lhs.real, atol=1e-12)


def test_closed_form_and_cg_agree():
    rng = np.random.default_rng(2)
    A = CropFourier((H, H), (8, 8))
    mask, M, S = mask_and_sense()
    x = rng.standard_normal((2, H, H))
    for op, weights in [(A, None), (M, hermitian_weights(mask))]:
        y = op(c128(rng.standard_normal((H, H)))) + 0.1 * (rng.standard_normal(op.oshape) + 0)
        for sigma, v in [(0.0, None), (0.1, 0.05), (0.1, None)]:
            exact = DataConsistency(op, sigma, weights=weights if op is M else None).prox(x, y, v)
            # A composed with an identity is no CropFourier: the CG path
            cg = DataConsistency(op * sp.linop.Identity((H, H)) if op is A else op, sigma,
                                 max_iter=200, tol=1e-12).prox(x, y, v)
            np.testing.assert_allclose(exact, cg, atol=1e-7)
    # noisy prox: the optimality condition of the real least-squares problem
    sigma, v = 0.2, 0.03
    y = S(c128(rng.standard_normal((H, H))))
    xp = DataConsistency(S, sigma, max_iter=300, tol=1e-13).prox(x, y, v)
    grad = np.real(S.H(S(c128(xp[0])) - y)) / sigma ** 2 + (xp[0] - x[0]) / (2 * v)
    assert np.abs(grad).max() < 1e-6 * np.abs(x[0] / v).max()


def test_per_slice_sigma_needs_a_fourier_operator():
    _, _, S = mask_and_sense()
    DataConsistency(S, np.ones((1, 1)))          # SENSE is recognised: batched CG takes it
    with pytest.raises(ValueError, match="Fourier sampling operator"):
        DataConsistency(S * sp.linop.Identity((H, H)), np.ones((1, 1)))


# ------------------------------------------------------------------ time grids
def test_time_grids():
    prior = stationary_prior()
    _, gamma = callables(prior)
    t_u, g_u = make_time_grid(gamma, 10, "uniform")
    t_l, g_l = make_time_grid(gamma, 10, "logsnr")
    t_k, g_k = make_time_grid(gamma, 10, "karras")
    for t, g in [(t_u, g_u), (t_l, g_l), (t_k, g_k)]:
        assert t.shape == (11,) and t[0] == 1 and t[-1] == 0
        assert np.all(np.diff(t) < 0) and np.all(np.diff(g) < 0)
    np.testing.assert_allclose(t_l, t_u, atol=1e-6)            # linear schedule
    assert t_k[-2] > t_u[-2] and t_k[1] > t_u[1]     # ρ = 7: coarser at both ends, finer mid
    t_w, _ = make_time_grid(gamma, 4, "uniform", t_start=0.5)
    np.testing.assert_allclose(t_w, [0.5, 0.375, 0.25, 0.125, 0.0])
    # a non-linear schedule: logsnr is uniform in γ, not in t
    _, g_q = make_time_grid(lambda t: -10 + 15 * np.asarray(t) ** 2, 8, "logsnr")
    np.testing.assert_allclose(np.diff(g_q), np.full(8, -15 / 8), rtol=1e-3)
    with pytest.raises(ValueError, match="uniform"):
        make_time_grid(gamma, 4, "cosine")


# ------------------------------------------------------------------ the samplers
@pytest.mark.parametrize("operator", ["crop", "mask"])
def test_mean_path_equals_posterior_mean_noiseless(operator):
    """Stationary prior, Fourier sampling, σ = 0: both samplers' mean is the posterior mean."""
    if operator == "crop":
        prior = stationary_prior()
        A, w = CropFourier((H, H), (8, 8)), None
    else:   # 8 x 8: the reference is a dense solve
        prior = stationary_prior((8, 8))
        mask, A, _ = mask_and_sense((8, 8), frac=0.3)
        w = hermitian_weights(mask)
    x_true = prior.sample(1, seed=1)[0]
    y = A(c128(x_true))
    ref = prior.posterior_mean(y, A, 0.0)
    dc = DataConsistency(A, weights=w)
    paper = run(prior, y, dc, sampler="paper", num_steps=300)
    assert rel_err(paper.x[0], ref, prior) < 1e-3
    for opts in (dict(eta=0.0, renoise="ddim"), dict(renoise="ddim"), dict()):
        fast = run(prior, y, dc, sampler="fast", num_steps=50, **opts)
        assert rel_err(fast.x[0], ref, prior) < 2e-3, opts
        assert fast.nfe == 50


def test_fast_sampler_handles_measurement_noise():
    """σ > 0: the fast sampler's noise-aware proximal step lands within 1% of the
    posterior mean; hard consistency (the paper's mixing) is off by more than 2%."""
    prior = stationary_prior()
    rng = np.random.default_rng(3)
    A = CropFourier((H, H), (8, 8))
    sigma = 0.05
    noise = (rng.standard_normal((8, 8)) + 1j * rng.standard_normal((8, 8))) / np.sqrt(2)
    y = A(c128(prior.sample(1, seed=1)[0])) + sigma * noise
    ref = prior.posterior_mean(y, A, sigma)
    dc = DataConsistency(A, sigma)
    fast = run(prior, y, dc, sampler="fast", num_steps=50, eta=1.0)
    assert rel_err(fast.x[0], ref, prior) < 0.01
    paper = run(prior, y, dc, sampler="paper", num_steps=100)
    assert rel_err(paper.x[0], ref, prior) > 0.02


def test_samples_follow_the_posterior():
    """Monte Carlo: sample mean within its standard error of the posterior mean, pixel
    variance close to the posterior variance (few-step samplers shrink it a little) for
    DDIM renoising and the paper's sampler. Fresh renoising (the fast default) keeps the
    mean but under-disperses (variance ratio 0.46 here): its samples are not posterior
    samples, which ``docs/sampler.md`` says and the ``.std`` calibration accounts for."""
    prior = stationary_prior()
    A = CropFourier((H, H), (8, 8))
    y = A(c128(prior.sample(1, seed=1)[0]))
    ref, pv = prior.posterior_mean(y, A, 0.0), prior.posterior_variance(A, 0.0)
    dc = DataConsistency(A)
    for sampler, renoise, steps, k, lo, hi in [("fast", "ddim", 50, 256, 0.75, 1.1),
                                               ("paper", None, 200, 128, 0.88, 1.1),
                                               ("fast", "fresh", 50, 256, 0.3, 0.6)]:
        g = torch.Generator().manual_seed(0)
        alg = run(prior, y.astype(np.complex64), dc, k=k, dtype=np.float32,
                  randn=lambda s: torch.randn(s, generator=g).numpy(), sampler=sampler,
                  num_steps=steps, renoise=renoise)
        zscore = (alg.x.mean(0) - ref) / np.sqrt(pv / k)
        assert np.sqrt(np.mean(zscore ** 2)) < 1.4, sampler
        ratio = alg.x.var(0).mean() / pv.mean()
        assert lo < ratio < hi, (sampler, renoise, ratio)


def test_general_operator_and_correlated_prior_use_the_prior():
    """Where the prior is not diagonal in the operator's basis (SENSE, or a non-stationary
    prior) projection-type samplers are not exact posterior samplers; their mean must still
    be far closer to the posterior mean than the consistent prior mean Π(μ) is. (8 x 8:
    the reference is a dense solve.)"""
    h = 8
    prior = stationary_prior((h, h))
    _, _, S = mask_and_sense((h, h), frac=0.1, centre_rows=1)
    y = S(c128(prior.sample(1, seed=1)[0]))
    ref = prior.posterior_mean(y, S, 0.0)
    dc = DataConsistency(S, max_iter=100, tol=1e-8)
    base = rel_err(dc.project(prior.mean[None], y)[0], ref, prior)
    fast = run(prior, y, dc, sampler="fast", num_steps=20)
    # consistent to the CG tolerance (the SENSE normal operator is ill-conditioned)
    assert np.linalg.norm(S(c128(fast.x[0])) - y) < 1e-3 * np.linalg.norm(y)
    assert rel_err(fast.x[0], ref, prior) < 0.5 * base
    # a non-stationary (spatially varying variance) prior with the centre crop
    yy, xx = np.mgrid[:h, :h]
    std = np.sqrt(0.5 + 1.5 * xx / h).ravel()
    dense = GaussianPrior(prior.mean, cov=prior.covariance() * np.outer(std, std))
    A = CropFourier((h, h), (4, 4))
    y = A(c128(dense.sample(1, seed=1)[0]))
    ref = dense.posterior_mean(y, A, 0.0)
    dc = DataConsistency(A)
    base = rel_err(dc.project(dense.mean[None], y)[0], ref, dense)
    for sampler, steps in [("fast", 50), ("paper", 100)]:
        out = run(dense, y, dc, sampler=sampler, num_steps=steps)
        assert rel_err(out.x[0], ref, dense) < 0.5 * base, sampler


def test_lamda_zero_ignores_the_data():
    prior = stationary_prior()
    A = CropFourier((H, H), (8, 8))
    y1 = A(c128(prior.sample(1, seed=1)[0]))
    y2 = 3 * A(c128(prior.sample(1, seed=2)[0]))
    for sampler in ("fast", "paper"):
        outs = []
        for y in (y1, y2):
            g = torch.Generator().manual_seed(5)

            def randn(s):
                return torch.randn(s, generator=g, dtype=torch.float64).numpy()
            outs.append(run(prior, y, DataConsistency(A), k=2, sampler=sampler, num_steps=10,
                            lamda=0.0, t_start=0.6, randn=randn).x)
        np.testing.assert_array_equal(outs[0], outs[1])


def test_lamda_one_reproduces_the_measured_kspace():
    prior = stationary_prior()
    A = CropFourier((H, H), (8, 8))
    y = A(prior.sample(1, seed=1)[0].astype(np.float32)).astype(np.complex64)
    g = torch.Generator().manual_seed(0)
    out = run(prior, y, DataConsistency(A), k=3, dtype=np.float32, sampler="fast", num_steps=5,
              randn=lambda s: torch.randn(s, generator=g).numpy()).x
    assert out.dtype == np.float32
    for xi in out:
        np.testing.assert_allclose(A(xi), y, atol=1e-5 * np.abs(y).max())


def test_warm_start():
    """t_start < 1 starts from the noised zero-filled image: unbiased when the prior mean has
    nothing in the unmeasured band (else it inherits the zero-filled image's bias there)."""
    yy, xx = np.mgrid[:H, :H]
    prior = GaussianPrior(0.3 + 0.2 * np.cos(2 * np.pi * xx / H),
                          variance=stationary_variance((H, H), 0.05, 2.0))
    A = CropFourier((H, H), (8, 8))
    y = A(c128(prior.sample(1, seed=1)[0]))
    for sampler in ("fast", "paper"):
        alg = run(prior, y, DataConsistency(A), sampler=sampler, num_steps=10, t_start=0.4)
        assert alg.t[0] == 0.4 and alg.nfe == 10
        assert rel_err(alg.x[0], prior.posterior_mean(y, A, 0.0), prior) < 1e-3, sampler


def test_bad_arguments():
    prior = stationary_prior()
    A = CropFourier((H, H), (8, 8))
    dc = DataConsistency(A)
    y = np.zeros((8, 8), complex)
    denoise, gamma = callables(prior)
    ok = dict(denoise=denoise, gamma=gamma, y=y, dc=dc, shape=(1, H, H))
    for kw, msg in [(dict(sampler="ddpm"), "'paper', 'fast'"), (dict(num_steps=0), "num_steps"),
                    (dict(lamda=1.5), "lamda"), (dict(eta=-0.1), "eta"),
                    (dict(time_grid="cosine"), "time_grid"), (dict(t_start=0.0), "t_start"),
                    (dict(dc_variance="exact"), "dc_variance"),
                    (dict(renoise="ddpm"), "renoise"),
                    (dict(renoise="fresh", sampler="paper"), "fast sampler"),
                    (dict(eta=0.0), "renoise='ddim'"),
                    (dict(eta=0.5, renoise="fresh"), "renoise='ddim'"),
                    (dict(shape=(1, 8, 8)), "state shape"),
                    (dict(y=np.zeros((4, 4), complex)), "y of shape")]:
        with pytest.raises(ValueError, match=msg):
            GuidedVDM(**{**ok, **kw})
    bad = GuidedVDM(**{**ok, "denoise": lambda z, t: z[:, :4]}, randn=zeros)
    with pytest.raises(ValueError, match="denoise returned shape"):
        bad.update()


# ------------------------------------------------------------------ method choice, batched CG
from mrirecon_vdm.alg import batched_cg  # noqa: E402
from mrirecon_vdm.coils import birdcage_maps  # noqa: E402
from mrirecon_vdm.linop import FourierSampling, Phase  # noqa: E402
from mrirecon_vdm.phase import smooth_phase  # noqa: E402
from mrirecon_vdm.sampling import cartesian_mask  # noqa: E402


def test_method_is_picked_from_the_operator():
    """Closed form for the crop and single-coil masks (ours and SigPy's composition give the
    same prox); CG for SENSE and for anything with a phase."""
    rng = np.random.default_rng(4)
    mask = cartesian_mask((H, H), 3, center=4, seed=1).astype(np.float64)
    maps = birdcage_maps((H, H), 3).astype(np.complex128)
    phi = smooth_phase((H, H), seed=2)
    ours = FourierSampling((H, H), mask)
    plain = sp.linop.Multiply((H, H), mask) * sp.linop.FFT((H, H), center=True)
    crop = CropFourier((H, H), (8, 8))
    for op in (crop, ours, plain):
        assert DataConsistency(op).method == "closed-form"
    for op in (FourierSampling((H, H), mask, maps=maps), sp.mri.linop.Sense(maps, weights=mask),
               ours * Phase((H, H), phi), plain * Phase((H, H), phi), crop * Phase((H, H), phi),
               crop * sp.linop.Identity((H, H))):
        assert DataConsistency(op).method == "cg"
    x = rng.standard_normal((2, H, H))
    y = ours(c128(rng.standard_normal((H, H)))) + 0.1 * ours(c128(rng.standard_normal((H, H))))
    for sigma, v in [(0.0, None), (0.2, 0.05)]:
        a = DataConsistency(ours, sigma).prox(x, y, v)
        b = DataConsistency(plain, sigma).prox(x, y, v)
        np.testing.assert_allclose(a, b, atol=1e-12)
        cg = DataConsistency(ours * sp.linop.Identity((H, H)), sigma, max_iter=300,
                             tol=1e-13).prox(x, y, v)
        np.testing.assert_allclose(a, cg, atol=1e-7)


def test_batched_cg_equals_sigpy_cg_per_system():
    """Block-diagonal SPD problem: each block follows sigpy's CG iterates exactly (checked
    after a few iterations, before convergence, and at convergence)."""
    rng = np.random.default_rng(5)
    K, n = 3, 4                                  # blocks of 4 x 4 = 16 unknowns
    mats = []
    for k in range(K):
        q = rng.standard_normal((n * n, n * n))
        mats.append(q @ q.T / (n * n) + (0.05 + 0.5 * k) * np.eye(n * n))
    mats = np.stack(mats)

    def normal(u):
        return np.einsum("kij,kj->ki", mats, u.reshape(K, -1)).reshape(u.shape)

    b = rng.standard_normal((K, n, n))
    x0 = rng.standard_normal((K, n, n))
    for iters in (1, 3, 40):
        got = batched_cg(normal, b, x0, iters, axes=(-2, -1))
        assert got.shape == b.shape
        for k in range(K):
            alg = sp.alg.ConjugateGradient(lambda u, k=k: (mats[k] @ u.ravel()).reshape(n, n),
                                           b[k].copy(), x0[k].copy(), max_iter=iters)
            while not alg.done():
                alg.update()
            np.testing.assert_allclose(got[k], alg.x, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(normal(got), b, atol=1e-8)          # converged
    # axes=None: one system (the whole array), as sigpy's CG on the whole array
    alg = sp.alg.ConjugateGradient(normal, b.copy(), x0.copy(), max_iter=5)
    while not alg.done():
        alg.update()
    np.testing.assert_allclose(batched_cg(normal, b, x0, 5), alg.x, rtol=1e-8, atol=1e-10)
    # x0 is not modified; a zero system stops at once
    x0c = x0.copy()
    batched_cg(normal, b, x0, 3, axes=(-2, -1))
    np.testing.assert_array_equal(x0, x0c)
    z = np.zeros((K, n, n))
    np.testing.assert_array_equal(batched_cg(normal, z, z, 5, tol=1e-6, axes=(-2, -1)), z)


def test_warm_started_cg_converges_to_the_cold_projection():
    """SENSE (4 birdcage coils, equispaced R = 2): prox with the default 8 warm-started
    iterations, called on a slowly changing x (as the sampler does), reaches the projection
    that a cold CG with many iterations computes; 8 cold iterations alone do not."""
    rng = np.random.default_rng(6)
    mask = cartesian_mask((H, H), 2, center=4, pattern="equispaced", seed=0)
    maps = birdcage_maps((H, H), 4).astype(np.complex128)
    S = sp.mri.linop.Sense(maps, weights=mask.astype(np.float64))
    y = S(c128(rng.standard_normal((H, H)))) + 0.1j * S(c128(rng.standard_normal((H, H))))
    cold = DataConsistency(S, max_iter=500, tol=1e-14, warm_start=False)
    dc = DataConsistency(S)
    assert dc.method == "cg" and dc.max_iter == 8
    x = rng.standard_normal((2, H, H))
    drift = rng.standard_normal((2, H, H))
    errs = []
    for k in range(12):
        xk = x + 1e-3 * k * drift
        ref = cold.prox(xk, y, None)
        errs.append(np.linalg.norm(dc.prox(xk, y, None) - ref) / np.linalg.norm(ref))
    once = DataConsistency(S, warm_start=False).prox(xk, y, None)
    first = np.linalg.norm(once - ref) / np.linalg.norm(ref)
    assert first > 0.02                  # the problem needs more than 8 iterations
    assert errs[-1] < 1e-3 and errs[-1] < 0.02 * first
    # project() does not use (or disturb) the warm start
    np.testing.assert_allclose(dc.project(xk, y), once, atol=1e-12)
    # x held fixed: the warm-started iterations converge to the CG tolerance (1e-6 of the
    # residual, times the condition number ~60 of this problem)
    for _ in range(10):
        out = dc.prox(xk, y, None)
    assert np.linalg.norm(out - ref) < 1e-4 * np.linalg.norm(ref)


def test_projection_with_a_phase_is_consistent():
    """Single-coil mask times a phase, exact data of a real image: the real least-squares
    projection reproduces the data (CG path)."""
    rng = np.random.default_rng(7)
    mask = cartesian_mask((H, H), 2, center=4, seed=3)
    phi = smooth_phase((H, H), seed=4, amplitude=1.0)
    A = FourierSampling((H, H), mask) * Phase((H, H), phi.astype(np.float64))
    x_true = rng.standard_normal((H, H))
    y = A(c128(x_true))
    dc = DataConsistency(A, max_iter=300, tol=1e-12)
    assert dc.method == "cg"
    x = dc.project(rng.standard_normal((2, H, H)), y)
    assert x.dtype == np.float64
    # (the real normal operator of a phase-carrying mask is ill-conditioned: where neither
    # k nor -k is sampled, only the phase's leakage is seen; 8 iterations leave ~3 %)
    for xi in x:
        assert np.linalg.norm(A(c128(xi)) - y) < 1e-4 * np.linalg.norm(y)
    # an image that is already consistent does not move
    np.testing.assert_allclose(dc.project(x_true[None], y)[0], x_true, atol=1e-10)


@pytest.mark.parametrize("coils", [False, True])
def test_data_step_after_a_phase_refinement_equals_a_fresh_one(coils):
    """After ``refine_phase`` (which keeps A₀ᴴy and derives Re Aᴴy from it without an FFT)
    the data step is that of a new DataConsistency built on the refined phase, and σ̂ that
    of a fresh structure."""
    from mrirecon_vdm.coils import birdcage_maps
    from mrirecon_vdm.phase import refine_window

    rng = np.random.default_rng(8)
    mask = cartesian_mask((H, H), 2, center=6, seed=3)
    maps = birdcage_maps((H, H), 4) if coils else None
    phi = smooth_phase((H, H), seed=4)
    A0 = FourierSampling((H, H), mask, maps=maps)
    x_true = rng.uniform(0.2, 1.0, (H, H)).astype(np.float32)
    y = A0(x_true * np.exp(1j * phi)).astype(np.complex64)
    start = (phi + 0.2).astype(np.float32)
    dc = DataConsistency(A0 * Phase((H, H), start), sigma=0.01, warm_start=False)
    x = rng.uniform(0.2, 1.0, (2, H, H)).astype(np.float32)
    dc.prox(x, y, 1e-2)                                   # the caches filled
    e = dc.refine_phase(y, x_true, refine_window(y, dc.structure))
    fresh = DataConsistency(A0 * Phase((H, H), np.angle(e).astype(np.float32)), sigma=0.01,
                            warm_start=False)
    np.testing.assert_allclose(dc.prox(x, y, 1e-2), fresh.prox(x, y, 1e-2), atol=2e-5)
    # σ̂ keeps the calibration image of y on the structure: the same as a fresh one's
    from mrirecon_vdm.noise import estimate_sigma
    before = estimate_sigma(y, dc.structure)
    dc.refine_phase(y, x_true, refine_window(y, dc.structure))
    again = DataConsistency(A0 * Phase((H, H), np.angle(dc.structure.phase)), sigma=0.01)
    after = estimate_sigma(y, dc.structure)
    assert after == pytest.approx(estimate_sigma(y, again.structure), rel=1e-5)
    if coils:
        # the coil model's misfit S (Sᴴ u) does not see a phase common to every coil
        assert after == pytest.approx(before, rel=1e-5)
    else:
        # one coil: the misfit is the part of the data off the phase, so the refined phase
        # moves σ̂ (here by about 1e-3 relative), well beyond float rounding
        assert abs(after - before) > 1e-4 * before


def test_the_support_of_the_coil_maps_is_a_constraint():
    """Where every map is zero the data see nothing: the step sets the image to 0 there."""
    from mrirecon_vdm.linop import FourierSampling

    rng = np.random.default_rng(4)
    mask, _, S = mask_and_sense()
    maps = np.stack([np.ones((H, H)), 1j * np.ones((H, H))]).astype(np.complex64) / np.sqrt(2)
    maps[:, :, :3] = 0                                        # three columns outside
    A = FourierSampling((H, H), mask, maps=maps)
    dc = DataConsistency(A, max_iter=30)
    assert dc.support is not None and dc.support[:, :3].sum() == 0
    y = A(rng.standard_normal((H, H)).astype(np.float32))
    x = rng.standard_normal((2, H, H)).astype(np.float32)
    for out in (dc.project(x, y), dc.prox(x, y, 0.1)):
        assert np.all(out[:, :, :3] == 0) and np.abs(out[:, :, 3:]).max() > 0
    assert DataConsistency(S).support is None                 # maps everywhere: no support


def test_dc_variance_floor():
    """The fast sampler's data step gets v_t = max(σ_t²/α_t², floor): late steps (v_t → 0)
    then still weigh noisy data; the floor changes nothing with σ = 0; bad floors are
    refused."""
    prior = stationary_prior()
    rng = np.random.default_rng(4)
    A = CropFourier((H, H), (8, 8))
    y = A(c128(prior.sample(1, seed=2)[0])) + 0.05 * (rng.standard_normal((8, 8))
                                                      + 1j * rng.standard_normal((8, 8)))

    class Spy(DataConsistency):
        def prox(self, x, y, v):
            self.seen.append(v)
            return super().prox(x, y, v)

    out = {}
    for floor in (0.0, 1e-2):
        dc = Spy(A, 0.05)
        dc.seen = []
        out[floor] = run(prior, y, dc, sampler="fast", num_steps=10, dc_variance_floor=floor).x
        assert min(dc.seen) >= floor and len(dc.seen) == 10
        if floor:
            assert dc.seen[-1] == floor
        else:
            assert dc.seen[-1] < 1e-2
    assert np.abs(out[0.0] - out[1e-2]).max() > 1e-3
    y0 = A(c128(prior.sample(1, seed=2)[0]))
    same = [run(prior, y0, DataConsistency(A), sampler="fast", num_steps=5,
                dc_variance_floor=f).x for f in (0.0, 1e-2)]
    np.testing.assert_allclose(same[0], same[1], rtol=0, atol=1e-12)
    denoise, gamma = callables(prior)
    for bad in (-1e-3, float("nan"), True, "1e-3"):
        with pytest.raises(ValueError, match="dc_variance_floor"):
            GuidedVDM(denoise, gamma, y, DataConsistency(A, 0.05), (1, H, H),
                      dc_variance_floor=bad)
