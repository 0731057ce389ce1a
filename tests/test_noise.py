"""GaussianNoise and simulate_lowres: immutability, seeds, statistics, shapes and errors."""
import dataclasses

import numpy as np
import pytest

from mrirecon_vdm.linop import CropFourier
from mrirecon_vdm.noise import GaussianNoise, simulate_lowres


def test_immutable_and_call_does_not_change_it():
    n = GaussianNoise(0.5, seed=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        n.sigma = 1.0
    y = np.zeros((4, 4), np.complex64)
    a = n(y)
    assert n.sigma == 0.5 and n.seed == 3
    np.testing.assert_array_equal(n(y), a)  # same object, same input -> same output
    assert not np.shares_memory(a, y) and np.all(y == 0)


def test_same_seed_same_noise_and_seed_zero_honoured():
    y = np.zeros((32, 32), np.complex64)
    np.testing.assert_array_equal(GaussianNoise(1.0, seed=0)(y), GaussianNoise(1.0, seed=0)(y))
    assert not np.array_equal(GaussianNoise(1.0, seed=0)(y), GaussianNoise(1.0, seed=1)(y))
    # seed=None draws fresh entropy each call
    n = GaussianNoise(1.0)
    assert not np.array_equal(n(y), n(y))


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_statistics(dtype):
    sigma = 0.3
    e = GaussianNoise(sigma, seed=0).sample((400, 500), dtype=dtype)
    assert e.dtype == dtype and e.shape == (400, 500)
    # total variance sigma^2, split evenly between real and imaginary parts
    assert np.mean(np.abs(e) ** 2) == pytest.approx(sigma ** 2, rel=0.02)
    assert np.var(e.real) == pytest.approx(sigma ** 2 / 2, rel=0.02)
    assert np.var(e.imag) == pytest.approx(sigma ** 2 / 2, rel=0.02)
    assert abs(np.mean(e)) < 0.01
    assert abs(np.mean(e.real * e.imag)) < 0.01 * sigma ** 2 * 5


def test_real_statistics_and_zero_sigma():
    e = GaussianNoise(2.0, seed=1).sample((300, 300), dtype=np.float32)
    assert e.dtype == np.float32
    assert np.var(e) == pytest.approx(4.0, rel=0.02)
    y = np.ones((3, 3), np.complex64)
    out = GaussianNoise(0.0)(y)
    np.testing.assert_array_equal(out, y)
    assert out is not y


@pytest.mark.parametrize("sigma", [-1.0, np.nan, np.inf, "a", None])
def test_bad_sigma(sigma):
    with pytest.raises(ValueError, match="sigma"):
        GaussianNoise(sigma)


def test_noise_in_kspace_is_white_in_the_image():
    """Orthonormal FFT: k-space noise of std sigma is image noise of std sigma."""
    A = CropFourier((64, 64), (64, 64))
    e = GaussianNoise(0.1, seed=2).sample((64, 64))
    assert np.mean(np.abs(A.H(e)) ** 2) == pytest.approx(0.01, rel=0.05)


def test_simulate_lowres_shapes_and_dtypes():
    x = np.random.default_rng(0).random((2, 16, 12)).astype(np.float32)
    y = simulate_lowres(x, (8, 6))
    assert y.shape == (2, 8, 6) and y.dtype == np.complex64
    np.testing.assert_allclose(y, CropFourier(x.shape, (2, 8, 6))(x), atol=1e-5)
    assert simulate_lowres(x.astype(np.float64), (8, 6)).dtype == np.complex128
    a = simulate_lowres(x, (8, 6), sigma=0.1, seed=0)
    np.testing.assert_array_equal(a, simulate_lowres(x, (8, 6), sigma=0.1, seed=0))
    assert np.std(a - y) == pytest.approx(0.1, rel=0.2)


def test_simulate_lowres_errors():
    x = np.ones((16, 16), np.float32)
    with pytest.raises(ValueError, match="complex"):
        simulate_lowres(x.astype(np.complex64), (8, 8))
    bad = x.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        simulate_lowres(bad, (8, 8))
    with pytest.raises(ValueError, match="at least 2"):
        simulate_lowres(np.ones(16, np.float32), (8, 8))
    with pytest.raises(ValueError, match=r"\(m1, m2\)"):
        simulate_lowres(x, (8,))
    with pytest.raises(ValueError, match="must not exceed"):
        simulate_lowres(x, (32, 8))
    with pytest.raises(ValueError, match="sigma"):
        simulate_lowres(x, (8, 8), sigma=-1)


# ------------------------------------------------------------------ estimate_sigma
import sigpy as sp  # noqa: E402
import sigpy.mri  # noqa: E402,F401  (sp.mri.linop)

from mrirecon_vdm.coils import birdcage_maps  # noqa: E402
from mrirecon_vdm.linop import FourierSampling, Phase  # noqa: E402
from mrirecon_vdm.noise import estimate_sigma  # noqa: E402
from mrirecon_vdm.phase import smooth_phase  # noqa: E402
from mrirecon_vdm.sampling import cartesian_mask  # noqa: E402

H = 32


def coil_problem(coils=4, center=12, shape=(H, H)):
    """Noiseless multi-coil k-space of a smooth object with a smooth phase (true maps)."""
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    obj = np.exp(-((yy - shape[0] / 2) ** 2 + (xx - shape[1] / 2) ** 2) / (2 * (shape[0] / 5) ** 2))
    img = obj * np.exp(1j * smooth_phase(shape, seed=0, amplitude=1.0))
    mask = cartesian_mask(shape, 2, center=center, seed=0)
    A = FourierSampling(shape, mask, maps=birdcage_maps(shape, coils))
    return A, A(img).astype(np.complex64), mask, img


def noisy(y, sigma, seed, mask=None):
    out = GaussianNoise(sigma, seed)(y)
    return (out if mask is None else out * mask).astype(np.complex64)


def expected_ratio(coils):
    """E σ̂ / σ for white noise and exact maps: the residual u − S Sᴴ u keeps C − 1 of
    the C noise dimensions per pixel and σ̂ divides by C − 1: unbiased."""
    return 1.0


def test_estimate_sigma_single_coil_with_a_phase():
    """One coil and a known phase: the imaginary part in the phase's frame is noise only
    (half of it), so σ̂ estimates σ."""
    sigma = 0.05
    _, _, mask, img = coil_problem(2)
    phi = smooth_phase((H, H), seed=0, amplitude=1.0)
    A = FourierSampling((H, H), mask) * Phase((H, H), phi)
    y0 = A(np.abs(img)).astype(np.complex64)
    assert estimate_sigma(y0, A) < 0.05 * sigma      # the truncated calibration only
    est = np.mean([estimate_sigma(noisy(y0, sigma, s, mask), A) for s in range(4)])
    assert est / sigma == pytest.approx(1.0, rel=0.15)


def test_estimate_sigma_takes_the_structure_and_caches_the_calibration():
    """The samplers' refinement passes the data consistency's FourierStructure: the same σ̂
    as from the operator, the calibration region found once per mask (and again for a new
    mask), the phase read at every call."""
    from mrirecon_vdm.linop import fourier_structure
    _, _, mask, img = coil_problem(2)
    phi = smooth_phase((H, H), seed=0, amplitude=1.0)
    A = FourierSampling((H, H), mask) * Phase((H, H), phi)
    y = noisy(A(np.abs(img)).astype(np.complex64), 0.05, 0, mask)
    st = fourier_structure(A)
    assert estimate_sigma(y, st) == pytest.approx(estimate_sigma(y, A), rel=1e-6)
    first = st.calibration()
    assert estimate_sigma(y, st) == pytest.approx(estimate_sigma(y, A), rel=1e-6)
    assert st.calibration() is first                       # found once per mask
    st.phase = np.exp(1j * smooth_phase((H, H), seed=5, amplitude=1.0)).astype(np.complex64)
    other = FourierSampling((H, H), mask) * Phase((H, H), np.angle(st.phase))
    assert estimate_sigma(y, st) == pytest.approx(estimate_sigma(y, other), rel=1e-5)
    st.mask = st.mask.copy()
    again = st.calibration()
    assert again is not first and again == first


def test_mirror_pairs_on_even_and_odd_grids():
    """mirror_pairs keeps a sample when its mirror −k (index (2⌊N/2⌋ − j) mod N on the centred
    grid, so an even size's Nyquist line is its own mirror) is sampled too."""
    from mrirecon_vdm.noise import mirror_pairs
    rng = np.random.default_rng(0)
    for shape in ((8, 8), (7, 9), (6, 5)):
        mask = (rng.random(shape) < 0.5).astype(np.float32)
        pairs = mirror_pairs(mask)
        for i in range(shape[0]):
            for j in range(shape[1]):
                mi = (2 * (shape[0] // 2) - i) % shape[0]
                mj = (2 * (shape[1] // 2) - j) % shape[1]
                assert pairs[i, j] == mask[i, j] * mask[mi, mj]
        # the mirror of a real image's k-space is its conjugate on the same index map
        x = rng.random(shape)
        k = sp.fft(x, center=True)
        mk = np.roll(np.flip(k), tuple(1 - n % 2 for n in shape), axis=(0, 1))
        np.testing.assert_allclose(mk, k.conj(), atol=1e-5)
    stack = np.stack([np.ones((4, 4), np.float32), np.zeros((4, 4), np.float32)])
    assert mirror_pairs(stack).shape == (2, 4, 4) and mirror_pairs(stack)[1].sum() == 0


def test_estimate_sigma_single_coil_without_a_phase_reads_the_antihermitian_part():
    """One coil, no phase: the model is a real image, whose k-space is Hermitian, so the
    measured pairs (k, −k) show the noise and nothing of the image: exactly 0 for noiseless
    data, σ within 15 % with noise, for masks, a crop, odd sizes and stacks; capped by the
    high-pass bound (data with a phase the operator does not model); 0 without a Fourier
    structure or without a measured pair."""
    rng = np.random.default_rng(1)
    for shape in ((32, 32), (31, 33)):
        x = rng.random((3,) + shape).astype(np.float32)
        mask = cartesian_mask(shape, 2, center=8, seed=0)
        for A in (FourierSampling(shape, mask),
                  CropFourier(shape, (16, 16)),
                  sp.linop.Multiply(shape, mask.astype(np.float32))
                  * sp.linop.FFT(shape, center=True)):
            y0 = np.stack([A(xi) for xi in x]).astype(np.complex64)
            assert estimate_sigma(y0[0], A) == 0.0
            sig = 0.05
            y = noisy(y0[0], sig, 3, mask=None if isinstance(A, CropFourier) else mask)
            assert abs(estimate_sigma(y, A) / sig - 1) < 0.15
        # a stack of slices, one operator with leading axes
        As = FourierSampling((3,) + shape, mask)
        ys = As(x).astype(np.complex64)
        assert estimate_sigma(ys, As) == 0.0
        assert abs(estimate_sigma(noisy(ys, 0.05, 4, mask=mask), As) / 0.05 - 1) < 0.15
    # a phase the operator does not model: the estimate is at most the high-pass bound
    A = FourierSampling((32, 32), cartesian_mask((32, 32), 2, center=8, seed=0))
    img = rng.random((32, 32)) * np.exp(1j * smooth_phase((32, 32), seed=2, amplitude=2.0))
    y = A(img).astype(np.complex64)
    assert 0 < estimate_sigma(y, A) <= highpass_sigma(y, A) + 1e-12
    # nothing to compare: a mask without a mirror pair, an unknown operator
    lone = np.zeros((16, 16), np.float32)
    lone[9, 3] = lone[10, 5] = 1
    A = FourierSampling((16, 16), lone)
    y = (rng.standard_normal(A.oshape) + 1j * rng.standard_normal(A.oshape)) * lone
    assert estimate_sigma(y.astype(np.complex64), A) == 0.0
    B = sp.linop.Identity((16, 16))
    assert estimate_sigma(np.ones((16, 16), np.complex64), B) == 0.0


def test_estimate_sigma_with_true_maps_and_known_noise():
    """σ = 0.05 on a 32 x 32 object, 4 coils, a fully sampled centre of 12 lines: σ̂ is within
    30 % of σ."""
    sigma = 0.05
    A, y0, mask, _ = coil_problem(4)
    # noiseless with exact maps: only the truncation of the calibration region remains
    assert estimate_sigma(y0, A) < 0.03 * sigma
    est = [estimate_sigma(noisy(y0, sigma, s, mask), A) for s in range(3)]
    for e in est:
        assert abs(e - sigma) < 0.3 * sigma
    # linear in the data
    assert estimate_sigma(3 * noisy(y0, sigma, 0, mask), A) == pytest.approx(3 * est[0], rel=1e-4)
    # a phase in the operator changes nothing (|e^{iφ}| = 1 cancels in the residual)
    P = A * Phase((H, H), smooth_phase((H, H), seed=1))
    assert estimate_sigma(noisy(y0, sigma, 0, mask), P) == pytest.approx(est[0], rel=1e-4)
    # more noise, proportionally more σ̂
    assert estimate_sigma(noisy(y0, 4 * sigma, 0, mask), A) == pytest.approx(4 * est[0], rel=0.05)


@pytest.mark.parametrize("coils", [2, 4, 8])
def test_estimate_sigma_degrees_of_freedom(coils):
    sigma = 0.05
    A, y0, mask, img = coil_problem(coils)
    est = np.mean([estimate_sigma(noisy(y0, sigma, s, mask), A) for s in range(3)])
    assert est / sigma == pytest.approx(expected_ratio(coils), rel=0.06)
    # the crop (multi-coil super-resolution) and SigPy's Sense read the same way
    maps = birdcage_maps((H, H), coils)
    C = CropFourier((coils, H, H), (coils, 12, 12)) * sp.linop.Multiply((H, H), maps)
    yc = C(img).astype(np.complex64)
    est = np.mean([estimate_sigma(noisy(yc, sigma, s), C) for s in range(3)])
    assert est / sigma == pytest.approx(expected_ratio(coils), rel=0.08)
    S = sp.mri.linop.Sense(maps, weights=mask.astype(np.float32))
    yn = noisy(y0, sigma, 0, mask)
    assert estimate_sigma(yn, S) == pytest.approx(estimate_sigma(yn, A), rel=1e-5)


def test_estimate_sigma_per_slice_and_errors():
    sigma = 0.05
    A, y0, mask, img = coil_problem(4)
    maps = birdcage_maps((H, H), 4)
    A2 = FourierSampling((2, H, H), np.stack([mask, mask]), maps=np.stack([maps, maps]))
    y2 = A2(np.stack([img, 2 * img])).astype(np.complex64)
    est = estimate_sigma(noisy(y2, sigma, 0, mask), A2)
    assert est / sigma == pytest.approx(expected_ratio(4), rel=0.08)
    narrow = np.zeros((H, H), bool)
    narrow[:, [0, 5, 15, 16, 17, 25]] = True          # a centre of 3 columns
    B = FourierSampling((H, H), narrow, maps=maps)
    with pytest.raises(ValueError, match="at least 4 x 4"):
        estimate_sigma(B(img).astype(np.complex64), B)


def test_simulate_lowres_refuses_what_it_cannot_represent():
    """Reliability issue, item 4: a finite but huge image gave k-space with Inf (only a
    numpy warning); lists and object arrays reached numpy's TypeError/AttributeError."""
    huge = np.full((16, 16), 3e38, np.float32)
    with pytest.raises(ValueError, match="overflows complex64.*float64"):
        simulate_lowres(huge, (8, 8))
    assert np.all(np.isfinite(simulate_lowres(huge.astype(np.float64), (8, 8))))
    for bad in (huge.tolist(), huge.astype(object)):
        with pytest.raises(ValueError, match="simulate_lowres x_hr"):
            simulate_lowres(bad, (8, 8))
    with pytest.raises(ValueError, match="GaussianNoise y"):
        GaussianNoise(0.1, seed=0)([1.0, 2.0])


# --------------------------------------------------------------- the high-pass bound
from mrirecon_vdm.noise import highpass_sigma  # noqa: E402


@pytest.mark.parametrize("kind", ["mask", "crop", "coils", "slices"])
def test_highpass_sigma_of_white_noise(kind):
    """Noise alone: a quantile of the outer band's image estimates σ, whichever quantile
    (the object's detail is what makes it an upper bound on real data)."""
    sigma, n = 0.05, 64
    mask = cartesian_mask((n, n), 4, center=8, seed=1)
    A = {"mask": FourierSampling((n, n), mask),
         "crop": CropFourier((n, n), (32, 32)),
         "coils": FourierSampling((n, n), mask, maps=birdcage_maps((n, n), 4)),
         "slices": FourierSampling((3, n, n), np.stack([mask] * 3))}[kind]
    y = GaussianNoise(sigma, 0).sample(A.oshape)
    if kind != "crop":
        y = y * (mask if kind != "coils" else mask[None])
    for q in (None, 0.1, 0.5):
        assert highpass_sigma(y, A, quantile=q) / sigma == pytest.approx(1.0, rel=0.1)


def test_highpass_sigma_bounds_noiseless_detail_and_checks_its_input():
    """A smooth noiseless object has almost nothing in the outer band; a mask with nothing
    there gives no bound (inf); the band must lie in (0, 1)."""
    _, _, mask, img = coil_problem(2)
    A = FourierSampling((H, H), mask)
    y = A(np.abs(img)).astype(np.complex64)
    assert highpass_sigma(y, A) < 1e-3 * float(np.abs(y).max())
    centre = np.zeros((H, H), np.float32)
    centre[H // 2 - 4:H // 2 + 4, H // 2 - 4:H // 2 + 4] = 1
    assert highpass_sigma(y * centre, FourierSampling((H, H), centre)) == float("inf")
    for band in (0, 1, -0.5, 1.5):
        with pytest.raises(ValueError, match="band must be in"):
            highpass_sigma(y, A, band=band)
        with pytest.raises(ValueError, match="quantile must be in"):
            highpass_sigma(y, A, quantile=band)
    assert highpass_sigma(y, sp.linop.Identity((H, H))) == float("inf")


def test_estimate_sigma_one_coil_with_a_phase_is_at_most_the_highpass_bound(monkeypatch):
    """One coil and a phase: the smallest of the misfit, its band far from the calibration
    region's edges and low frequencies, and the high-pass bound; ``upper`` replaces the
    bound (the samplers compute it once); with coil maps it plays no part."""
    import mrirecon_vdm.noise as noise_mod
    sigma = 0.05
    _, _, mask, img = coil_problem(2)
    wrong = smooth_phase((H, H), seed=3, amplitude=1.0)     # a poor phase: large misfit
    A = FourierSampling((H, H), mask) * Phase((H, H), wrong)
    y = noisy(FourierSampling((H, H), mask)(
        img * np.exp(1j * smooth_phase((H, H), seed=0, amplitude=1.0))), sigma, 0, mask)
    hp = highpass_sigma(y, A)
    # the band reads the noise through a poor phase too (its error is at low frequencies)
    assert estimate_sigma(y, A) <= hp
    assert estimate_sigma(y, A) == pytest.approx(sigma, rel=0.2)
    monkeypatch.setattr(noise_mod, "CALIBRATION_BAND", None)       # misfit and high-pass bound only
    assert estimate_sigma(y, A) == pytest.approx(hp, rel=1e-6)       # the misfit is larger
    assert estimate_sigma(y, A, upper=0.01) == pytest.approx(0.01)
    assert estimate_sigma(y, A, upper=1e9) > 2 * hp                   # the misfit alone
    Ac, yc, _, _ = coil_problem(4)
    assert estimate_sigma(yc, Ac, upper=0.0) == pytest.approx(estimate_sigma(yc, Ac))


def test_calibration_band_geometry():
    """The band of the one-coil phase misfit: a line mask's calibration region (every
    readout frequency, 10 lines) keeps its inner 6 lines and the outer quarter of the
    readout; a region too small for the edges to leave anything keeps nothing."""
    from mrirecon_vdm.noise import _calibration_band
    b = _calibration_band((128, 128), (128, 10), np)
    rows, cols = np.nonzero(b)
    assert set(cols.tolist()) == set(range(64 - 3, 64 + 3))
    assert np.all(np.abs(rows - 64) >= 48) and b.sum() == 6 * (2 * 16 + 1)
    assert _calibration_band((32, 32), (4, 4), np).sum() == 0


@pytest.mark.parametrize("hr, cal", [((24, 20), (24, 12)), ((21, 19), (9, 19)),
                                      ((20, 20), (20, 11))])
def test_noise_kept_is_the_sum_of_its_formula(hr, cal):
    """The band's noise share through the data-only correlation weight equals the literal
    Σ_band ½(w(k) + w(−k)), w = |K|² ⊛ box by a direct circular convolution on the centred
    grid, K the centred orthonormal FFT of e^{−iφ} (odd and even sizes)."""
    from mrirecon_vdm.linop import plain_fft
    from mrirecon_vdm.noise import _band, _calibration_band, _mirror, _noise_kept
    n = hr[0] * hr[1]
    e = np.exp(1j * smooth_phase(hr, seed=2, amplitude=2.0)).astype(np.complex64)
    box = sp.resize(np.ones(cal, np.float32), hr)
    band = _calibration_band(hr, cal, np)
    assert band.sum() > 0
    k2 = np.abs(sp.fft(e.conj(), center=True)) ** 2            # centred, Σ = N
    w = np.zeros(hr)
    for j0, j1 in np.ndindex(*hr):                               # w(k) = Σ_j |K(j)|² box(k − j)
        w += k2[j0, j1] / n * np.roll(box, (j0 - hr[0] // 2, j1 - hr[1] // 2), axis=(0, 1))
    literal = float((0.5 * (w + _mirror(w, np)) * band).sum())
    box_fft = plain_fft(np.fft.ifftshift(box).astype(np.complex64), (-2, -1))
    weight = _band({"box_fft": box_fft}, hr, cal, np)["weight"]
    assert _noise_kept(e, weight, np) == pytest.approx(literal, rel=1e-5)


def test_the_band_reads_little_on_noiseless_data_and_the_noise_on_noisy(monkeypatch):
    """One coil, a known phase, an object with fine detail (whose frequencies just outside
    the calibration region the phase carries into it): noiseless, the band misfit reads under
    a third of what the misfit over the whole region reads; with noise it reads the
    noise (the normalisation by the share of noise the demodulation keeps)."""
    import mrirecon_vdm.noise as noise_mod
    rng = np.random.default_rng(3)
    n = 64
    yy, xx = np.mgrid[:n, :n]
    obj = ((yy - n / 2) ** 2 + (xx - n / 2) ** 2 < (n / 3) ** 2) * (0.6 + 0.4 * rng.random((n, n)))
    phi = smooth_phase((n, n), seed=1)
    mask = cartesian_mask((n, n), 3, center=10, seed=0)
    A0 = FourierSampling((n, n), mask)
    y = A0(obj * np.exp(1j * phi)).astype(np.complex64)
    A = A0 * Phase((n, n), phi)
    band = estimate_sigma(y, A, upper=1e9)
    monkeypatch.setattr(noise_mod, "CALIBRATION_BAND", None)
    whole = estimate_sigma(y, A, upper=1e9)
    assert band < 0.35 * whole
    monkeypatch.undo()
    sigma = 0.05
    reads = [estimate_sigma(noisy(y, sigma, s, mask), A, upper=1e9) for s in range(8)]
    assert np.mean(reads) == pytest.approx(sigma, rel=0.1)
