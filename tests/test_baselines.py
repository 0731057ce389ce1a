"""Classical baselines: closed-form limits, alignment, scale invariance, input checks and
the tuned defaults (the method registry: test_bench_registry.py; the bench command:
test_bench_cli.py)."""
import numpy as np
import pytest
import sigpy as sp

from mrirecon_vdm import baselines as B
from mrirecon_vdm import metrics
from mrirecon_vdm.config import bart_available, cupy_enabled
from mrirecon_vdm.linop import CropFourier
from mrirecon_vdm.noise import simulate_lowres

needs_bart = pytest.mark.skipif(not bart_available(), reason="BART (binary + mrbart) not installed")


@pytest.fixture(scope="module")
def phantom():
    """A real-looking piecewise-smooth 64 x 64 magnitude image (Shepp-Logan)."""
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    return resize(shepp_logan_phantom(), (64, 64), anti_aliasing=True).astype(np.float32)


def blob(shape=(64, 64), centre=(30.3, 35.7), width=5.0):
    i, j = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    return np.exp(-((i - centre[0]) ** 2 + (j - centre[1]) ** 2) / (2 * width ** 2)).astype(
        np.float32)


def centroid(img):
    i, j = np.meshgrid(np.arange(img.shape[0]), np.arange(img.shape[1]), indexing="ij")
    return np.array([(img * i).sum(), (img * j).sum()]) / img.sum()


def measure(x, lr):
    A = CropFourier(x.shape, x.shape[:-2] + lr)
    return simulate_lowres(x, lr), A


# ----------------------------------------------------------------------- direct methods
def test_zero_fill_is_magnitude_of_adjoint(phantom):
    y, A = measure(phantom, (16, 16))
    app = B.ZeroFillRecon(y, A)
    assert app.time is None
    x = app.run()
    np.testing.assert_allclose(x, np.abs(A.H(y)), atol=1e-6)
    assert x.dtype == np.float32 and x.shape == (64, 64)
    assert isinstance(app.time, float) and app.time >= 0


def test_bicubic_keeps_constant_and_alignment():
    const = np.full((40, 48), 0.7, np.float32)
    y, A = measure(const, (10, 12))
    np.testing.assert_allclose(B.BicubicRecon(y, A).run(), 0.7, atol=1e-5)

    x = blob()
    for lr in [(16, 16), (32, 32), (21, 21)]:
        y, A = measure(x, lr)
        up = B.BicubicRecon(y, A).run()
        zf = B.ZeroFillRecon(y, A).run()
        # a smooth image comes back where it was (scipy's zoom is off by ~1.5 px at 4x)
        np.testing.assert_allclose(centroid(up), centroid(x), atol=0.05)
        assert metrics.nrmse(x, up) < 0.03 and metrics.nrmse(x, zf) < 0.03


def test_bicubic_beats_misaligned_zoom(phantom):
    from scipy.ndimage import zoom

    from mrirecon_vdm.linop import kspace_to_lowres_image

    y, A = measure(phantom, (16, 16))
    naive = zoom(np.abs(kspace_to_lowres_image(y, A.hr_shape)), 4, order=3)
    ours = B.BicubicRecon(y, A).run()
    assert metrics.psnr(phantom, ours, 1) > metrics.psnr(phantom, naive, 1) + 1


def test_batch_axes(phantom):
    x = np.stack([phantom, phantom[::-1]])
    y, A = measure(x, (32, 32))
    for cls in (B.ZeroFillRecon, B.BicubicRecon):
        out = cls(y, A).run()
        assert out.shape == (2, 64, 64)
        np.testing.assert_allclose(out[1], cls(y[1], CropFourier((64, 64), (32, 32))).run(),
                                   atol=1e-5)
    out = B.TVRecon(y, A, lamda=0.01, max_iter=20).run()
    single = B.TVRecon(y[1], CropFourier((64, 64), (32, 32)), lamda=0.01, max_iter=20).run()
    np.testing.assert_allclose(out[1], single, atol=1e-4)


# ----------------------------------------------------------------------- SigPy CS
def test_l1_wavelet_with_zero_lamda_is_zero_fill(phantom):
    y, A = measure(phantom, (32, 32))
    x = B.L1WaveletRecon(y, A, lamda=0.0, max_iter=5).run()
    np.testing.assert_allclose(x, B.ZeroFillRecon(y, A).run(), atol=1e-5)


