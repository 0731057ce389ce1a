import pytest
import torch

from mrirecon_vdm.prior.augment import (AugmentConfig, augment_patches, remap_contrast,
                                        sharpen)


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


def test_unwarped_patch_is_an_exact_copy():
    # whole-pixel patch positions: without warps a patch is a crop, not an interpolation
    x = torch.rand(6, 1, 40, 36)
    for interp in ("bicubic", "bilinear"):
        cfg = AugmentConfig.none()
        cfg.interp = interp
        out = augment_patches(x, (16, 12), cfg, torch.Generator().manual_seed(3))
        for img, patch in zip(x[:, 0], out[:, 0]):
            hits = [(r, c) for r in range(40 - 16 + 1) for c in range(36 - 12 + 1)
                    if (img[r:r + 16, c:c + 12] - patch).abs().max() < 1e-5]
            assert len(hits) == 1


def _nyquist_power(p):
    k = torch.fft.fft2(p[:, 0] - p[:, 0].mean((-2, -1), keepdim=True))
    return (k[:, p.shape[-2] // 2, :].abs() ** 2).mean()


def test_sharpen_gain_and_range():
    # the unsharp mask multiplies the Nyquist row by 1 + a and leaves constants alone
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 16, 16, generator=g) + 1.0
    stripes = (torch.arange(16) % 2).float()[:, None].expand(16, 16)   # pure Nyquist in y
    img = (1.0 + 0.25 * stripes)[None, None].repeat(2, 1, 1, 1)
    out = sharpen(img, torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(out[0], img[0])
    amp_in = (img[1, 0, 5, 3] - img[1, 0, 4, 3]).abs()
    amp_out = (out[1, 0, 5, 3] - out[1, 0, 4, 3]).abs()
    torch.testing.assert_close(amp_out, 2.0 * amp_in)
    torch.testing.assert_close(sharpen(torch.full((1, 1, 8, 8), 0.3), torch.tensor([2.0])),
                               torch.full((1, 1, 8, 8), 0.3))
    assert (sharpen(x - 1.0, torch.full((4,), 2.0)) >= 0).all()
    # through augment_patches: more energy near Nyquist on average, still >= 0
    base = AugmentConfig.none()
    sharp = AugmentConfig.none()
    sharp.sharpen_prob, sharp.sharpen_max = 1.0, 2.0
    imgs = torch.rand(32, 1, 24, 24, generator=g)
    a = augment_patches(imgs, 16, base, torch.Generator().manual_seed(1))
    b = augment_patches(imgs, 16, sharp, torch.Generator().manual_seed(1))
    assert (b >= 0).all() and _nyquist_power(b) > 1.5 * _nyquist_power(a)
    with pytest.raises(ValueError, match="sharpen_max"):
        AugmentConfig(sharpen_max=-1.0)
    with pytest.raises(ValueError, match="interp"):
        AugmentConfig(interp="nearest")


def test_remap_contrast_keeps_background_and_order_when_monotone():
    g = torch.Generator().manual_seed(0)
    x = torch.linspace(0, 1, 101).repeat(8, 1, 101, 1)          # a ramp in every image
    mono = torch.tensor([True] * 4 + [False] * 4)
    y = remap_contrast(x, 6, mono, g)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert float(y[..., 0].abs().max()) == 0.0                 # background stays 0
    assert float(y.min()) >= 0 and float(y.amax((1, 2, 3)).min()) == pytest.approx(1.0)
    d = torch.diff(y[:, 0, 0], dim=-1)
    assert (d[:4] >= -1e-6).all()                              # monotone maps keep order
    assert (d[4:] < -1e-3).any()                               # free maps reorder tissues
    # piecewise linear: within a knot interval the texture is kept up to the slope
    x2 = 0.5 + 0.01 * torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y2 = remap_contrast(x2, 3, torch.tensor([True, False]), torch.Generator().manual_seed(2))
    for b in range(2):
        c = torch.corrcoef(torch.stack([x2[b].flatten(), y2[b].flatten()]))[0, 1]
        assert abs(float(c)) > 0.99


def test_contrast_augmentation_is_seeded_and_off_by_default():
    x = torch.rand(6, 1, 32, 32)
    cfg = AugmentConfig(contrast_prob=1.0)
    a = augment_patches(x, 16, cfg, torch.Generator().manual_seed(3))
    b = augment_patches(x, 16, cfg, torch.Generator().manual_seed(3))
    c = augment_patches(x, 16, AugmentConfig(), torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert AugmentConfig().contrast_prob == 0.0
    assert AugmentConfig.from_dict({"hflip_prob": 0.5}).contrast_prob == 0.0   # old configs
    with pytest.raises(ValueError, match="contrast_knots"):
        AugmentConfig(contrast_knots=1)
    with pytest.raises(ValueError, match="contrast_prob"):
        AugmentConfig(contrast_prob=1.5)
