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


def test_lists_object_arrays_and_non_integer_shapes_are_refused():
    """Reliability issue, item 9: lists and object arrays get a named ValueError (not
    NotImplemented or numpy's TypeError), float and string sizes are not truncated."""
    A = CropFourier((8, 8), (4, 4))
    x = np.ones((8, 8), np.float32)
    for bad in (x.tolist(), x.astype(object)):
        for call in (A, A.apply, lambda v: A * v):
            with pytest.raises(ValueError, match="CropFourier input"):
                call(bad)
        with pytest.raises(ValueError, match="ZeroFillIFFT input"):
            A.H(bad[:4] if isinstance(bad, list) else bad[:4, :4])
    for fn in (lowres_image_to_kspace, kspace_to_lowres_image, zero_filled):
        with pytest.raises(ValueError, match=fn.__name__):
            fn(x[:4, :4].tolist(), (8, 8))
    for shape in ((128.7, 128), ("128", 128), (128.0, 128), (True, 128)):
        with pytest.raises(ValueError, match=r"sequence of ints.*\(.* is a "):
            CropFourier(shape, (32, 32))
    with pytest.raises(ValueError, match="sequence of ints"):
        CropFourier("128", (32, 32))
    assert CropFourier((np.int64(8), 8), (np.int32(4), 4)).ishape == [8, 8]


# ------------------------------------------------------------------ Fourier sampling
import sigpy.mri  # noqa: E402,F401  (sp.mri.linop)

from mrirecon_vdm.coils import birdcage_maps  # noqa: E402
from mrirecon_vdm.linop import FourierSampling, Phase, fourier_structure  # noqa: E402


