"""Coil maps: birdcage (unit RSS), ESPIRiT through SigPy and BART on simulated k-space
(unit RSS on the object, spanning the true maps), rss, errors."""
import numpy as np
import pytest

from mrirecon_vdm.coils import (bart_espirit_maps, birdcage_maps, espirit_maps,
                                kernel_width_for, rss)
from mrirecon_vdm.config import bart_available
from mrirecon_vdm.linop import FourierSampling
from mrirecon_vdm.phase import smooth_phase
from mrirecon_vdm.sampling import cartesian_mask

H = 32


def simulate(shape=(H, H), coils=4, center=12, seed=0):
    """k-space (C, H, W) of birdcage maps times a smooth object with a smooth phase, under a
    Cartesian mask with a fully sampled centre; the true maps and the object's support."""
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    obj = np.exp(-((yy - shape[0] / 2) ** 2 + (xx - shape[1] / 2) ** 2) / (2 * (shape[0] / 5) ** 2))
    img = obj * np.exp(1j * smooth_phase(shape, seed=seed, amplitude=1.0))
    maps = birdcage_maps(shape, coils)
    mask = cartesian_mask(shape, 2, center=center, seed=seed)
    k = FourierSampling(shape, mask, maps=maps)(img).astype(np.complex64)
    return k, maps, obj > 0.3


def check_maps(est, true, support):
    """Unit RSS on the object; each estimated map vector is the true one up to a phase."""
    assert est.shape == true.shape and est.dtype == np.complex64
    r = rss(est)
    assert np.abs(r[support] - 1).max() < 1e-3
    span = np.abs((est.conj() * true).sum(axis=-3))
    assert span[support].min() > 0.99


@pytest.mark.parametrize("shape,coils", [((16, 16), 4), ((15, 12), 8), ((8, 9), 1)])
def test_birdcage_maps(shape, coils):
    m = birdcage_maps(shape, coils)
    assert m.shape == (coils,) + shape and m.dtype == np.complex64
    np.testing.assert_allclose(rss(m), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.sqrt((np.abs(m) ** 2).sum(0)), rss(m, axis=0), atol=1e-6)
    if coils > 1:     # the coils differ (else SENSE would have nothing to separate)
        assert np.abs(np.abs(m[0]) - np.abs(m[1])).max() > 0.1
    for bad, msg in [(0, "num_coils"), (2.0, "num_coils"), (True, "num_coils")]:
        with pytest.raises(ValueError, match=msg):
            birdcage_maps(shape, bad)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        birdcage_maps((2,) + shape, coils)


def test_espirit_maps_span_the_true_maps():
    k, true, support = simulate()
    check_maps(espirit_maps(k), true, support)
    check_maps(espirit_maps(k, calib=16), true, support)


def test_espirit_maps_per_slice():
    (k0, true, support), (k1, _, _) = simulate(seed=0), simulate(seed=1)
    est = espirit_maps(np.stack([k0, k1]))
    assert est.shape == (2, 4, H, H)
    for s in range(2):
        check_maps(est[s], true, support)


def test_espirit_errors():
    k, _, _ = simulate()
    with pytest.raises(ValueError, match="complex k-space"):
        espirit_maps(np.abs(k))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        espirit_maps(k[0])
    bad = k.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        espirit_maps(bad)
    small, _, _ = simulate(center=4)           # a centre of 4 lines: no calibration region
    with pytest.raises(ValueError, match="calibration region of at least 8 x 8"):
        espirit_maps(small)
    # a region too small for a 6 x 6 kernel: ESPIRiT finds nothing; an explicit error rather
    # than all-zero maps
    narrow, true, support = simulate(center=8)
    with pytest.raises(ValueError, match="all maps are zero"):
        espirit_maps(narrow, kernel_width=6)
    with pytest.raises(ValueError, match=r"calib must be an int in \[8, 32\]"):
        espirit_maps(k, calib=6)


@pytest.mark.parametrize("center,kernel", [(8, 4), (10, 5), (12, 6), (16, 6)])
def test_espirit_kernel_follows_the_calibration_region(center, kernel, monkeypatch):
    """The default kernel is half the calibration width, at most 6: the maps then work down
    to 8 lines (with kernel 6, 8 lines give all-zero maps and 10 a fraction of the object)."""
    import sigpy.mri

    assert kernel_width_for(center) == kernel
    seen = []
    real = sigpy.mri.app.EspiritCalib

    def spy(*a, **k):
        seen.append(k["kernel_width"])
        return real(*a, **k)
    monkeypatch.setattr(sigpy.mri.app, "EspiritCalib", spy)
    k, true, support = simulate(center=center)
    check_maps(espirit_maps(k), true, support)
    assert seen == [kernel]


@pytest.mark.bart
@pytest.mark.skipif(not bart_available(), reason="BART (binary + mrbart) not installed")
def test_bart_espirit_maps_span_the_true_maps():
    k, true, support = simulate()
    check_maps(bart_espirit_maps(k), true, support)
    (k1, _, _) = simulate(seed=1)
    est = bart_espirit_maps(np.stack([k, k1]))
    assert est.shape == (2, 4, H, H)
    check_maps(est[1], true, support)
    narrow, true, support = simulate(center=8)        # kernel 4 (ecalib -k 4)
    check_maps(bart_espirit_maps(narrow), true, support)


def test_bart_espirit_errors_before_bart():
    """Checks that do not need BART."""
    k, _, _ = simulate(shape=(15, 32))
    with pytest.raises(ValueError, match="even image sizes"):
        bart_espirit_maps(k)
    with pytest.raises(ValueError, match="complex k-space"):
        bart_espirit_maps(np.abs(simulate()[0]))


def test_espirit_crop_default_and_support():
    """The default crop is coils.DEFAULT_CROP (BART's 0.8); a higher crop keeps the maps on
    no more pixels (the eigenvalue must reach it), a crop outside [0, 1) is refused."""
    from mrirecon_vdm import coils

    k, true, support = simulate(coils=8)
    k = k + 0.05 * np.abs(k).max() * (np.random.default_rng(0).standard_normal(k.shape)
                                        + 1j * np.random.default_rng(1).standard_normal(k.shape)
                                        ).astype(np.complex64) * (k != 0)
    assert coils.DEFAULT_CROP == 0.8
    np.testing.assert_array_equal(espirit_maps(k), espirit_maps(k, crop=coils.DEFAULT_CROP))
    covered = {c: int((rss(espirit_maps(k, crop=c)) > 0).sum()) for c in (0.0, 0.8, 0.95)}
    assert covered[0.0] >= covered[0.8] >= covered[0.95]
    assert covered[0.0] == H * H          # no crop: every pixel
    for bad in (1.0, -0.1, "0.8", True):
        with pytest.raises(ValueError, match="crop"):
            espirit_maps(k, crop=bad)


def test_bench_journal_fingerprints_the_crop_with_coils():
    """A resumed coil benchmark refuses a journal made with maps of another crop."""
    from mrirecon_vdm.bench.journal import fingerprint
    from mrirecon_vdm.bench.tasks import Task

    images = np.zeros((1, 8, 8), np.float32)
    fp = fingerprint(images, 1.0, None, 0, task=Task("cartesian", coils=8))
    assert fp["espirit_crop"] == 0.8
    assert "espirit_crop" not in fingerprint(images, 1.0, None, 0, task=Task("cartesian"))
