"""Batched, seeded data augmentation for training the prior (torch).

One call warps and crops a batch of slices into training patches with a single
``grid_sample`` (flips, small rotations and scalings, a smooth elastic displacement, a
random patch position), then applies an optional random sharpening, an optional random
tissue-contrast change (:func:`remap_contrast`), a smooth multiplicative bias field, a gamma change and a random global intensity scale around 1. Every random number
comes from the ``torch.Generator`` passed in, so a run is reproducible and resumable.

**Sharpness.** Interpolation is a low-pass filter: a bilinear resampling at a half-pixel
offset removes the Nyquist frequency entirely, and the data set's slices were already
anti-aliased when resampled from finer grids. A prior trained only on such patches learns
that brains have almost no energy near Nyquist, while a real acquisition at the target
resolution (a truncated k-space) keeps it. So: patch positions are whole pixels (a patch
that is not rotated, scaled or warped is an exact copy) and warps use bicubic
interpolation. Optionally (``sharpen_prob`` > 0) a random unsharp mask
``x + a (x − b * x)`` (``b`` the 3 × 3 binomial kernel, ``a`` uniform in
``[0, sharpen_max]``; amplitude gain ``1 + a`` at Nyquist) spans the range from smooth to
sharp acquisitions; it is off by default and in the shipped recipe, because a prior trained
with it reconstructed the held-out people with lower PSNR (``docs/training.md``).
"""
import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F

__all__ = ["AugmentConfig", "augment_patches", "remap_contrast"]


@dataclass
class AugmentConfig:
    """Augmentation strengths (each applied to every image with its probability).

    Attributes:
        hflip_prob, vflip_prob: probability of a left-right / up-down flip.
        rotate_deg: rotations uniform in ±rotate_deg degrees (probability rotate_prob).
        scale_range: isotropic scaling factor uniform in [lo, hi] (probability scale_prob).
        elastic_px: std of the elastic displacement in pixels (probability elastic_prob),
            smooth on a grid of ``elastic_grid`` × ``elastic_grid`` control points.
        bias_std: std of the log bias field (smooth, ``bias_grid`` control points),
            probability bias_prob.
        gamma_log_range: gamma exponent exp(U(−g, g)) (probability gamma_prob).
        intensity_range: global intensity scale uniform in [lo, hi] (always).
        interp: ``"bicubic"`` or ``"bilinear"`` interpolation of warped patches.
        whole_pixel: patch positions on whole pixels (False: continuous positions, as in
            with ``interp="bilinear"``, the recipe that ``sharpen_prob`` and the spectra of
            ``docs/data.md`` compare against).
        sharpen_max: strength ``a`` of the unsharp mask uniform in [0, sharpen_max]
            (probability sharpen_prob); the gain at the Nyquist frequency is ``1 + a``.
        contrast_prob: probability of a random tissue-contrast change (:func:`remap_contrast`):
            the intensities are sent through a random piecewise-linear map through 0 with
            ``contrast_knots`` knots, monotone with probability ``contrast_monotone_prob``
            (tissue order kept, contrast changed) and otherwise free (tissue order changed, as
            from T1 to T2 weighting). 0 (off) in the shipped recipe: it makes a better density
            model of unseen people and a worse super-resolution prior (``docs/results.md``).
    """
    hflip_prob: float = 0.5
    vflip_prob: float = 0.0
    rotate_prob: float = 0.5
    rotate_deg: float = 10.0
    scale_prob: float = 0.5
    scale_range: tuple = (0.9, 1.1)
    elastic_prob: float = 0.5
    elastic_px: float = 1.5
    elastic_grid: int = 5
    bias_prob: float = 0.5
    bias_std: float = 0.15
    bias_grid: int = 3
    gamma_prob: float = 0.5
    gamma_log_range: float = 0.3
    intensity_range: tuple = (0.85, 1.15)
    interp: str = "bicubic"
    whole_pixel: bool = True
    sharpen_prob: float = 0.0
    sharpen_max: float = 1.5
    contrast_prob: float = 0.0
    contrast_knots: int = 6
    contrast_monotone_prob: float = 0.3

    def __post_init__(self):
        from .._checks import check_fields
        check_fields(self)        # types of every field, named
        if self.interp not in ("bicubic", "bilinear"):
            raise ValueError(f"AugmentConfig.interp: expected 'bicubic' or 'bilinear', got "
                             f"{self.interp!r}")
        if not (math.isfinite(self.sharpen_max) and self.sharpen_max >= 0):
            raise ValueError(f"AugmentConfig.sharpen_max: expected a finite number >= 0, got "
                             f"{self.sharpen_max}")
        if not 2 <= self.contrast_knots <= 64:
            raise ValueError(f"AugmentConfig.contrast_knots: expected an integer in [2, 64], "
                             f"got {self.contrast_knots}")
        for name in ("scale_range", "intensity_range"):
            v = getattr(self, name)
            if len(v) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool)
                                      for a in v):
                raise ValueError(f"AugmentConfig.{name}: expected two numbers [lo, hi], got "
                                 f"{list(v)!r}")
            setattr(self, name, tuple(float(a) for a in v))
        for f in fields(self):
            if f.name.endswith("_prob") and not 0.0 <= getattr(self, f.name) <= 1.0:
                raise ValueError(f"AugmentConfig.{f.name}: expected a probability in [0, 1], "
                                 f"got {getattr(self, f.name)}")
        for name in ("scale_range", "intensity_range"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"AugmentConfig.{name}: expected 0 < lo <= hi, got {(lo, hi)}")

    def to_dict(self):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d):
        if isinstance(d, cls):
            return d
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"AugmentConfig: unknown keys {unknown}; allowed: {sorted(names)}")
        return cls(**d)

    @classmethod
    def none(cls):
        """No augmentation at all (random patch positions only)."""
        return cls(hflip_prob=0, vflip_prob=0, rotate_prob=0, scale_prob=0, elastic_prob=0,
                   bias_prob=0, gamma_prob=0, sharpen_prob=0, intensity_range=(1.0, 1.0))