def rmask(shape, seed=0, frac=0.4):
    """A random 0/1 pattern with the centre sampled (every image samples something)."""
    m = np.random.default_rng(seed).random(shape) < frac
    m[..., shape[-2] // 2, shape[-1] // 2] = True
    return m


def adjoint_gap(A, seed=0):
    x, y = crandn(tuple(A.ishape), seed), crandn(tuple(A.oshape), seed + 1)
    lhs = np.vdot(A(x), y)
    return abs(lhs - np.vdot(x, A.H(y))) / abs(lhs)


@pytest.mark.parametrize("ishape,mshape,mapshape", [
    ((16, 16), (16, 16), None),
    ((15, 12), (15, 12), None),
    ((15, 12), (15, 12), (3, 15, 12)),
    ((9, 14), (9, 14), (2, 9, 14)),
    ((3, 12, 10), (12, 10), None),               # slices sharing a mask
    ((3, 12, 10), (3, 12, 10), None),            # one mask per slice
    ((3, 11, 10), (3, 11, 10), (4, 11, 10)),     # per-slice masks, shared maps
    ((3, 11, 10), (3, 11, 10), (3, 4, 11, 10)),  # per-slice masks and maps
    ((2, 3, 8, 6), (3, 8, 6), (2, 3, 2, 8, 6)),  # two leading axes
])
def test_fourier_sampling_adjoint_identity(ishape, mshape, mapshape):
    maps = None if mapshape is None else crandn(mapshape, 7)
    A = FourierSampling(ishape, rmask(mshape), maps=maps)
    expected_o = ishape if maps is None else ishape[:-2] + mapshape[-3:]
    assert tuple(A.oshape) == expected_o and tuple(A.ishape) == ishape
    assert A.num_coils == (None if maps is None else mapshape[-3])
    assert adjoint_gap(A) < 1e-10
    x = crandn(ishape, 3)
    assert A(x).shape == expected_o and A.H(A(x)).shape == ishape
    assert A.H.H is A


def test_fourier_sampling_per_slice_equals_slice_by_slice():
    S, C = 3, 2
    masks = rmask((S, 12, 10), seed=1)
    maps = crandn((S, C, 12, 10), 2)
    A = FourierSampling((S, 12, 10), masks, maps=maps)
    x, y = crandn((S, 12, 10), 3), crandn((S, C, 12, 10), 4)
    for s in range(S):
        As = FourierSampling((12, 10), masks[s], maps=maps[s])
        np.testing.assert_allclose(A(x)[s], As(x[s]), atol=1e-12)
        np.testing.assert_allclose(A.H(y)[s], As.H(y[s]), atol=1e-12)


@pytest.mark.parametrize("shape", [(16, 16), (15, 12)])
def test_fourier_sampling_equals_sigpy(shape):
    mask = rmask(shape, 2).astype(np.float64)
    maps = birdcage_maps(shape, 4).astype(np.complex128)
    x, y1, yc = crandn(shape, 1), crandn(shape, 2), crandn((4,) + shape, 3)
    A = FourierSampling(shape, mask)
    M = sp.linop.Multiply(shape, mask) * sp.linop.FFT(shape, center=True)
    np.testing.assert_allclose(A(x), M(x), atol=1e-12)
    np.testing.assert_allclose(A.H(y1), M.H(y1), atol=1e-12)
    np.testing.assert_allclose(A(x), mask * numpy_crop_fourier(x, shape), atol=1e-12)
    A = FourierSampling(shape, mask.astype(bool), maps=maps)
    S = sp.mri.linop.Sense(maps, weights=mask)
    np.testing.assert_allclose(A(x), S(x), atol=1e-12)
    np.testing.assert_allclose(A.H(yc), S.H(yc), atol=1e-12)
    # real maps are cast to complex
    B = FourierSampling(shape, mask, maps=np.abs(maps))
    assert np.iscomplexobj(B.maps)
    np.testing.assert_allclose(B(x), sp.mri.linop.Sense(np.abs(maps).astype(complex),
                                                        weights=mask)(x), atol=1e-6)


def test_fourier_sampling_errors():
    H = 8
    good = rmask((H, H))
    maps = crandn((2, H, H), 0)
    nan_maps = maps.copy()
    nan_maps[1, 2, 3] = np.nan
    half = good * 0.5
    unit = (maps / np.sqrt((np.abs(maps) ** 2).sum(0))).astype(np.complex64)
    corner = np.zeros_like(unit)
    corner[:, 0, 0] = unit[:, 0, 0]                       # one pixel of 64 seen
    cases = [
        (dict(mask=rmask((H, H + 1))), r"mask of shape \(8, 8\)"),
        (dict(ishape=(3, H, H), mask=rmask((2, H, H))), "does not broadcast"),
        (dict(mask=rmask((2, H, H))), "does not broadcast"),          # more axes than x
        (dict(mask=half), "0 and 1 only"),
        (dict(mask=np.zeros((H, H))), "samples nothing"),
        (dict(ishape=(2, H, H), mask=np.stack([good, 0 * good])), "samples nothing"),
        (dict(mask=good.astype(np.complex64)), "real 0/1"),
        (dict(mask=[[1, 0]]), "numpy or cupy"),
        (dict(maps=crandn((2, H, H + 1), 0)), r"coil maps of shape \(C, 8, 8\)"),
        (dict(maps=crandn((H, H), 0)), r"coil maps of shape \(C, 8, 8\)"),
        (dict(maps=crandn((3, 2, H, H), 0)), "leading axes of the maps"),
        (dict(maps=nan_maps), "maps: expected finite"),
        (dict(maps=np.zeros((2, H, H), np.complex64)), "maps are all zero"),
        (dict(maps=corner), r"zero on 98.4% of the pixels"),
        (dict(ishape=(2, H, H), maps=np.stack([unit, corner])), "maps of image 1 are zero"),
    ]
    for kw, msg in cases:
        args = dict(ishape=(H, H), mask=good, maps=None)
        args.update(kw)
        with pytest.raises(ValueError, match=msg) as info:
            FourierSampling(args.pop("ishape"), args.pop("mask"), maps=args.pop("maps"))
        assert "FourierSampling" in str(info.value)
    A = FourierSampling((H, H), good)
    with pytest.raises(ValueError, match="FourierSampling"):
        A(np.zeros((1, H, H), np.complex64))
    with pytest.raises(ValueError, match="FourierSampling.H"):
        A.H(np.zeros((2, H, H), np.complex64))


# ------------------------------------------------------------------ Phase
def test_phase_operator():
    shape = (2, 6, 5)
    rng = np.random.default_rng(0)
    phi = rng.uniform(-np.pi, np.pi, shape[-2:])
    P = Phase(shape, phi)
    assert P.repr_str == "Phase" and tuple(P.oshape) == shape
    x = crandn(shape, 1)
    np.testing.assert_allclose(P(x), x * np.exp(1j * phi), rtol=1e-6)
    assert adjoint_gap(P) < 1e-6
    np.testing.assert_allclose(P.H(P(x)), x, rtol=1e-5, atol=1e-6)     # unitary
    # radians and e^{iφ} give the same operator
    Q = Phase(shape, np.exp(1j * phi))
    np.testing.assert_allclose(Q(x), P(x), rtol=1e-6)
    assert P.mult.dtype == np.complex64 and Q.mult.dtype == np.complex64
    for bad, msg in [(2 * np.exp(1j * phi), "modulus 1"),
                     (np.full((6, 5), np.nan), "finite"),
                     (np.zeros((6, 4)), "does not broadcast"),
                     (np.zeros((3, 6, 5)), "does not broadcast"),     # beyond the image
                     ([0.0, 1.0], "numpy or cupy")]:
        with pytest.raises(ValueError, match=msg) as info:
            Phase(shape, bad)
        assert "Phase" in str(info.value)
    with pytest.raises(ValueError, match="does not broadcast"):
        Phase((6, 5), np.zeros((2, 6, 5)))            # more axes than the image
    assert tuple(Phase(shape, np.zeros((1, 6, 5))).oshape) == shape


# ------------------------------------------------------------------ RealToComplex
def real_adjoint_gap(A, seed=0):
    """The adjoint identity of an operator on real arrays, with the real inner product of
    the complex output: Re<A x, y> = <x, A^H y>."""
    x = np.random.default_rng(seed).standard_normal(tuple(A.ishape))
    y = crandn(tuple(A.oshape), seed + 1)
    lhs = np.vdot(A(x), y).real
    ahy = A.H(y)
    assert not np.iscomplexobj(ahy)
    return abs(lhs - np.vdot(x, ahy)) / abs(lhs)


def test_real_to_complex_adjoint():
    from mrirecon_vdm.linop import RealToComplex

    shape = (2, 12, 10)
    R = RealToComplex(shape)
    x = np.random.default_rng(0).standard_normal(shape)
    np.testing.assert_array_equal(R(x), x.astype(np.complex128))
    assert np.iscomplexobj(R(x)) and R(x.astype(np.float32)).dtype == np.complex64
    assert real_adjoint_gap(R) < 1e-12
    np.testing.assert_array_equal(R.H(crandn(shape, 2)), crandn(shape, 2).real)
    assert R.H.H.repr_str == "RealToComplex"
    with pytest.raises(ValueError, match="RealToComplex: expected a real input"):
        R(crandn(shape, 3))
    with pytest.raises(ValueError, match="RealToComplex"):
        R(np.zeros((12, 10)))
    # composed: a mask, maps and a phase on a real image (the constrained baselines' operator)
    phi = np.random.default_rng(4).uniform(-np.pi, np.pi, (12, 10))
    for maps in (None, crandn((3, 12, 10), 5)):
        A = FourierSampling((12, 10), rmask((12, 10)), maps=maps) * Phase((12, 10), phi) \
            * RealToComplex((12, 10))
        assert real_adjoint_gap(A) < 1e-10
    A = CropFourier((16, 16), (8, 8)) * RealToComplex((16, 16))
    assert real_adjoint_gap(A) < 1e-10


# ------------------------------------------------------------------ fourier_structure
def recognised_operators(shape=(12, 10), C=3):
    h, w = shape
    mask = rmask(shape, 4).astype(np.float64)
    maps = birdcage_maps(shape, C).astype(np.complex128)
    phi = np.random.default_rng(1).uniform(-1, 1, shape)
    F = sp.linop.FFT(shape, center=True)
    ops = {
        "crop": CropFourier(shape, (6, 4)),
        "mask": FourierSampling(shape, mask),
        "sense": FourierSampling(shape, mask, maps=maps),
        "sigpy mask": sp.linop.Multiply(shape, mask) * F,
        "sigpy sense": sp.mri.linop.Sense(maps, weights=mask),
        "crop maps": CropFourier((C, h, w), (C, 6, 6)) * sp.linop.Multiply(shape, maps),
    }
    for name in list(ops):
        ops[name + " phase"] = ops[name] * Phase(shape, phi)
    return ops, mask, maps, phi


def test_fourier_structure_reads_the_operators():
    shape = (12, 10)
    ops, mask, maps, phi = recognised_operators(shape)
    for name, A in ops.items():
        st = fourier_structure(A)
        assert st is not None, name
        assert st.ishape == tuple(A.ishape) and st.oshape == tuple(A.oshape), name
        assert st.hr_shape == shape
        assert (st.phase is not None) == name.endswith("phase"), name
        if st.phase is not None:
            np.testing.assert_allclose(st.phase, np.exp(1j * phi), rtol=1e-6)
        has_maps = "sense" in name or "maps" in name
        assert (st.maps is not None) == has_maps and st.single_coil == (not has_maps), name
        assert st.coil_axis == (-3 if has_maps else None)
        if has_maps:
            np.testing.assert_allclose(st.maps, maps, rtol=1e-6)
        if name.startswith("crop"):
            assert tuple(st.crop) == ((6, 4) if name.startswith("crop phase") or name == "crop"
                                      else (6, 6))
            np.testing.assert_array_equal(st.full_mask(), sp.resize(np.ones(st.crop), shape))
        else:
            assert st.crop is None
            np.testing.assert_array_equal(st.full_mask(), mask)


def test_fourier_structure_forward_adjoint_match_with_a_sample_axis():
    ops, *_ = recognised_operators()
    K = 2
    for name, A in ops.items():
        st = fourier_structure(A)
        x = crandn((K,) + tuple(A.ishape), 1)
        y = crandn((K,) + tuple(A.oshape), 2)
        fx, ay = st.forward(x), st.adjoint(y)
        assert fx.shape == y.shape and ay.shape == x.shape, name
        for k in range(K):
            np.testing.assert_allclose(fx[k], A(x[k]), atol=1e-5, err_msg=name)
            np.testing.assert_allclose(ay[k], A.H(y[k]), atol=1e-5, err_msg=name)


def test_fourier_structure_per_slice():
    S, C, h, w = 2, 3, 8, 6
    masks = rmask((S, h, w), 2)
    maps = crandn((S, C, h, w), 3)
    A = FourierSampling((S, h, w), masks, maps=maps) * Phase((S, h, w), np.ones((h, w)))
    st = fourier_structure(A)
    assert st.full_mask().shape == (S, h, w)
    np.testing.assert_array_equal(st.full_mask(), masks)
    x = crandn((4, S, h, w), 5)
    np.testing.assert_allclose(st.forward(x)[3], A(x[3]), atol=1e-5)


def test_fourier_structure_returns_none_for_other_operators():
    shape = (8, 8)
    mask = rmask(shape).astype(np.float64)
    F = sp.linop.FFT(shape, center=True)
    density = mask * np.linspace(0.5, 1.0, 8)[None, :]
    maps = birdcage_maps(shape, 2)
    others = {
        "identity": CropFourier(shape, (4, 4)) * sp.linop.Identity(shape),
        "mask identity": FourierSampling(shape, mask) * sp.linop.Identity(shape),
        "density weights": sp.linop.Multiply(shape, density) * F,
        "sense density": sp.mri.linop.Sense(maps, weights=density ** 2),
        "no centre": sp.linop.Multiply(shape, mask) * sp.linop.FFT(shape, center=False),
        "complex mask": sp.linop.Multiply(shape, mask * 1j) * F,
        "fft only": F,
        "identity only": sp.linop.Identity(shape),
        "real weight": FourierSampling(shape, mask) * sp.linop.Multiply(shape, 2 * np.ones(shape)),
        "1d fft": sp.linop.Multiply(shape, mask) * sp.linop.FFT(shape, axes=(-1,), center=True),
    }
    for name, A in others.items():
        assert fourier_structure(A) is None, name


@pytest.mark.parametrize("kind, coils", [(k, c) for k in ("lines", "lines-axis0", "poisson")
                                          for c in (None, 4)] + [("crop", None)])
@pytest.mark.parametrize("slices", [None, 3])
def test_fourier_structure_normal_equals_adjoint_of_forward(kind, coils, slices):
    """AᴴA (plain FFTs with an ifftshifted mask; 1D FFTs across whole lines for 1D Cartesian
    masks) equals Aᴴ(A x) through the centred FFTs; other masks and the crop take the 2D
    path. Odd and non-square sizes, coil maps, a phase, per-slice masks."""
    from mrirecon_vdm.coils import birdcage_maps
    from mrirecon_vdm.linop import Phase, fourier_structure
    from mrirecon_vdm.phase import smooth_phase
    from mrirecon_vdm.sampling import cartesian_mask, poisson_mask
    hw = (33, 24)
    shape = hw if slices is None else (slices,) + hw

    def mask(seed):
        if kind == "poisson":
            return poisson_mask(hw, 3, seed=seed)
        return cartesian_mask(hw, 3, center=6, seed=seed, axis=-2 if kind == "lines-axis0" else -1)
    if kind == "crop":
        A = CropFourier(shape, shape[:-2] + (15, 10)) * Phase(shape, smooth_phase(shape, seed=1))
    else:
        m = mask(0) if slices is None else np.stack([mask(s) for s in range(slices)])
        maps = birdcage_maps(hw, coils) if coils else None
        A = FourierSampling(shape, m, maps=maps) * Phase(shape, smooth_phase(shape, seed=1))
    st = fourier_structure(A)
    x = np.random.default_rng(0).standard_normal((2,) + shape).astype(np.float32)
    ref = st.adjoint(st.forward(x))
    out = st.normal(x)
    assert out.shape == ref.shape and out.dtype == np.complex64
    np.testing.assert_allclose(out, ref, atol=1e-5 * float(np.abs(ref).max()))
    assert st._line_axis() == {"lines": -1, "lines-axis0": -2, "poisson": None,
                               "crop": None}[kind]


def test_max_eig_is_seeded_and_exact():
    """‖A‖² by a seeded power iteration: the same number on every call, and the known value
    for a masked FFT (1), a scaled identity (c²) and a stacked pair (‖A‖² + ‖G‖² here)."""
    from mrirecon_vdm.linop import max_eig

    mask = (np.random.default_rng(1).random((16, 12)) < 0.5).astype(np.float32)
    A = sp.linop.Multiply((16, 12), mask) * sp.linop.FFT((16, 12), center=True)
    assert max_eig(A) == max_eig(A)
    assert max_eig(A) == pytest.approx(1.0, rel=1e-3)
    assert max_eig(sp.linop.Identity((5, 4)) * 3.0) == pytest.approx(9.0, rel=1e-5)
    assert max_eig(A, sp.linop.Identity((16, 12)) * 2.0) == pytest.approx(5.0, rel=1e-3)
    with pytest.raises(ValueError, match="G acts on"):
        max_eig(A, sp.linop.Identity((4, 4)))
    with pytest.raises(ValueError, match="all-zero"):
        max_eig(sp.linop.Multiply((4, 4), np.zeros((4, 4), np.float32)))


@pytest.mark.parametrize("shape", [(8, 8), (7, 9), (3, 2, 6, 5)])
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_centred_fft_is_sigpys(shape, dtype):
    """The operators' FFT (torch's on the CPU) is SigPy's centred orthonormal FFT, both
    ways, odd sizes and leading axes included, in the input's precision."""
    from mrirecon_vdm.linop import centred_fft
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    tol = 1e-5 if dtype == np.complex64 else 1e-12
    for inverse, ref in ((False, sp.fft), (True, sp.ifft)):
        out = centred_fft(x, inverse=inverse)
        assert out.dtype == dtype and out.shape == x.shape
        np.testing.assert_allclose(out, ref(x, axes=(-2, -1), center=True), atol=tol)
    np.testing.assert_allclose(centred_fft(x[..., ::-1, :]),        # a strided view
                               sp.fft(np.ascontiguousarray(x[..., ::-1, :]),
                                      axes=(-2, -1), center=True), atol=tol)


def test_centred_fft_of_a_read_only_array_warns_nothing():
    import warnings

    from mrirecon_vdm.linop import centred_fft
    x = np.ones((4, 4), np.complex64)
    x.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(centred_fft(x), sp.fft(x, axes=(-2, -1), center=True),
                                   atol=1e-6)
    assert not x.flags.writeable