@pytest.mark.parametrize("cls", [B.L1WaveletRecon, B.TVRecon])
def test_scale_invariance(cls, phantom):
    y, A = measure(phantom, (16, 16))
    x1 = cls(y, A, lamda=0.01, max_iter=30).run()
    x2 = cls(1000 * y, A, lamda=0.01, max_iter=30).run()
    np.testing.assert_allclose(x2 / 1000, x1, atol=1e-4 * x1.max())


def test_tv_improves_on_zero_fill(phantom):
    y, A = measure(phantom, (32, 32))
    app = B.TVRecon(y, A)  # tuned defaults
    x = app.run()
    assert app.time > 0 and app.lamda == B.default_lamda("sigpy-tv", 2)
    zf = B.ZeroFillRecon(y, A).run()
    assert metrics.ssim(phantom, x) > metrics.ssim(phantom, zf) + 0.05
    assert metrics.psnr(phantom, x) > metrics.psnr(phantom, zf)


def test_cs_works_with_other_linops(phantom):
    """Any SigPy linop: a masked full FFT (step sizes by a seeded power iteration), the same
    image on every run (SigPy's own MaxEig starts from an unseeded random vector)."""
    mask = (np.random.default_rng(0).random((64, 64)) < 0.4).astype(np.float32)
    mask[28:36, 28:36] = 1  # a fully sampled centre
    A = sp.linop.Multiply((64, 64), mask) * sp.linop.FFT((64, 64), center=True)
    y = A(phantom.astype(np.complex64))
    zf = metrics.psnr(phantom, np.abs(A.H(y)))
    # PDHG (TV) converges far more slowly than FISTA from zero: 40 iterations gain little
    for cls, gain in ((B.L1WaveletRecon, 2.0), (B.TVRecon, 0.05)):
        x = cls(y, A, lamda=0.001, max_iter=40).run()
        assert x.shape == (64, 64)
        assert metrics.psnr(phantom, x) > zf + gain
        np.testing.assert_array_equal(x, cls(y, A, lamda=0.001, max_iter=40).run())
    with pytest.raises(TypeError, match="CropFourier"):
        B.BicubicRecon(y, A)


# ----------------------------------------------------------------------- BART
@needs_bart
@pytest.mark.bart
def test_bart_tiny_lamda_is_zero_fill_on_physical_scale(phantom):
    y, A = measure(100 * phantom, (32, 32))  # not at unit scale
    zf = B.ZeroFillRecon(y, A).run()
    for reg in ("wavelet", "tv"):
        x = B.BartPicsRecon(y, A, reg, lamda=1e-7, max_iter=30).run()
        assert metrics.nrmse(zf, x) < 1e-2, reg


@needs_bart
@pytest.mark.bart
def test_bart_against_sigpy_and_zero_fill(phantom):
    y, A = measure(phantom, (32, 32))
    zf = B.ZeroFillRecon(y, A).run()
    sig = B.TVRecon(y, A).run()
    for reg in ("tv", "wavelet"):
        app = B.BartPicsRecon(y, A, reg)
        x = app.run()
        assert x.dtype == np.float32 and x.shape == (64, 64) and app.time > 0
        assert metrics.ssim(phantom, x) > metrics.ssim(phantom, zf)
        assert metrics.nrmse(sig, x) < 0.25  # the same problem family, same scale
    # scale invariance and the sign of 2-mod-4 sizes (magnitude output)
    x1 = B.BartPicsRecon(y, A, "tv", lamda=0.01, max_iter=20).run()
    x2 = B.BartPicsRecon(1000 * y, A, "tv", lamda=0.01, max_iter=20).run()
    np.testing.assert_allclose(x2 / 1000, x1, atol=1e-3 * x1.max())