def _u(n, lo, hi, gen):
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def _coin(n, p, gen):
    return torch.rand(n, generator=gen) < p


def _smooth_field(n, channels, grid, size, std, gen):
    """Smooth random field (n, channels, *size): bicubic upsampling of grid×grid normals."""
    coarse = std * torch.randn(n, channels, grid, grid, generator=gen)
    return F.interpolate(coarse, size=size, mode="bicubic", align_corners=True)


_BINOMIAL = torch.tensor([1.0, 2.0, 1.0]) / 4


def sharpen(x, amount):
    """Unsharp mask ``x + a (x − b * x)`` per image, ``b`` the 3 × 3 binomial kernel.

    Args:
        x (torch.Tensor): (B, C, H, W) images.
        amount (torch.Tensor): (B,) strengths ``a`` >= 0 (gain ``1 + a`` at Nyquist).

    Returns:
        torch.Tensor: the sharpened images, clamped at 0 (magnitudes); replicate padding.
    """
    b, c, h, w = x.shape
    k = torch.outer(_BINOMIAL, _BINOMIAL).to(x)[None, None].expand(c, 1, 3, 3)
    blur = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k, groups=c)
    return (x + amount.to(x)[:, None, None, None] * (x - blur)).clamp_min(0)


def remap_contrast(x, knots, monotone, generator):
    """Random tissue-contrast change: each image through its own piecewise-linear map.

    The map of image ``b`` goes through ``(0, 0)`` and ``knots - 1`` more knots equally
    spaced up to 1 (the slices' intensity unit; up to the image's maximum if larger), with values uniform in [0, 1] (``monotone[b]`` False:
    any order, so dark tissue may turn bright as between T1 and T2 weighting) or their
    cumulative sums (``monotone[b]`` True: tissue order kept); the values are divided by
    their maximum, so the output's maximum is about 1 like the input's. Background (0)
    stays 0 and the texture within a tissue class is kept (up to the local slope). In the
    spirit of SynthSeg's generative training (Billot et al., Medical Image Analysis 2023),
    without a segmentation.

    Args:
        x (torch.Tensor): (B, C, H, W) non-negative images.
        knots (int): number of knots including the one at 0.
        monotone (torch.Tensor): (B,) bool.
        generator (torch.Generator): the only source of randomness.

    Returns:
        torch.Tensor: the remapped images, same shape.
    """
    b = x.shape[0]
    v = torch.rand(b, knots - 1, generator=generator)
    v = torch.where(monotone[:, None], torch.cumsum(v, 1), v)
    v = torch.cat([torch.zeros(b, 1), v / v.amax(1, keepdim=True).clamp_min(1e-6)], 1)
    # knots span [0, 1] in slice units (a patch without bright tissue uses the low knots,
    # like the slice it came from), or up to the patch's maximum where that is above 1
    top = x.flatten(1).amax(1).clamp_min(1.0)[:, None, None, None]
    u = (x / top).clamp(0, 1) * (knots - 1)                  # knot coordinate
    i = u.floor().clamp(max=knots - 2).long()
    frac = u - i
    vb = v.to(x)[:, None, None, None, :].expand(*x.shape, knots)
    lo = torch.gather(vb, -1, i[..., None])[..., 0]
    hi = torch.gather(vb, -1, (i + 1)[..., None])[..., 0]
    return lo + frac * (hi - lo)


