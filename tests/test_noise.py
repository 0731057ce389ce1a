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
