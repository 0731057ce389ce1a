"""The noise-prediction U-Net ε_θ(z_t; γ_t) of the variational diffusion model.

A compact ADM/DDPM-style U-Net *with* down-sampling: residual blocks with GroupNorm and
SiLU, a γ-embedding added inside each residual block, self-attention at chosen
resolution levels and in the middle, VDM's Fourier-feature inputs, zero-initialised
output. Fully convolutional: it trains on patches and runs on any H, W that are multiples
of ``downsample_factor`` = 2 ** (len(channel_mult) − 1). All reshapes are written so that
channels-last tensors stay channels-last.

References:
    Kingma, D. P., Salimans, T., Poole, B., Ho, J. (2021). Variational Diffusion Models.
    NeurIPS 34, 21696–21707. arXiv:2107.00630 (Fourier features: Section 4 / Appendix C).
    Ho, J., Jain, A., Abbeel, P. (2020). Denoising Diffusion Probabilistic Models.
    NeurIPS 33, 6840–6851 (the U-Net design).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["UNet"]


def _norm(channels, groups):
    g = math.gcd(int(groups), int(channels))
    return nn.GroupNorm(g, channels)


def timestep_embedding(x, dim, max_period=10000.0):
    """Sinusoidal embedding of a scalar per sample.

    Args:
        x (torch.Tensor): (B,) values, typically in [0, 1000].
        dim (int): embedding size (even).

    Returns:
        torch.Tensor: (B, dim).
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=x.device,
                                                           dtype=torch.float32) / half)
    args = x.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class ResBlock(nn.Module):
    """GroupNorm → SiLU → conv → (+ γ-embedding) → GroupNorm → SiLU → dropout → conv, + skip."""

    def __init__(self, in_ch, out_ch, emb_dim, groups, dropout=0.0):
        super().__init__()
        self.norm1 = _norm(in_ch, groups)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, out_ch)
        self.norm2 = _norm(out_ch, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    """Multi-head self-attention over all pixels (residual, zero-initialised output)."""

    def __init__(self, ch, groups, num_heads=1):
        super().__init__()
        if ch % num_heads:
            raise ValueError(f"AttnBlock: expected channels divisible by num_heads, got "
                             f"{ch} channels and {num_heads} heads")
        self.norm = _norm(ch, groups)
        self.qkv = nn.Linear(ch, 3 * ch)
        self.proj = nn.Linear(ch, ch)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        self.num_heads = num_heads

    def forward(self, x):
        b, c, h, w = x.shape
        # (B, H, W, C) is contiguous for channels-last input: no copy
        t = self.norm(x).permute(0, 2, 3, 1).reshape(b, h * w, c)
        q, k, v = self.qkv(t).reshape(b, h * w, 3, self.num_heads, c // self.num_heads) \
            .permute(2, 0, 3, 1, 4).unbind(0)
        o = F.scaled_dot_product_attention(q, k, v)              # (B, heads, HW, C/heads)
        o = self.proj(o.transpose(1, 2).reshape(b, h * w, c))
        return x + o.reshape(b, h, w, c).permute(0, 3, 1, 2)


class Downsample(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UNet(nn.Module):
    """ε_θ(z_t; γ_t): predicts the noise ε in z_t = α_t x + σ_t ε.

    Args:
        image_channels (int): C of the images.
        base_channels (int): channels at the first level.
        channel_mult (tuple of int): channel multiplier per resolution level; the image is
            halved between levels, so ``downsample_factor = 2 ** (len(channel_mult) - 1)``.
        num_res_blocks (int): residual blocks per level (down path; the up path has one more).
        attention_levels (tuple of int): level indices (0 = full resolution) with
            self-attention after each residual block.
        mid_attention (bool): self-attention in the middle block.
        num_heads (int): attention heads.
        norm_groups (int): GroupNorm groups (reduced to a divisor of the channel count).
        dropout (float): dropout inside residual blocks.
        fourier_exponents (tuple of int): n for the extra input channels sin(2^n π z),
            cos(2^n π z) (VDM's Fourier features); empty for none.
        gamma_range (tuple of float): (γ_lo, γ_hi) used to normalise γ to [0, 1] before the
            sinusoidal embedding (fixed numbers, not the learned endpoints).
        extra_res_blocks (tuple of int): per level, extra residual blocks (input channels =
            output channels) after each residual block of that level; the middle block gets
            the last level's count after ``mid2``. Empty or zeros: none (the state dict is
            then the same as without the option). Each extra block starts as the identity
            (its last convolution is zero), so a trained network deepened this way computes
            exactly what it did before (:meth:`load_shallower`): a capacity lever that can
            be fine-tuned from trained weights instead of trained from scratch.
    """

    def __init__(self, image_channels=1, base_channels=32, channel_mult=(1, 2, 2, 2),
                 num_res_blocks=2, attention_levels=(2,), mid_attention=True, num_heads=1,
                 norm_groups=8, dropout=0.0, fourier_exponents=(6, 7),
                 gamma_range=(-13.3, 5.0), extra_res_blocks=()):
        super().__init__()
        extra = tuple(int(e) for e in extra_res_blocks)
        if extra and (len(extra) != len(channel_mult) or min(extra) < 0):
            raise ValueError(f"UNet.extra_res_blocks: expected {len(channel_mult)} counts "
                             f">= 0 (one per level of channel_mult) or none, got {extra}")
        self.extra_res_blocks = extra if any(extra) else ()
        self.image_channels = int(image_channels)
        self.fourier_exponents = tuple(int(n) for n in fourier_exponents)
        self.register_buffer("fourier_freqs", torch.tensor(
            [math.pi * 2.0 ** n for n in self.fourier_exponents], dtype=torch.float32),
            persistent=False)
        self.gamma_range = (float(gamma_range[0]), float(gamma_range[1]))
        self.downsample_factor = 2 ** (len(channel_mult) - 1)
        ch = int(base_channels)
        self.emb_in = ch
        emb_dim = 4 * ch
        self.emb = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        in_ch = self.image_channels * (1 + 2 * len(self.fourier_exponents))
        self.conv_in = nn.Conv2d(in_ch, ch, 3, padding=1)

        def extras(level, out):
            n = self.extra_res_blocks[level] if self.extra_res_blocks else 0
            return nn.ModuleList([ResBlock(out, out, emb_dim, norm_groups, dropout)
                                  for _ in range(n)])

        self.down = nn.ModuleList()
        down_extra, up_extra = [], []
        skips = [ch]
        cur = ch
        for level, mult in enumerate(channel_mult):
            out = ch * mult
            for _ in range(num_res_blocks):
                blocks = [ResBlock(cur, out, emb_dim, norm_groups, dropout)]
                if level in attention_levels:
                    blocks.append(AttnBlock(out, norm_groups, num_heads))
                self.down.append(nn.ModuleList(blocks))
                down_extra.append(extras(level, out))
                cur = out
                skips.append(cur)
            if level != len(channel_mult) - 1:
                self.down.append(nn.ModuleList([Downsample(cur)]))
                down_extra.append(nn.ModuleList())
                skips.append(cur)

        self.mid1 = ResBlock(cur, cur, emb_dim, norm_groups, dropout)
        self.mid_attn = AttnBlock(cur, norm_groups, num_heads) if mid_attention else None
        self.mid2 = ResBlock(cur, cur, emb_dim, norm_groups, dropout)
        mid_extra = extras(len(channel_mult) - 1, cur)

        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            out = ch * mult
            for i in range(num_res_blocks + 1):
                blocks = [ResBlock(cur + skips.pop(), out, emb_dim, norm_groups, dropout)]
                if level in attention_levels:
                    blocks.append(AttnBlock(out, norm_groups, num_heads))
                cur = out
                if level != 0 and i == num_res_blocks:
                    blocks.append(Upsample(cur))
                self.up.append(nn.ModuleList(blocks))
                up_extra.append(extras(level, out))
        if self.extra_res_blocks:     # only then: the state dict of a plain U-Net is unchanged
            self.down_extra = nn.ModuleList(down_extra)
            self.mid_extra = mid_extra
            self.up_extra = nn.ModuleList(up_extra)
        self.norm_out = _norm(cur, norm_groups)
        self.conv_out = nn.Conv2d(cur, self.image_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def _inputs(self, z):
        if not self.fourier_exponents:
            return z
        zf = z[:, :, None] * self.fourier_freqs[None, None, :, None, None].to(z.dtype)
        zf = zf.flatten(1, 2)                                      # (B, C*F, H, W)
        return torch.cat([z, torch.sin(zf), torch.cos(zf)], dim=1)

    def forward(self, z, gamma):
        """ε̂ for noisy images ``z`` (B, C, H, W) at noise levels ``gamma`` (B,)."""
        lo, hi = self.gamma_range
        g = (gamma.float() - lo) / (hi - lo)
        emb = self.emb(timestep_embedding(1000.0 * g, self.emb_in).to(z.dtype))
        h = self.conv_in(self._inputs(z))
        hs = [h]
        deep = bool(self.extra_res_blocks)
        for i, blocks in enumerate(self.down):
            h = self._group(blocks, self.down_extra[i] if deep else (), h, emb)
            hs.append(h)
        h = self.mid1(h, emb)
        if self.mid_attn is not None:
            h = self.mid_attn(h)
        h = self.mid2(h, emb)
        for blk in (self.mid_extra if deep else ()):
            h = blk(h, emb)
        for i, blocks in enumerate(self.up):
            h = torch.cat([h, hs.pop()], dim=1)
            h = self._group(blocks, self.up_extra[i] if deep else (), h, emb)
        return self.conv_out(F.silu(self.norm_out(h)))

    @staticmethod
    def _group(blocks, extra, h, emb):
        for blk in blocks:
            if isinstance(blk, ResBlock):
                h = blk(h, emb)
                for e in extra:                       # right after the block, same size
                    h = e(h, emb)
            else:
                h = blk(h)
        return h

    def load_shallower(self, state_dict):
        """Load the weights of the same U-Net without ``extra_res_blocks`` (Net2DeeperNet).

        Every tensor of ``state_dict`` must match one of this network's; the extra blocks
        keep their initialisation, which is the identity (zero last convolution), so the
        network computes what the shallower one did. Call it on a freshly built network.

        Raises:
            ValueError: ``state_dict`` does not fit (unexpected or missing tensors other
                than the extra blocks', or another shape), or an extra block is not the
                identity any more.
        """
        ours = self.state_dict()
        prefixes = ("down_extra.", "mid_extra.", "up_extra.")
        missing = [k for k in ours if k not in state_dict and not k.startswith(prefixes)]
        unexpected = [k for k in state_dict if k not in ours]
        shape = [k for k in state_dict if k in ours
                 and tuple(ours[k].shape) != tuple(state_dict[k].shape)]
        if missing or unexpected or shape:
            raise ValueError(f"UNet.load_shallower: the state dict does not fit this network "
                             f"without its extra blocks ({len(missing)} missing, "
                             f"{len(unexpected)} unexpected, {len(shape)} of another shape, "
                             f"e.g. {(missing + unexpected + shape)[0]})")
        for name, mod in self.named_modules():
            if name.startswith(prefixes) and isinstance(mod, ResBlock) and (
                    mod.conv2.weight.abs().max() > 0 or mod.conv2.bias.abs().max() > 0):
                raise ValueError(f"UNet.load_shallower: extra block {name} is not the "
                                 f"identity; call it on a freshly built network")
        self.load_state_dict(state_dict, strict=False)
