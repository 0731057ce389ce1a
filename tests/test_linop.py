"""CropFourier / ZeroFillIFFT: adjoint identity, the numpy formula, BART, intensity,
composition with SigPy linops and shape errors."""
import numpy as np
import pytest
import sigpy as sp

from mrirecon_vdm.config import bart_available
from mrirecon_vdm.linop import (CropFourier, ZeroFillIFFT, kspace_to_lowres_image,
                                lowres_image_to_kspace, zero_filled)

SHAPES = [  # (image shape, measurement shape): square, non-square, odd, batch / coil axes
    ((16, 16), (8, 8)),
    ((12, 10), (5, 7)),
    ((9, 11), (4, 5)),
    ((7, 7), (7, 7)),
    ((3, 12, 9), (3, 6, 5)),
    ((2, 3, 8, 6), (2, 3, 3, 3)),
]


def crandn(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def numpy_crop_fourier(x, lr):
    """The plain numpy formula: centred orthonormal FFT, then the central block
    (centre of an axis of size n at index n // 2)."""
    k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"),
                        axes=(-2, -1))
    sl = [slice(None)] * (x.ndim - 2)
    for n, m in zip(x.shape[-2:], lr):
        start = n // 2 - m // 2
        sl.append(slice(start, start + m))
    return k[tuple(sl)]


@pytest.mark.parametrize("ishape,oshape", SHAPES)
def test_adjoint_identity(ishape, oshape):
    A = CropFourier(ishape, oshape)
    x, y = crandn(ishape, 1), crandn(oshape, 2)
    lhs = np.vdot(A(x), y)
    rhs = np.vdot(x, A.H(y))
    assert abs(lhs - rhs) <= 1e-10 * abs(lhs)
    assert isinstance(A.H, ZeroFillIFFT) and isinstance(A.H.H, CropFourier)


@pytest.mark.parametrize("ishape,oshape", SHAPES)
def test_a_ah_is_identity(ishape, oshape):
    A = CropFourier(ishape, oshape)
    y = crandn(oshape, 3)
    np.testing.assert_allclose(A(A.H(y)), y, atol=1e-12)


@pytest.mark.parametrize("ishape,oshape", SHAPES)
def test_matches_numpy_formula(ishape, oshape):
    x = crandn(ishape, 4)
    np.testing.assert_allclose(CropFourier(ishape, oshape)(x),
                               numpy_crop_fourier(x, oshape[-2:]), atol=1e-12)


@pytest.mark.skipif(not bart_available(), reason="BART (binary + mrbart) not installed")
@pytest.mark.bart
@pytest.mark.parametrize("shape", [(16, 16), (9, 12), (7, 6)])
def test_fft_step_matches_bart(shape):
    from mrirecon_vdm.bart import bart

    x = crandn(shape, 5).astype(np.complex64)
    np.testing.assert_allclose(CropFourier(shape, shape)(x), bart(1, "fft -u 3", x), atol=1e-5)
    lr = (shape[0] // 2, shape[1] // 2)
    expected = sp.resize(bart(1, "fft -u 3", x), lr)
    np.testing.assert_allclose(CropFourier(shape, lr)(x), expected, atol=1e-5)


@pytest.mark.parametrize("hr,lr", [((16, 16), (4, 4)), ((12, 10), (5, 7)), ((9, 11), (3, 4))])
def test_constant_image_keeps_its_intensity(hr, lr):
    c = 0.37
    k = lowres_image_to_kspace(np.full(lr, c), hr)
    # DC of the N1 x N2 orthonormal k-space of a constant c is c sqrt(N1 N2)
    assert k[lr[0] // 2, lr[1] // 2] == pytest.approx(c * np.sqrt(np.prod(hr)))
    np.testing.assert_allclose(zero_filled(k, hr), c, atol=1e-6)
    np.testing.assert_allclose(kspace_to_lowres_image(k, hr), c, atol=1e-6)
    # the HR constant image measured by A gives back the same LR image
    A = CropFourier(hr, lr)
    np.testing.assert_allclose(kspace_to_lowres_image(A(np.full(hr, c)), hr), c, atol=1e-6)


def test_real_float64_input_keeps_double_precision():
    x = np.random.default_rng(0).random((16, 16))
    A = CropFourier((16, 16), (8, 8))
    exact = A(x.astype(np.complex128))
    assert A(x).dtype == np.complex128
    np.testing.assert_allclose(A(x), exact, atol=1e-12)


def test_lowres_roundtrip_with_batch_axes():
    x = crandn((2, 6, 5), 6)
    np.testing.assert_allclose(kspace_to_lowres_image(lowres_image_to_kspace(x, (12, 10)),
                                                      (12, 10)), x, atol=1e-12)


def test_composition_with_sigpy_linops():
    ishape, oshape = (12, 10), (6, 4)
    A = CropFourier(ishape, oshape)
    x = crandn(ishape, 7)
    w = crandn(ishape, 8)
    M = sp.linop.Multiply(ishape, w)
    AM = A * M
    np.testing.assert_allclose(AM(x), A(w * x), atol=1e-12)
    np.testing.assert_allclose(AM.H(A(x)), np.conj(w) * A.H(A(x)), atol=1e-12)
    # normal operator: A^H A is the orthogonal projection onto the measured frequencies
    N = A.N
    np.testing.assert_allclose(N(N(x)), N(x), atol=1e-12)
    np.testing.assert_allclose(N(x), A.H(A(x)), atol=1e-12)
    # scalar multiples and sums compose and keep the adjoint
    B = 2 * A + A
    y = crandn(oshape, 9)
    assert abs(np.vdot(B(x), y) - np.vdot(x, B.H(y))) < 1e-10 * abs(np.vdot(B(x), y))
    # with a SigPy FFT: A F^H = crop of the image's own centred spectrum
    F = sp.linop.FFT(ishape, center=True)
    np.testing.assert_allclose((A * F.H)(F(x)), A(x), atol=1e-12)


@pytest.mark.parametrize("ishape,oshape,match", [
    ((16, 16), (16,), "at least 2"),
    ((16,), (8, 8), "at least 2"),
    ((2, 16, 16), (8, 8), "same rank"),
    ((16, 16), (1, 8, 8), "same rank"),
    ((16, 16), (17, 8), "must not exceed"),
    ((16, 16), (8, 20), "must not exceed"),
    ((2, 16, 16), (3, 8, 8), "leading"),
    ((0, 16), (0, 8), "positive"),
])
def test_bad_shapes(ishape, oshape, match):
    with pytest.raises(ValueError, match=match):
        CropFourier(ishape, oshape)
    with pytest.raises(ValueError, match=match):
        ZeroFillIFFT(ishape, oshape)


def test_apply_checks_rank_and_shape():
    A = CropFourier((16, 16), (8, 8))
    with pytest.raises(ValueError, match="CropFourier"):
        A(np.zeros((1, 16, 16), np.complex64))  # rank mismatch that SigPy's zip check misses
    with pytest.raises(ValueError, match="shape"):
        A(np.zeros((16, 15), np.complex64))
    with pytest.raises(ValueError, match="ZeroFillIFFT"):
        A.H(np.zeros((16, 16), np.complex64))
    with pytest.raises(ValueError, match="at least 2"):
        zero_filled(np.zeros((8, 8)), (16,))
    with pytest.raises(ValueError, match="must not exceed"):
        kspace_to_lowres_image(np.zeros((8, 8), np.complex64), (4, 4))
