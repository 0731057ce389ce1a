import pytest
import torch

from mrirecon_vdm.prior.augment import AugmentConfig, augment_patches


def test_shapes_and_determinism():
    x = torch.rand(5, 1, 32, 32)
    a = augment_patches(x, 16, AugmentConfig(), torch.Generator().manual_seed(1))
    b = augment_patches(x, 16, AugmentConfig(), torch.Generator().manual_seed(1))
    assert a.shape == (5, 1, 16, 16) and torch.equal(a, b)
    assert torch.isfinite(a).all() and (a >= 0).all()


def test_constant_image_stays_constant_without_augmentation():
    x = torch.full((3, 1, 32, 24), 0.7)
    out = augment_patches(x, (16, 8), AugmentConfig.none(), torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, torch.full((3, 1, 16, 8), 0.7))


def test_intensity_scale_range():
    x = torch.ones(64, 1, 16, 16)
    cfg = AugmentConfig.none()
    cfg.intensity_range = (0.85, 1.15)
    out = augment_patches(x, 8, cfg, torch.Generator().manual_seed(0))
    per = out.flatten(1)
    assert torch.allclose(per.min(1).values, per.max(1).values)
    assert 0.85 <= float(per.min()) and float(per.max()) <= 1.15


def test_errors():
    with pytest.raises(ValueError, match="no larger than"):
        augment_patches(torch.rand(1, 1, 8, 8), 16, AugmentConfig(), torch.Generator())
    with pytest.raises(ValueError, match="probability"):
        AugmentConfig(hflip_prob=2.0)