def augment_patches(images, patch_size, config, generator):
    """Draw augmented training patches from a batch of slices.

    Args:
        images (torch.Tensor): (B, C, H, W) float32 slices on the CPU, each scaled to a
            maximum of about 1 (zero outside the object).
        patch_size (int or tuple): (P_h, P_w) of the output patches, at most (H, W).
        config (AugmentConfig): augmentation strengths.
        generator (torch.Generator): CPU generator, the only source of randomness.

    Returns:
        torch.Tensor: (B, C, P_h, P_w) float32 patches.
    """
    b, c, h, w = images.shape
    ph, pw = (patch_size, patch_size) if isinstance(patch_size, int) else tuple(patch_size)
    if ph > h or pw > w:
        raise ValueError(f"augment_patches: expected a patch no larger than the images "
                         f"{(h, w)}, got {(ph, pw)}")
    cfg = config
    # --- geometry: output pixel p (patch coords, source pixel units, centred) ---
    ys = torch.arange(ph, dtype=torch.float32) - (ph - 1) / 2
    xs = torch.arange(pw, dtype=torch.float32) - (pw - 1) / 2
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    p = torch.stack([gx, gy], dim=-1).expand(b, ph, pw, 2)          # (B, P, P, 2) (x, y)
    sx = torch.where(_coin(b, cfg.hflip_prob, generator), -1.0, 1.0)
    sy = torch.where(_coin(b, cfg.vflip_prob, generator), -1.0, 1.0)
    ang = torch.where(_coin(b, cfg.rotate_prob, generator),
                      _u(b, -cfg.rotate_deg, cfg.rotate_deg, generator), torch.zeros(b))
    ang = ang * math.pi / 180
    scl = torch.where(_coin(b, cfg.scale_prob, generator),
                      _u(b, *cfg.scale_range, generator), torch.ones(b))
    cos, sin = torch.cos(ang) / scl, torch.sin(ang) / scl        # zoom in when scl > 1
    a = torch.stack([torch.stack([cos * sx, -sin * sy], -1),
                     torch.stack([sin * sx, cos * sy], -1)], -2)  # (B, 2, 2)
    src = torch.einsum("bij,bhwj->bhwi", a, p)
    if cfg.elastic_prob > 0:
        disp = _smooth_field(b, 2, cfg.elastic_grid, (ph, pw), cfg.elastic_px, generator)
        on = _coin(b, cfg.elastic_prob, generator).float()[:, None, None, None]
        src = src + on * disp.permute(0, 2, 3, 1)
    # random patch centre such that the un-warped patch lies inside, on whole pixels
    # (an un-warped patch is then an exact copy, not an interpolation)
    cx = _u(b, (pw - 1) / 2, (w - 1) - (pw - 1) / 2, generator)
    cy = _u(b, (ph - 1) / 2, (h - 1) - (ph - 1) / 2, generator)
    if cfg.whole_pixel:
        cx = torch.round(cx - (pw - 1) / 2) + (pw - 1) / 2
        cy = torch.round(cy - (ph - 1) / 2) + (ph - 1) / 2
    src = src + torch.stack([cx, cy], -1)[:, None, None, :]
    # pixel index -> normalised coordinates (align_corners=False)
    grid = torch.stack([(src[..., 0] + 0.5) / w * 2 - 1, (src[..., 1] + 0.5) / h * 2 - 1], -1)
    out = F.grid_sample(images, grid, mode=cfg.interp, padding_mode="zeros",
                        align_corners=False)
    if cfg.interp == "bicubic":
        out = out.clamp_min(0)
    # --- sharpness ---
    if cfg.sharpen_prob > 0:
        amt = _u(b, 0.0, cfg.sharpen_max, generator)
        amt = torch.where(_coin(b, cfg.sharpen_prob, generator), amt, torch.zeros(b))
        out = sharpen(out, amt)
    # --- tissue contrast (before the bias field: the map acts on tissue intensities) ---
    if cfg.contrast_prob > 0:
        on = _coin(b, cfg.contrast_prob, generator)
        mono = _coin(b, cfg.contrast_monotone_prob, generator)
        out = torch.where(on[:, None, None, None],
                          remap_contrast(out, cfg.contrast_knots, mono, generator), out)
    # --- intensity ---
    if cfg.bias_prob > 0:
        logb = _smooth_field(b, 1, cfg.bias_grid, (ph, pw), cfg.bias_std, generator)
        on = _coin(b, cfg.bias_prob, generator).float()[:, None, None, None]
        out = out * torch.exp(on * logb)
    if cfg.gamma_prob > 0:
        g = torch.exp(_u(b, -cfg.gamma_log_range, cfg.gamma_log_range, generator))
        g = torch.where(_coin(b, cfg.gamma_prob, generator), g, torch.ones(b))
        out = out.clamp_min(0).pow(g[:, None, None, None])
    lo, hi = cfg.intensity_range
    out = out * _u(b, lo, hi, generator)[:, None, None, None]
    return out.contiguous()
