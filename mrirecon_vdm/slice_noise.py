"""Sampler noise correlated along the slice axis: one posterior sample consistent across slices.

Each fresh noise draw of a sampler (the initial z_{t₀} and every renoising) gets, for every
sample k independently, an AR(1) structure along the slice axis s:

.. math::
    \\varepsilon_0 = \\rho\\,\\varepsilon_{-1} + \\sqrt{1-\\rho^2}\\,\\eta_0
    \\;(\\varepsilon_0 = \\eta_0 \\text{ without a preceding slice}), \\qquad
    \\varepsilon_s = \\rho\\,\\varepsilon_{s-1} + \\sqrt{1-\\rho^2}\\,\\eta_s,

with η_s ~ N(0, I) independent. Every slice's noise is still N(0, I) (so each slice is
sampled exactly as before, marginally) and neighbouring slices correlate with coefficient
ρ (ρ^d at distance d). ρ = 0 is independent slices, ρ = 1 the same noise for all slices.

:func:`reconstruct_volume` runs a few slices at a time; :class:`PrecedingRuns` continues
the chain across runs: it replays the innovations η of the earlier runs (from their seeds)
to get ε of the slice just before a run, so the noise of the whole volume is one AR(1) chain
(exact, and deterministic given the seeds, so a resumed job gives the same volume).
"""
import math

__all__ = ["ar1_slices", "PrecedingRuns"]


def ar1_slices(eta, rho, previous=None):
    """ε from independent standard normals η along axis 1 (the slice axis of a state
    ``(K, S, ...)``), the AR(1) recursion of the module docstring.

    Args:
        eta (torch.Tensor or array): (K, S, ...) independent N(0, 1).
        rho (float): ρ ∈ [0, 1], the correlation of neighbouring slices.
        previous (same type or None): (K, ...) ε of the slice before slice 0, or None.

    Returns:
        same type as ``eta``: (K, S, ...) with N(0, 1) marginals, lag-1 correlation ρ.
    """
    if rho == 0 and previous is None:
        return eta
    c = math.sqrt(max(1.0 - rho * rho, 0.0))
    out = eta * 1.0                               # a copy, torch or numpy alike
    prev = previous
    for s in range(eta.shape[1]):
        if prev is not None:
            out[:, s] = rho * prev + c * eta[:, s]
        prev = out[:, s]
    return out


class PrecedingRuns:
    """``(shape) -> ε`` of the slice just before the current run, for every noise draw.

    The earlier runs of a volume drew their innovations η from torch generators seeded with
    their own seeds, one draw of ``(K, n_i, ...)`` per draw of the current run (all runs
    make the same sequence of draws). Calling this object once per draw of the current run
    replays those draws in order and runs the AR(1) chain through them.

    Args:
        seeds (list of int): the seeds of the earlier runs, in slice order.
        sizes (list of int): their numbers of slices.
        rho (float): ρ.
        device (torch.device): where the generators draw (the runs' device).
    """

    def __init__(self, seeds, sizes, rho, device):
        import torch
        if len(seeds) != len(sizes):
            raise ValueError(f"PrecedingRuns: expected one size per seed, got {len(seeds)} "
                             f"seeds and {len(sizes)} sizes")
        self.rho = float(rho)
        self.sizes = [int(n) for n in sizes]
        self.device = device
        self.generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]

    def __call__(self, shape):
        import torch
        prev = None
        for g, n in zip(self.generators, self.sizes):
            eta = torch.randn((shape[0], n) + tuple(shape[2:]), generator=g,
                              device=self.device, dtype=torch.float32)
            prev = ar1_slices(eta, self.rho, previous=prev)[:, -1]
        return prev
