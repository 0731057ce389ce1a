"""Metrics: closed-form cases and input checks."""
import math

import numpy as np
import pytest

from mrirecon_vdm import metrics


def smooth_image(shape=(32, 40), seed=0):
    rng = np.random.default_rng(seed)
    i, j = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    img = 0.5 + 0.3 * np.sin(i / 3.0) * np.cos(j / 5.0) + 0.05 * rng.standard_normal(shape)
    return img.astype(np.float32)


def test_identical_images():
    x = smooth_image()
    m = metrics.evaluate(x, x.copy())
    assert m["psnr"] == math.inf
    assert m["ssim"] == pytest.approx(1.0)
    assert m["nrmse"] == 0.0
    assert m["hfen"] == 0.0


def test_constant_offset_gives_known_psnr():
    x = smooth_image()
    c = 0.01
    dr = 2.0
    # MSE = c^2 -> PSNR = 20 log10(D / c)
    assert metrics.psnr(x, x + c, data_range=dr) == pytest.approx(20 * np.log10(dr / c), abs=1e-4)
    # default data range: the reference's maximum
    assert metrics.psnr(x, x + c) == pytest.approx(20 * np.log10(x.max() / c), abs=1e-4)


def test_nrmse_and_hfen_closed_form():
    x = smooth_image()
    assert metrics.nrmse(x, 1.1 * x) == pytest.approx(0.1, rel=1e-5)
    # LoG is linear: scaling the image scales the error the same way
    assert metrics.hfen(x, 1.1 * x) == pytest.approx(0.1, rel=1e-5)
    # a constant offset has no high frequencies: the LoG kernel sums to zero
    assert metrics.hfen(x, x + 0.2) == pytest.approx(0.0, abs=1e-6)
    h = metrics.log_kernel()
    assert h.shape == (15, 15) and abs(h.sum()) < 1e-12 and h[7, 7] == h.min()


def test_ssim_uses_data_range():
    x = smooth_image()
    y = x + 0.05 * np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    # a larger data range makes the same error look smaller
    assert metrics.ssim(x, y, data_range=10.0) > metrics.ssim(x, y, data_range=1.0)


def test_stack_psnr_is_over_the_whole_volume():
    x = np.stack([smooth_image(seed=s) for s in range(3)])
    y = x.copy()
    y[0] += 0.1
    mse = 0.01 / 3
    assert metrics.psnr(x, y, 1.0) == pytest.approx(10 * np.log10(1 / mse), abs=1e-4)


def test_evaluate_slices_and_summarize():
    x = np.stack([smooth_image(seed=s) for s in range(3)])
    offsets = [0.01, 0.02, 0.04]
    y = x + np.array(offsets, np.float32)[:, None, None]
    per = metrics.evaluate_slices(x, y)
    dr = x.max()  # one data range for the whole stack
    expected = [20 * np.log10(dr / c) for c in offsets]
    np.testing.assert_allclose(per["psnr"], expected, atol=1e-4)
    assert set(per) == set(metrics.METRICS)
    s = metrics.summarize(per)
    assert s["n"] == 3
    assert s["psnr"] == pytest.approx(np.mean(expected), abs=1e-4)
    assert s["psnr_std"] == pytest.approx(np.std(expected), abs=1e-4)
    # a single 2D image is one slice
    assert metrics.evaluate_slices(x[0], y[0])["psnr"].shape == (1,)


@pytest.mark.parametrize("fn", [metrics.psnr, metrics.ssim, metrics.nrmse, metrics.hfen,
                                metrics.evaluate])
def test_input_checks(fn):
    x = smooth_image()
    with pytest.raises(ValueError, match="same shape"):
        fn(x, x[:-1])
    with pytest.raises(ValueError, match="same shape"):
        fn(x, x[None])  # rank mismatch
    with pytest.raises(ValueError, match="complex"):
        fn(x, x.astype(np.complex64))
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        fn(x, bad)
    with pytest.raises(ValueError, match="finite"):
        fn(bad, x)


def test_bad_data_range_and_zero_reference():
    x = smooth_image()
    for dr in (0.0, -1.0, np.inf, "a"):
        with pytest.raises(ValueError, match="data_range"):
            metrics.psnr(x, x, data_range=dr)
    with pytest.raises(ValueError, match="data_range"):
        metrics.psnr(np.zeros((8, 8)), np.ones((8, 8)))
    with pytest.raises(ValueError, match="zeros"):
        metrics.nrmse(np.zeros((8, 8)), np.ones((8, 8)))
    with pytest.raises(ValueError, match="7 x 7"):
        metrics.ssim(np.ones((5, 5)), np.ones((5, 5)))
    with pytest.raises(ValueError, match="non-empty"):
        metrics.summarize({"psnr": []})