@needs_bart
@pytest.mark.bart
def test_bart_batch_and_odd_sizes(phantom):
    x = np.stack([phantom, phantom.T])
    y, A = measure(x, (32, 32))
    out = B.BartPicsRecon(y, A, "tv", lamda=0.01, max_iter=10).run()
    one = B.BartPicsRecon(y[1], CropFourier((64, 64), (32, 32)), "tv", lamda=0.01,
                          max_iter=10).run()
    np.testing.assert_allclose(out[1], one, atol=1e-5)
    y, A = measure(phantom[:63, :63], (31, 31))
    with pytest.raises(ValueError, match="even"):
        B.BartPicsRecon(y, A, "tv")


def test_bart_missing_raises_install_hint(phantom, monkeypatch):
    from mrirecon_vdm import config

    y, A = measure(phantom, (32, 32))
    monkeypatch.setattr(config.shutil, "which", lambda name: None)
    config.bart_available.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="apt-get install bart"):
            B.BartPicsRecon(y, A, "tv")
    finally:
        monkeypatch.undo()
        config.bart_available.cache_clear()


# ----------------------------------------------------------------------- input checks
ALL = [B.ZeroFillRecon, B.BicubicRecon, B.L1WaveletRecon, B.TVRecon,
       lambda y, A: B.BartPicsRecon(y, A, "tv")]


@pytest.mark.parametrize("make", ALL)
def test_bad_measurements(make, phantom):
    y, A = measure(phantom, (16, 16))
    with pytest.raises(ValueError, match="shape"):
        make(y[:-1], A)
    with pytest.raises(ValueError, match="shape"):
        make(y[None], A)  # rank mismatch
    with pytest.raises(ValueError, match="complex"):
        make(np.abs(y), A)  # a real array: most likely an image, not k-space
    bad = y.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        make(bad, A)
    with pytest.raises(TypeError, match="Linop"):
        make(y, "not an operator")


def test_bad_options(phantom):
    y, A = measure(phantom, (16, 16))
    with pytest.raises(ValueError, match="wavelet, tv"):
        B.BartPicsRecon(y, A, reg="l2")
    for cls in (B.L1WaveletRecon, B.TVRecon):
        with pytest.raises(ValueError, match="lamda"):
            cls(y, A, lamda=-1)
        with pytest.raises(ValueError, match="max_iter"):
            cls(y, A, max_iter=0)


def test_defaults_table():
    for m in B.REGULARISED:
        for scale in (2, 4):
            if B.constraint_of(m) == "phase":      # no phase with a centre crop
                with pytest.raises(ValueError, match=f"{m} has no tuned defaults for the "
                                                     f"operator kind 'sr'"):
                    B.default_lamda(m, scale)
                continue
            assert B.default_lamda(m, scale) > 0
            assert B.default_max_iter(m, scale) >= 1
    for m in B.REGULARISED:                         # every method on the undersampling tasks
        for kind, scales in (("mask", (4, 8)), ("sense", (8,))):
            if kind == "sense" and B.constraint_of(m) == "real":
                continue                            # coil maps: the -phase methods run
            for scale in scales:
                assert B.default_lamda(m, scale, kind) > 0
                assert B.default_max_iter(m, scale, kind) >= 1
    # the nearest tuned factor on a log scale
    assert B.default_lamda("sigpy-tv", 3.9) == B.default_lamda("sigpy-tv", 4)
    assert B.default_lamda("sigpy-tv", 8) == B.default_lamda("sigpy-tv", 4)
    assert B.default_lamda("sigpy-tv", 1.5) == B.default_lamda("sigpy-tv", 2)
    with pytest.raises(ValueError, match="sigpy-wavelet, sigpy-tv"):
        B.default_lamda("tv", 4)
    with pytest.raises(ValueError, match="scale"):
        B.default_lamda("sigpy-tv", 0.5)
    assert B.scale_factor(CropFourier((128, 128), (32, 32))) == 4


@pytest.mark.skipif(not cupy_enabled(), reason="needs cupy and a CUDA device")
@pytest.mark.gpu
def test_gpu_stays_on_device(phantom):  # pragma: no cover
    import cupy

    y, A = measure(phantom, (32, 32))
    yg = cupy.asarray(y)
    for cls in (B.ZeroFillRecon, B.BicubicRecon, B.TVRecon, B.L1WaveletRecon):
        out = cls(yg, A).run()
        assert isinstance(out, cupy.ndarray)
        np.testing.assert_allclose(out.get(), cls(y, A).run(), atol=1e-4)
