"""Noise schedules γ(t) = −log SNR(t) of the variational diffusion model.

Both schedules are ``nn.Module`` objects mapping a time ``t`` in [0, 1] (a tensor of any
shape) to γ(t) of the same shape, monotone increasing in t, with

.. math::
    \\sigma_t^2 = \\mathrm{sigmoid}(\\gamma(t)), \\qquad
    \\alpha_t^2 = \\mathrm{sigmoid}(-\\gamma(t)), \\qquad
    \\mathrm{SNR}(t) = \\exp(-\\gamma(t)).

``forward_with_derivative(t)`` also returns dγ/dt in closed form (the continuous-time
diffusion loss needs it).

References:
    Kingma, D. P., Salimans, T., Poole, B., Ho, J. (2021). Variational Diffusion Models.
    Advances in Neural Information Processing Systems 34 (NeurIPS 2021), 21696–21707.
    arXiv:2107.00630. Section 3.2 and Appendix H (the monotone network).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LinearGamma", "LearnedGamma"]


def _inv_softplus(y):
    """x with softplus(x) = y (y > 0), as a Python float."""
    return float(y + math.log(-math.expm1(-y)))


def _as_time(t, ref):
    t = torch.as_tensor(t, dtype=torch.float32, device=ref.device)
    return t.to(torch.float32)


class LinearGamma(nn.Module):
    """Fixed linear schedule γ(t) = γ_min + (γ_max − γ_min) t.

    Args:
        gamma_min (float): γ(0) (log SNR at t = 0 is −γ_min; −13.3 in VDM).
        gamma_max (float): γ(1) (5.0 in VDM). Must exceed ``gamma_min``.
    """

    def __init__(self, gamma_min=-13.3, gamma_max=5.0):
        super().__init__()
        if not gamma_max > gamma_min:
            raise ValueError(f"LinearGamma: expected gamma_max > gamma_min, got "
                             f"gamma_min={gamma_min}, gamma_max={gamma_max}")
        self.register_buffer("gamma_min", torch.tensor(float(gamma_min)))
        self.register_buffer("gamma_max", torch.tensor(float(gamma_max)))

    def forward(self, t):
        """γ(t), same shape as ``t``."""
        t = _as_time(t, self.gamma_min)
        return self.gamma_min + (self.gamma_max - self.gamma_min) * t

    def forward_with_derivative(self, t, shape_grad_hook=None):
        """(γ(t), dγ/dt), both shaped like ``t``. ``shape_grad_hook`` is ignored (no shape)."""
        t = _as_time(t, self.gamma_min)
        g = self.gamma_min + (self.gamma_max - self.gamma_min) * t
        dg = (self.gamma_max - self.gamma_min).expand_as(t)
        return g, dg


class LearnedGamma(nn.Module):
    """VDM's learned monotone schedule with learnable endpoints.

    .. math::
        \\tilde\\gamma(t) = w_1 t + b_1 + \\frac{1}{K} w_3^\\top
            \\left(2\\,\\mathrm{sigmoid}(w_2 (2t - 1) + b_2) - 1\\right), \\qquad
        \\gamma(t) = \\gamma_0 + (\\gamma_1 - \\gamma_0)
            \\frac{\\tilde\\gamma(t) - \\tilde\\gamma(0)}{\\tilde\\gamma(1) - \\tilde\\gamma(0)}

    with all weights w₁ (scalar), w₂, w₃ (K-vectors) kept strictly positive through a
    softplus of free parameters, so γ̃ and hence γ are strictly increasing by construction
    for any parameter values. γ₀ is a free scalar and γ₁ = γ₀ + softplus(ρ) > γ₀. (VDM's
    bias of the linear branch cancels in the normalisation and is left out.)

    Args:
        gamma_min (float): initial γ(0) (−13.3 in VDM).
        gamma_max (float): initial γ(1) (5.0 in VDM).
        num_features (int): K, width of the nonlinear branch (1024 in VDM).
        learn_endpoints (bool): whether γ₀, γ₁ are trained.

    References:
        Kingma et al. (2021), Variational Diffusion Models, NeurIPS 34, Appendix H.
    """

    def __init__(self, gamma_min=-13.3, gamma_max=5.0, num_features=1024, learn_endpoints=True):
        super().__init__()
        if not gamma_max > gamma_min:
            raise ValueError(f"LearnedGamma: expected gamma_max > gamma_min, got "
                             f"gamma_min={gamma_min}, gamma_max={gamma_max}")
        if int(num_features) < 1:
            raise ValueError(f"LearnedGamma: expected num_features >= 1, got {num_features}")
        k = int(num_features)
        self.num_features = k
        # the linear branch starts as the identity, the nonlinear one small: γ starts ~linear
        self.w1_raw = nn.Parameter(torch.tensor(_inv_softplus(1.0)))
        gen = torch.Generator().manual_seed(0)
        self.w2_raw = nn.Parameter(torch.randn(k, generator=gen) + _inv_softplus(1.0))
        self.b2 = nn.Parameter(torch.randn(k, generator=gen))
        self.w3_raw = nn.Parameter(torch.full((k,), _inv_softplus(0.05))
                                   + 0.1 * torch.randn(k, generator=gen))
        g0 = torch.tensor(float(gamma_min))
        rho = torch.tensor(_inv_softplus(float(gamma_max) - float(gamma_min)))
        if learn_endpoints:
            self.gamma_0 = nn.Parameter(g0)
            self.range_raw = nn.Parameter(rho)
        else:
            self.register_buffer("gamma_0", g0)
            self.register_buffer("range_raw", rho)

    def endpoints(self):
        """(γ(0), γ(1)) as 0-d tensors."""
        return self.gamma_0, self.gamma_0 + F.softplus(self.range_raw)

    def _tilde(self, t):
        """γ̃(t) and dγ̃/dt for flat t (N,)."""
        w1 = F.softplus(self.w1_raw)
        w2 = F.softplus(self.w2_raw)
        w3 = F.softplus(self.w3_raw)
        a = (2.0 * t - 1.0)[:, None] * w2 + self.b2          # (N, K)
        s = torch.sigmoid(a)
        h = w1 * t + (2.0 * s - 1.0) @ w3 / self.num_features
        dh = w1 + (4.0 * s * (1.0 - s) * w2) @ w3 / self.num_features
        return h, dh

    def _shape(self, t):
        """Normalised shape s(t) ∈ [0, 1] and ds/dt for flat t."""
        ends = torch.tensor([0.0, 1.0], device=t.device, dtype=t.dtype)
        h, dh = self._tilde(torch.cat([t, ends]))
        h, h01 = h[:-2], h[-2:]
        span = h01[1] - h01[0]
        return (h - h01[0]) / span, dh[:-2] / span

    def forward(self, t):
        """γ(t), same shape as ``t`` (any shape, values in [0, 1])."""
        return self.forward_with_derivative(t)[0]

    def forward_with_derivative(self, t, shape_grad_hook=None):
        """(γ(t), dγ/dt), both shaped like ``t``.

        Args:
            t (torch.Tensor): times in [0, 1], any shape.
            shape_grad_hook (callable or None): if given (and gradients are on), registered
                as a tensor hook on the normalised shape s(t) and its derivative (flat,
                (t.numel(),)), so it can rescale the gradient that reaches the *shape*
                parameters (not the endpoints) through this call. VDM's variance
                minimisation (Appendix I.2) multiplies it by 2 L_i, L_i the per-sample
                diffusion loss: the shape then descends the variance of the loss estimator
                instead of the loss itself, whose expectation does not depend on the shape.
        """
        t = _as_time(t, self.w1_raw)
        flat = t.reshape(-1)
        s, ds = self._shape(flat)
        if shape_grad_hook is not None and s.requires_grad:
            s.register_hook(shape_grad_hook)
            ds.register_hook(shape_grad_hook)
        g0, g1 = self.endpoints()
        g = g0 + (g1 - g0) * s
        dg = (g1 - g0) * ds
        return g.reshape(t.shape), dg.reshape(t.shape)
