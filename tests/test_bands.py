"""benchmarks/bands.py: the k-space band split of reconstruction errors."""
import numpy as np
import pytest
from bench_scripts import load_benchmark


@pytest.fixture(scope="module")
def bands():
    return load_benchmark("bands")


@pytest.mark.parametrize("scale,n_bands", [(4, 4), (2, 3), (8, 5)])
def test_band_masks_partition_kspace(bands, scale, n_bands):
    masks = bands.band_masks((32, 32), scale)
    assert [lab for lab, _ in masks][0] == "measured" and len(masks) == n_bands
    total = np.sum([m.astype(int) for _, m in masks], axis=0)
    assert np.all(total == 1)                                # every k-space sample, once
    assert masks[0][1].sum() == (32 // scale) ** 2           # the crop of CropFourier


def test_measured_band_is_the_crop_operators_centre(bands):
    from mrirecon_vdm.linop import CropFourier
    A = CropFourier((32, 32), (8, 8))
    mask = bands.band_masks((32, 32), 4)[0][1]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 32))
    outside = bands.band_energy(x, [("out", ~mask)])[0]
    # energy outside the crop = ||x||^2 / (HW) - ||A x||^2 / (HW) (Parseval, orthonormal)
    assert outside == pytest.approx((np.sum(x ** 2) - np.sum(np.abs(A * x) ** 2)) / 1024)


def test_bands_sum_to_the_mse_and_ceilings_rise(bands):
    rng = np.random.default_rng(1)
    err = rng.standard_normal((3, 32, 32))
    masks = bands.band_masks((32, 32), 4)
    e = bands.band_energy(err, masks)
    assert e.sum() == pytest.approx(np.mean(err ** 2))
    c = bands.ceilings(e)
    assert np.all(np.diff(c) > 0) and c[-1] == np.inf
    assert c[0] == pytest.approx(10 * np.log10(1 / e[1:].sum()))


def test_run_bands_zero_fill_recovers_nothing_outside(bands):
    from scipy.ndimage import gaussian_filter
    rng = np.random.default_rng(2)
    x = np.clip(gaussian_filter(rng.random((2, 32, 32)), (0, 1.5, 1.5)) * 2, 0, 1)
    (res,) = bands.run_bands(x, [4], ["zero-fill"], log=lambda *a: None)
    row = res["rows"][0]
    assert len(row["band_error"]) == len(res["energy"]) == 4
    assert sum(row["band_error"]) == pytest.approx(row["mse"])
    # zero-filling (magnitude) leaves the outer bands at about their full energy
    np.testing.assert_allclose(row["band_error"][1:], res["energy"][1:], rtol=0.35)
    with pytest.raises(ValueError, match="scale 3"):
        bands.band_masks((32, 32), 3)
