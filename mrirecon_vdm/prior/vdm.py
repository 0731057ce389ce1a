"""The variational diffusion model (VDM) used as the image prior.

Notation (code name → symbol of Kingma et al. 2021):

=====================  ==================================================
``x``                  x, a clean image (B, C, H, W), intensities ≈ [0, 1]
``t``                  t ∈ [0, 1], diffusion time
``gamma``              γ_η(t) = −log SNR(t)
``alpha``, ``sigma``   α_t = sqrt(sigmoid(−γ)), σ_t = sqrt(sigmoid(γ))
``z``                  z_t = α_t x + σ_t ε
``eps_hat``            ε̂_θ(z_t; γ_t)
=====================  ==================================================

The diffusion runs on ``x`` itself (no hidden affine map), so a linear data-consistency
step in a sampler works in the user's intensity units.

The negative variational lower bound of the data log-likelihood has three terms
(VDM eq. 11):

1. reconstruction loss  −E_q[log p(x | z_0)];
2. prior loss           KL(q(z_1 | x) ‖ N(0, I));
3. diffusion loss       continuous time: ½ E_{t, ε}[γ'(t) ‖ε − ε̂_θ(z_t; t)‖²];
                        T steps: (T/2) E_{i, ε}[(exp(γ(t_i) − γ(s_i)) − 1) ‖ε − ε̂‖²].

Reconstruction likelihood. ``likelihood="discretized"`` (default) models the data as
8-bit intensities: x is rounded to the grid k/255 (k any integer ≥ 0, so values above 1
from the intensity augmentation are not clipped) and p(x | z_0) is the mass of that bin
under N(z_0/α_0, σ_0²/α_0²). The bound is then a proper bound on a discrete likelihood,
bounded below by 0 bits, and the learned endpoint γ(0) cannot run off to −∞ (with exactly
zero backgrounds a continuous Gaussian density can be made arbitrarily large).
``likelihood="gaussian"`` uses the density N(x; z_0/α_0, σ_0²/α_0²) of the unrounded
data; its bits/dim are differential (can be negative), about 8 bits lower than the
discretised ones for data in [0, 1]. Use it with a fixed (``"linear"``) schedule.

References:
    Kingma, D. P., Salimans, T., Poole, B., Ho, J. (2021). Variational Diffusion Models.
    Advances in Neural Information Processing Systems 34 (NeurIPS 2021), 21696–21707.
    arXiv:2107.00630.
"""
import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .schedule import LearnedGamma, LinearGamma
from .unet import UNet

__all__ = ["VDMConfig", "VDMLoss", "VDM"]

SCHEDULES = ("learned", "linear")
LIKELIHOODS = ("discretized", "gaussian")


