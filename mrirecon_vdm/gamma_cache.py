"""γ(t) of a prior, remembered per prior state.

The samplers evaluate the learned noise schedule γ_φ on a dense grid of times when they
are set up: the guided sampler's time grid (4,097 points), the plug-and-play denoiser's
table from noise level to time (2,049 points). The shipped schedule has 1,024 features, so
each grid costs 40 ms on one core, 1–2 % of a reconstruction, and the same grid is asked
for again by every slice of a benchmark or a volume. :func:`prior_gamma` keeps the last
few results, keyed by the prior's identity, the version counters of its parameters and
buffers (an optimiser step or any other in-place update changes them) and the times, so a
trained-on prior is never served an old schedule. Priors that are not torch modules are
evaluated every time.
"""
import weakref

import numpy as np

__all__ = ["prior_gamma", "CACHE_SIZE"]

#: Results kept (oldest dropped first).
CACHE_SIZE = 8
_CACHE = {}


def _key(prior, t):
    import torch

    if not isinstance(prior, torch.nn.Module):
        return None
    tensors = list(prior.parameters()) + list(prior.buffers())
    return (id(prior), tuple(x._version for x in tensors), t.shape, t.tobytes())


def prior_gamma(prior, t, device="cpu"):
    """γ(t) of ``prior`` as a float64 numpy array.

    Args:
        prior: an object with the prior protocol's ``gamma`` (torch times → torch γ).
        t (array-like): times in [0, 1] (evaluated as float32, like the samplers' own).
        device: the torch device to evaluate on.

    Returns:
        numpy.ndarray: γ(t), float64, ``t``'s shape; a fresh array (the caller may modify
        it).
    """
    import torch

    t = np.asarray(t, dtype=np.float32)
    key = _key(prior, t)
    if key is not None and key in _CACHE:
        ref, g = _CACHE[key]
        if ref() is prior:
            return g.copy()
    with torch.inference_mode():
        g = prior.gamma(torch.as_tensor(t, device=device))
        g = np.asarray(g.detach().to("cpu", torch.float64))
    if key is not None:
        while len(_CACHE) >= CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = (weakref.ref(prior), g.copy())
    return g
