"""The intensity reference: the prior's training normalisation and the App's scale estimate agree."""
import numpy as np
import pytest

from mrirecon_vdm.app import estimate_scale
from mrirecon_vdm.linop import CropFourier
from mrirecon_vdm.prior import VDM, VDMConfig
from mrirecon_vdm.prior.data import normalise_slices


def test_normalise_slices_percentile():
    x = np.stack([np.linspace(0, 2, 100).reshape(10, 10), np.zeros((10, 10))]).astype(np.float32)
    m = normalise_slices(x)
    assert m[0].max() == pytest.approx(1.0) and not m[1].any()
    p = normalise_slices(x, 99.0)
    assert np.percentile(p[0], 99.0) == pytest.approx(1.0, rel=1e-5) and p[0].max() > 1


def test_estimate_scale_percentile_per_image_and_global():
    rng = np.random.default_rng(0)
    x = rng.random((3, 16, 16)).astype(np.float32) * np.array([1, 2, 4], np.float32)[:, None, None]
    A = CropFourier(x.shape, (3, 16, 16))          # full k-space: A^H A = I
    s = estimate_scale(A(x), A, percentile=90.0)
    assert s.shape == (3, 1, 1)
    np.testing.assert_allclose(s[:, 0, 0], np.percentile(x.reshape(3, -1), 90.0, axis=1), rtol=1e-4)
    g = estimate_scale(A(x), A, per_image=False)
    assert g.shape == () and float(g) == pytest.approx(x.max(), rel=1e-4)


def test_vdm_config_intensity_percentile():
    assert VDM(VDMConfig(base_channels=8, channel_mult=(1, 2), attention_levels=(),
                         norm_groups=4, intensity_percentile=99.0)).intensity_percentile == 99.0
    with pytest.raises(ValueError, match="intensity_percentile"):
        VDMConfig(intensity_percentile=0.0)
    with pytest.raises(ValueError, match="intensity_percentile"):
        VDMConfig(intensity_percentile=120.0)