@dataclass
class VDMConfig:
    """Configuration of a :class:`VDM` (network, schedule, loss). JSON-serialisable.

    Attributes:
        image_channels: C.
        base_channels, channel_mult, num_res_blocks, attention_levels, mid_attention,
            num_heads, norm_groups, dropout, fourier_exponents, extra_res_blocks: the U-Net
            (see :class:`mrirecon_vdm.prior.unet.UNet`; ``extra_res_blocks`` deepens it
            with identity-initialised blocks, and ``TrainConfig.init`` can then start from
            a prior without them).
        schedule: ``"learned"`` (VDM's monotone network) or ``"linear"``.
        gamma_min, gamma_max: γ(0), γ(1) (initial values when learned).
        learn_endpoints: train γ(0), γ(1) with the learned schedule.
        schedule_features: width of the learned schedule's nonlinear branch.
        variance_minimisation: with the learned schedule in continuous time, train its
            shape to minimise the variance of the diffusion-loss estimator (VDM App. I.2).
        num_timesteps: T of the discrete-time loss; 0 means continuous time.
        likelihood: ``"discretized"`` (8-bit bins of width 1/255) or ``"gaussian"``.
        intensity_percentile: the intensity reference q: training slices are divided by
            their q-th percentile (100: the maximum), and reconstruction Apps estimate the
            scale of an unknown image with the same percentile of ``|Aᴴy|``
            (``mrirecon_vdm.intensity.estimate_scale``). 99 is far more stable between people and
            between resolutions than the maximum, which thin bright structures (scalp fat,
            vessels) set and which the low-resolution image underestimates.
    """
    image_channels: int = 1
    base_channels: int = 32
    channel_mult: Tuple[int, ...] = (1, 2, 2, 2)
    num_res_blocks: int = 2
    attention_levels: Tuple[int, ...] = (2,)
    mid_attention: bool = True
    num_heads: int = 1
    norm_groups: int = 8
    dropout: float = 0.0
    fourier_exponents: Tuple[int, ...] = (6, 7)
    extra_res_blocks: Tuple[int, ...] = ()
    schedule: str = "learned"
    gamma_min: float = -13.3
    gamma_max: float = 5.0
    learn_endpoints: bool = True
    schedule_features: int = 1024
    variance_minimisation: bool = True
    num_timesteps: int = 0
    likelihood: str = "discretized"
    intensity_percentile: float = 100.0

    def __post_init__(self):
        from .._checks import check_fields
        check_fields(self)        # types of every field, named (lists become tuples)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"VDMConfig.schedule: expected one of {SCHEDULES}, "
                             f"got {self.schedule!r}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"VDMConfig.likelihood: expected one of {LIKELIHOODS}, "
                             f"got {self.likelihood!r}")
        if not self.gamma_max > self.gamma_min:
            raise ValueError(f"VDMConfig: expected gamma_max > gamma_min, got "
                             f"{self.gamma_min}, {self.gamma_max}")
        if not 0 < self.intensity_percentile <= 100:
            raise ValueError(f"VDMConfig.intensity_percentile: expected a value in (0, 100], "
                             f"got {self.intensity_percentile}")
        if self.num_timesteps < 0:
            raise ValueError(f"VDMConfig.num_timesteps: expected >= 0 (0 = continuous), "
                             f"got {self.num_timesteps}")
        if self.image_channels < 1 or self.base_channels < 1 or not self.channel_mult:
            raise ValueError(f"VDMConfig: expected image_channels, base_channels >= 1 and "
                             f"a non-empty channel_mult, got {self}")
        if self.extra_res_blocks and (len(self.extra_res_blocks) != len(self.channel_mult)
                                      or min(self.extra_res_blocks) < 0):
            raise ValueError(f"VDMConfig.extra_res_blocks: expected {len(self.channel_mult)} "
                             f"counts >= 0 (one per level of channel_mult) or none, got "
                             f"{list(self.extra_res_blocks)}")
        bad = [a for a in self.attention_levels if not 0 <= a < len(self.channel_mult)]
        if bad:
            raise ValueError(f"VDMConfig.attention_levels: expected levels in "
                             f"[0, {len(self.channel_mult) - 1}], got {bad}")

    @property
    def downsample_factor(self):
        return 2 ** (len(self.channel_mult) - 1)

    def to_dict(self):
        """A JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d):
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        if isinstance(d, cls):
            return d
        if not isinstance(d, dict):
            raise ValueError(f"VDMConfig.from_dict: expected a dict, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"VDMConfig: unknown keys {unknown}; allowed: {sorted(names)}")
        return cls(**d)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


@dataclass
class VDMLoss:
    """Terms of the negative variational bound, per sample, in nats unless stated.

    Attributes:
        loss: () mean of ``bpd``, the quantity to minimise.
        bpd: (B,) total bound in bits per dimension.
        loss_recon: (B,) 1. reconstruction loss −log p(x | z_0).
        loss_prior: (B,) 2. prior loss KL(q(z_1 | x) ‖ N(0, I)).
        loss_diff: (B,) 3. diffusion loss.
        t: (B,) the sampled times.
    """
    loss: torch.Tensor
    bpd: torch.Tensor
    loss_recon: torch.Tensor
    loss_prior: torch.Tensor
    loss_diff: torch.Tensor
    t: torch.Tensor


def _log_bin_mass(x, mean, scale, half_width):
    """log P(x − h < y < x + h) for y ~ N(mean, scale²), stable in both tails."""
    a = (x - half_width - mean) / scale
    b = (x + half_width - mean) / scale
    # use the tail where the CDFs are small: for a > 0 reflect (Φ(b) − Φ(a) = Φ(−a) − Φ(−b))
    flip = a > 0
    lo = torch.where(flip, -b, a)
    hi = torch.where(flip, -a, b)
    lhi = torch.special.log_ndtr(hi)
    llo = torch.special.log_ndtr(lo)
    return lhi + torch.log1p(-torch.exp((llo - lhi).clamp(max=-1e-12)))


class VDM(nn.Module):
    """Variational diffusion model: learned schedule γ_η and noise predictor ε_θ.

    Implements the prior protocol of ``docs/architecture.md``: ``gamma(t)``,
    ``predict_eps(z, t)``, ``image_channels``, ``downsample_factor``; plus
    ``predict_x0``, ``alpha_sigma``, the variational bound ``loss`` and an ancestral
    sampler ``sample``.

    Args:
        config (VDMConfig or dict or None): the configuration (default ``VDMConfig()``).

    Attributes:
        compute_dtype (torch.dtype or None): if set (e.g. ``torch.bfloat16``), the network
            runs under ``torch.autocast`` with this dtype; outputs are float32.

    References:
        Kingma, D. P., Salimans, T., Poole, B., Ho, J. (2021). Variational Diffusion
        Models. NeurIPS 34, 21696–21707. arXiv:2107.00630.
    """

    def __init__(self, config=None):
        super().__init__()
        config = VDMConfig() if config is None else VDMConfig.from_dict(config)
        self.config = config
        self.image_channels = config.image_channels
        self.downsample_factor = config.downsample_factor
        self.intensity_percentile = float(config.intensity_percentile)
        self.compute_dtype = None
        if config.schedule == "learned":
            self.schedule = LearnedGamma(config.gamma_min, config.gamma_max,
                                         config.schedule_features, config.learn_endpoints)
        else:
            self.schedule = LinearGamma(config.gamma_min, config.gamma_max)
        self.net = UNet(image_channels=config.image_channels,
                        base_channels=config.base_channels,
                        channel_mult=config.channel_mult,
                        num_res_blocks=config.num_res_blocks,
                        attention_levels=config.attention_levels,
                        mid_attention=config.mid_attention,
                        num_heads=config.num_heads,
                        norm_groups=config.norm_groups,
                        dropout=config.dropout,
                        extra_res_blocks=config.extra_res_blocks,
                        fourier_exponents=config.fourier_exponents,
                        gamma_range=(config.gamma_min, config.gamma_max))

    # ----------------------------------------------------------------- checks
    def _device(self):
        return self.net.conv_in.weight.device

    def check_images(self, name, x):
        """Raise ``ValueError`` unless ``x`` is a finite (B, C, H, W) tensor with H, W
        multiples of ``downsample_factor``."""
        if not torch.is_tensor(x):
            raise ValueError(f"VDM: expected {name} to be a torch.Tensor, got "
                             f"{type(x).__name__}")
        if x.ndim != 4:
            raise ValueError(f"VDM: expected {name} of shape (B, {self.image_channels}, H, W) "
                             f"(rank 4), got shape {tuple(x.shape)}")
        if x.shape[1] != self.image_channels:
            raise ValueError(f"VDM: expected {name} with {self.image_channels} channel(s) "
                             f"(shape (B, {self.image_channels}, H, W)), got shape "
                             f"{tuple(x.shape)}")
        f = self.downsample_factor
        if x.shape[2] % f or x.shape[3] % f:
            raise ValueError(f"VDM: expected {name} height and width multiples of "
                             f"downsample_factor={f}, got {tuple(x.shape[2:])}")
        if x.is_floating_point() is False:
            raise ValueError(f"VDM: expected a floating-point {name}, got dtype {x.dtype}")
        if not bool(torch.isfinite(x).all()):
            n = int((~torch.isfinite(x)).sum())
            raise ValueError(f"VDM: expected finite values in {name}, got {n} NaN/Inf entries")

    def _time(self, t, batch, device):
        t = torch.as_tensor(t, dtype=torch.float32, device=device)
        if t.ndim == 0:
            t = t.expand(batch)
        if t.shape != (batch,):
            raise ValueError(f"VDM: expected t to be a scalar or of shape ({batch},), got "
                             f"shape {tuple(t.shape)}")
        return t

    # ---------------------------------------------------------- the protocol
    def gamma(self, t):
        """γ(t) = −log SNR(t), same shape as ``t`` (any shape, values in [0, 1])."""
        return self.schedule(torch.as_tensor(t, dtype=torch.float32, device=self._device()))

    @staticmethod
    def alpha_sigma(gamma):
        """(α, σ) = (sqrt(sigmoid(−γ)), sqrt(sigmoid(γ))), each shaped like ``gamma``."""
        return torch.sigmoid(-gamma).sqrt(), torch.sigmoid(gamma).sqrt()

    def _eps(self, z, g):
        if self.compute_dtype is not None:
            with torch.autocast(z.device.type, dtype=self.compute_dtype):
                return self.net(z, g).float()
        return self.net(z, g)

    def predict_eps(self, z, t):
        """ε̂_θ(z_t; γ(t)).

        Args:
            z (torch.Tensor): (B, C, H, W) noisy images.
            t (torch.Tensor or float): (B,) times in [0, 1], or a scalar for all.

        Returns:
            torch.Tensor: (B, C, H, W) predicted noise (float32).
        """
        self.check_images("z", z)
        t = self._time(t, z.shape[0], z.device)
        return self._eps(z, self.schedule(t))

    def predict_x0(self, z, t):
        """x̂_0 = (z_t − σ_t ε̂) / α_t, shapes as in :meth:`predict_eps`."""
        self.check_images("z", z)
        t = self._time(t, z.shape[0], z.device)
        g = self.schedule(t)
        alpha, sigma = self.alpha_sigma(g)
        eps = self._eps(z, g)
        return (z - sigma[:, None, None, None] * eps) / alpha[:, None, None, None]

    # -------------------------------------------------------------- the bound
    def forward(self, x, generator=None, t=None, eps=None):
        """Same as :meth:`loss` (so that ``DistributedDataParallel`` can wrap the model)."""
        return self.loss(x, generator=generator, t=t, eps=eps)

    def loss(self, x, generator=None, t=None, eps=None):
        """Negative variational lower bound (VDM eq. 11) for a batch of images.

        Args:
            x (torch.Tensor): (B, C, H, W) images, intensities ≈ [0, 1].
            generator (torch.Generator or None): source of t and ε (on x's device).
            t (torch.Tensor or None): (B,) times; default antithetic
                t_i = (u + i/B) mod 1 with u ~ U[0, 1).
            eps (torch.Tensor or None): (B, C, H, W) noise; default standard normal.

        Returns:
            VDMLoss: the numbered terms and the total in bits per dimension.
        """
        self.check_images("x", x)
        cfg = self.config
        b = x.shape[0]
        dim = x[0].numel()
        dev = x.device
        x = x.float()
        if cfg.likelihood == "discretized":
            x = torch.round(x * 255.0) / 255.0
        if t is None:
            u0 = torch.rand((), generator=generator, device=dev)
            t = torch.remainder(u0 + torch.arange(b, device=dev) / b, 1.0)
        else:
            t = self._time(t, b, dev)
        if eps is None:
            eps = torch.randn(x.shape, generator=generator, device=dev)
        elif eps.shape != x.shape:
            raise ValueError(f"VDM.loss: expected eps of shape {tuple(x.shape)}, got "
                             f"{tuple(eps.shape)}")

        ends = self.schedule(torch.tensor([0.0, 1.0], device=dev))
        g0, g1 = ends[0], ends[1]

        # 1. reconstruction loss: -log p(x | z_0), z_0 = α_0 x + σ_0 ε_0
        eps0 = torch.randn(x.shape, generator=generator, device=dev)
        a0, s0 = self.alpha_sigma(g0)
        if cfg.likelihood == "discretized":
            z0_rescaled = x + torch.exp(0.5 * g0) * eps0          # z_0 / α_0, σ_0/α_0 = e^{γ0/2}
            logp = _log_bin_mass(x, z0_rescaled, torch.exp(0.5 * g0), 0.5 / 255.0)
            loss_recon = -logp.flatten(1).sum(1)
        else:
            loss_recon = 0.5 * (dim * (math.log(2 * math.pi) + g0)
                                + eps0.flatten(1).pow(2).sum(1))

        # 2. prior loss: KL(q(z_1|x) || N(0, I)) = ½ Σ (σ1² + α1² x² − 1 − log σ1²)
        var1 = torch.sigmoid(g1)
        loss_prior = 0.5 * (dim * (var1 - 1.0 - F.logsigmoid(g1))
                            + torch.sigmoid(-g1) * x.flatten(1).pow(2).sum(1))

        # 3. diffusion loss
        if cfg.num_timesteps > 0:
            T = cfg.num_timesteps
            t = torch.clamp(torch.ceil(t * T), min=1.0) / T
            g_t = self.schedule(t)
            g_s = self.schedule(t - 1.0 / T)
            weight = 0.5 * T * torch.expm1(g_t - g_s)
            l2 = self._eps_mse(x, g_t, eps)
            loss_diff = weight * l2
        else:
            holder = {}
            hook = None
            if cfg.variance_minimisation and cfg.schedule == "learned":
                def hook(grad):
                    return grad * holder["scale"]
            g_t, dg = self.schedule.forward_with_derivative(t, shape_grad_hook=hook)
            l2 = self._eps_mse(x, g_t, eps)
            loss_diff = 0.5 * dg * l2
            # gradient of mean(bpd_diff²) for the shape: scale by 2 L_i in bits/dim
            holder["scale"] = (2.0 * loss_diff / (dim * math.log(2.0))).detach()

        bpd = (loss_recon + loss_prior + loss_diff) / (dim * math.log(2.0))
        return VDMLoss(loss=bpd.mean(), bpd=bpd, loss_recon=loss_recon,
                       loss_prior=loss_prior, loss_diff=loss_diff, t=t)

    def _eps_mse(self, x, g_t, eps):
        """‖ε − ε̂_θ(z_t; γ_t)‖² per sample, z_t = α_t x + σ_t ε. Shapes: x, eps (B, C, H, W),
        g_t (B,) → (B,)."""
        alpha, sigma = self.alpha_sigma(g_t)
        z = alpha[:, None, None, None] * x + sigma[:, None, None, None] * eps
        if x.is_contiguous(memory_format=torch.channels_last):
            z = z.contiguous(memory_format=torch.channels_last)
        eps_hat = self._eps(z, g_t)
        return (eps - eps_hat.float()).flatten(1).pow(2).sum(1)

    # ------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample(self, shape, num_steps=100, generator=None, device=None, return_all=False):
        """Unconditional ancestral sampling (VDM Appendix A.4) on a uniform time grid.

        For t → s = t − 1/N: with c = −expm1(γ_s − γ_t),
        z_s = (α_s/α_t)(z_t − σ_t c ε̂_θ(z_t; t)) + σ_s sqrt(c) ε, and finally
        x = z_0 / α_0 (the mean of p(x | z_0)).

        Args:
            shape (tuple): (B, C, H, W), H and W multiples of ``downsample_factor``.
            num_steps (int): N ≥ 1.
            generator (torch.Generator or None): source of the noise (on ``device``).
            device: defaults to the model's device.
            return_all (bool): also return the list of z_t.

        Returns:
            torch.Tensor: (B, C, H, W) samples (float32).
        """
        device = self._device() if device is None else torch.device(device)
        shape = tuple(int(s) for s in shape)
        if len(shape) != 4 or shape[1] != self.image_channels:
            raise ValueError(f"VDM.sample: expected shape (B, {self.image_channels}, H, W), "
                             f"got {shape}")
        f = self.downsample_factor
        if shape[2] % f or shape[3] % f:
            raise ValueError(f"VDM.sample: expected height and width multiples of "
                             f"downsample_factor={f}, got {shape[2:]}")
        if int(num_steps) < 1:
            raise ValueError(f"VDM.sample: expected num_steps >= 1, got {num_steps}")
        n = int(num_steps)
        z = torch.randn(shape, generator=generator, device=device)
        zs = [z]
        for i in range(n, 0, -1):
            t = torch.full((shape[0],), i / n, device=device)
            s = torch.full((shape[0],), (i - 1) / n, device=device)
            g_t, g_s = self.schedule(t), self.schedule(s)
            eps_hat = self._eps(z, g_t)
            a_t, s_t = self.alpha_sigma(g_t)
            a_s, s_s = self.alpha_sigma(g_s)
            c = -torch.expm1(g_s - g_t)
            v = lambda a: a[:, None, None, None]  # noqa: E731
            z = v(a_s / a_t) * (z - v(s_t * c) * eps_hat)
            if i > 1:
                z = z + v(s_s * c.sqrt()) * torch.randn(shape, generator=generator,
                                                        device=device)
            zs.append(z)
        a0, _ = self.alpha_sigma(self.schedule(torch.zeros(shape[0], device=device)))
        x = z / a0[:, None, None, None]
        return (x, zs) if return_all else x
