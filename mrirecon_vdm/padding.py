"""Any image size for the prior: its network needs sizes that are multiples of its
``downsample_factor`` (8 for the shipped U-Net), so :func:`predict_eps` pads the noisy images
by reflection to the next multiple, runs the prior and crops its prediction back. The samplers
and the plug-and-play denoiser call the prior through it; sizes that are multiples already go
through untouched."""

__all__ = ["padding_for", "predict_eps"]


def padding_for(shape, factor):
    """``(top, bottom, left, right)`` to pad ``(H, W)`` to multiples of ``factor`` (the
    extra pixel of an odd amount at the bottom / right)."""
    ph, pw = (-int(shape[0])) % int(factor), (-int(shape[1])) % int(factor)
    return ph // 2, ph - ph // 2, pw // 2, pw - pw // 2


def predict_eps(prior, z, t):
    """``prior.predict_eps(z, t)`` for images ``z`` (B, C, H, W) of any size.

    Args:
        prior: the prior (protocol of ``docs/architecture.md``).
        z (torch.Tensor): (B, C, H, W) noisy images.
        t (torch.Tensor): (B,) times.

    Returns:
        torch.Tensor: (B, C, H, W) predicted noise.
    """
    import torch.nn.functional as F

    top, bottom, left, right = padding_for(z.shape[-2:], getattr(prior, "downsample_factor", 1))
    if not (top or bottom or left or right):
        return prior.predict_eps(z, t)
    H, W = z.shape[-2:]
    # reflection keeps the noise statistics at the border (it needs a pad below the size)
    mode = "reflect" if max(top, bottom) < H and max(left, right) < W else "replicate"
    eps = prior.predict_eps(F.pad(z, (left, right, top, bottom), mode=mode), t)
    return eps[..., top:top + H, left:left + W]
