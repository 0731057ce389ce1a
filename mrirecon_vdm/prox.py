"""The learned prior as a SigPy proximal operator (plug-and-play).

:class:`VDMDenoiser` is a :class:`sigpy.prox.Prox` whose ``prox(alpha, v)`` is the prior's
one-step MMSE denoiser (Tweedie's formula) at the noise level that the step size implies,

.. math::
    \\mathrm{prox}_{\\alpha g}(v) \\approx D_{\\sigma}(v), \\qquad
    \\sigma = \\sqrt{\\lambda\\,\\alpha} / s, \\qquad
    D_\\sigma(v) = s\\,\\frac{z - \\sigma_t\\, \\hat\\varepsilon_\\theta(z; t)}{\\alpha_t},
    \\quad z = \\alpha_t\\, v / s,\\ \\sigma_t/\\alpha_t = \\sigma,

(γ_φ(t) = log σ², the network's time with that signal-to-noise ratio), so any SigPy solver
(``sigpy.app.LinearLeastSquares`` with ``solver="ADMM"`` or proximal gradient,
``sigpy.alg.ADMM``, ...) can use the learned prior in place of ``L1Reg``:

    >>> proxg = VDMDenoiser(A.ishape, prior, lamda=0.05, scale=s)
    >>> x = sp.app.LinearLeastSquares(A, y, proxg=proxg, max_iter=30).run()

``lamda`` plays the role of the regularisation weight (a larger value denoises harder); a
sequence of values is used one per call (the last one repeated): a decreasing sequence is
the annealed schedule of DPIR (Zhang et al. 2022), which works far better than a fixed
weight with these one-step denoisers. ``scale`` is the intensity of the image (the prior
was trained on images of maximum ≈ 1; :func:`mrirecon_vdm.intensity.estimate_scale` gives it from
the data).

SigPy's solvers work on complex images; ``mode`` says how a complex input meets the
magnitude prior: ``"real"`` denoises the real part and drops the imaginary one (the
image is real, or its phase is in the operator, ``A * Phase(...)``: the constraint that lets
a real image use the conjugate symmetry of k-space, worth several dB on Cartesian
undersampling), ``"magnitude"`` denoises the magnitude and keeps the phase.

References:
    Venkatakrishnan, S. V., Bouman, C. A., Wohlberg, B. (2013). Plug-and-play priors for
    model based reconstruction. IEEE GlobalSIP, 945-948.

    Zhang, K., Li, Y., Zuo, W., Zhang, L., Van Gool, L., Timofte, R. (2022). Plug-and-play
    image restoration with deep denoiser prior. IEEE TPAMI 44(10), 6360-6376.

    Efron, B. (2011). Tweedie's formula and selection bias. JASA 106(496), 1602-1614.
"""
import math
import time

import numpy as np
import sigpy as sp

from ._checks import as_shape
from .padding import predict_eps

__all__ = ["VDMDenoiser", "MODES"]

#: How a complex input meets the magnitude prior.
MODES = ("real", "magnitude")


class VDMDenoiser(sp.prox.Prox):
    """Plug-and-play proximal operator: the VDM prior's one-step denoiser.

    Args:
        shape (tuple of ints): image shape ``(..., H, W)`` (leading axes: slices, denoised
            in one network call).
        prior: an object with the prior protocol (``gamma``, ``predict_eps``,
            ``image_channels``, ``downsample_factor``; e.g.
            :func:`mrirecon_vdm.load_pretrained`), on the torch device of the arrays.
        lamda (float or sequence): λ > 0, the weight of the prior: the denoiser's noise
            variance is λ α / s² for a step α; a sequence is used one value per call (the
            last repeated), e.g. ``numpy.geomspace(3e-2, 1e-4, 30)``; its items may also be
            arrays with one value per image (``shape[:-2]``).
        mode (str): ``"real"`` or ``"magnitude"`` (see the module docstring).
        scale (float or array): intensity scale s of the image (a number, or one per image,
            ``shape[:-2] + (1, 1)``, e.g. ``(S, 1, 1)``); each image gets its own noise level
            and network time in the same call.
        bf16 (bool): bfloat16 autocast for the network where the device runs it fast
            (:func:`mrirecon_vdm.precision.fast_bf16`), float32 elsewhere; False: float32.
        flip_ensemble (bool): denoise each image and its left-right mirror image (the last
            axis) in one network call and average the two predictions, mirrored back
            (a self-ensemble; the prior was trained with left-right flips). Doubles the
            network's batch.

    Attributes:
        lamdas (list of arrays): the weights, one per call (the last repeated), each with one
            value per image.
        nfe (int): network evaluations so far (one per ``prox`` call, the mirror image of
            ``flip_ensemble`` included in the same call).
        time_network (float): seconds spent in the network so far.
        last_sigma (float or array): the noise level (prior units) of the last call (an
            array when it differs between images).
    """

    def __init__(self, shape, prior, lamda=0.05, scale=1.0, mode="real", bf16=True,
                 flip_ensemble=False):
        shape = as_shape("VDMDenoiser shape", shape, min_ndim=2)
        for name in ("gamma", "predict_eps", "image_channels", "downsample_factor"):
            if not hasattr(prior, name):
                raise ValueError(f"VDMDenoiser: the prior has no {name!r}; expected the prior "
                                 f"protocol (gamma, predict_eps, image_channels, "
                                 f"downsample_factor)")
        if int(prior.image_channels) != 1:
            raise ValueError("VDMDenoiser: only single-channel (magnitude) priors are supported")
        if mode not in MODES:
            raise ValueError(f"VDMDenoiser: mode must be one of {MODES}, got {mode!r}")
        images = tuple(shape[:-2])
        items = [lamda] if np.ndim(lamda) == 0 else list(lamda)
        lamdas = []
        for v in items:
            try:
                a = np.asarray(sp.to_device(v) if hasattr(v, "device") else v, dtype=np.float64)
                if a.ndim == len(images) + 2 and a.shape[-2:] == (1, 1):
                    a = a.reshape(a.shape[:-2])              # (S, 1, 1) like the scale
                a = np.broadcast_to(a, images)
            except (TypeError, ValueError):
                raise ValueError(f"VDMDenoiser: lamda must be a number, or a sequence of numbers "
                                 f"or of per-image arrays {images}, got {lamda!r}") from None
            lamdas.append(a)
        if not lamdas or not all(np.all(np.isfinite(a)) and np.all(a > 0) for a in lamdas):
            raise ValueError(f"VDMDenoiser: lamda must be finite and > 0, got {lamda!r}")
        try:
            s = np.asarray(sp.to_device(scale) if hasattr(scale, "shape") else scale,
                           dtype=np.float64)
            s_img = np.broadcast_to(s, images + (1, 1)).reshape(images)
        except (TypeError, ValueError):
            raise ValueError(f"VDMDenoiser: scale must be a number or one per image, shape "
                             f"{images + (1, 1)}, got {scale!r}") from None
        if not np.all(np.isfinite(s)) or not np.all(s > 0):
            raise ValueError(f"VDMDenoiser: scale must be finite and > 0, got {scale!r}")
        self._s_img = s_img
        self.prior = prior
        self.lamdas = lamdas
        self.mode = mode
        self.scale = scale
        from .precision import use_bf16
        self.bf16 = use_bf16(bf16, _prior_device(prior), "VDMDenoiser: bf16")
        if not isinstance(flip_ensemble, (bool, np.bool_)):
            raise ValueError(f"VDMDenoiser: flip_ensemble must be True or False, got "
                             f"{flip_ensemble!r}")
        self.flip_ensemble = bool(flip_ensemble)
        self.nfe = 0
        self.time_network = 0.0
        self.last_sigma = None
        from .gamma_cache import prior_gamma
        t = np.linspace(0.0, 1.0, 2049)
        self._t = t
        self._g = np.maximum.accumulate(prior_gamma(prior, t, _prior_device(prior)))
        super().__init__(shape)

    def time_for(self, sigma):
        """The network time t whose σ_t/α_t equals ``sigma`` (prior units), clipped to [0, 1]
        (a number, or an array: one time per entry)."""
        g = 2.0 * np.log(np.maximum(np.asarray(sigma, dtype=np.float64), 1e-12))
        t = np.interp(g, self._g, self._t)
        return float(t) if t.ndim == 0 else t

    def _prox(self, alpha, input):
        import torch

        from .alg import alpha_sigma
        from .backend import from_torch, to_torch

        device = sp.get_device(input)
        xp = device.xp
        with device:
            s = self.scale
            if hasattr(s, "shape"):
                s = sp.to_device(s, device)
            lamda = self.lamdas[min(self.nfe, len(self.lamdas) - 1)]
            complex_in = np.iscomplexobj(input)
            if complex_in:
                mag = xp.real(input) if self.mode == "real" else xp.abs(input)
            else:
                mag = input
            v = (mag / s).astype(np.float32)
            # σ per image in prior units (λ and s may differ per image): one time each
            sig = np.sqrt(lamda * float(alpha)) / self._s_img
            self.last_sigma = float(sig.flat[0]) if np.all(sig == sig.flat[0]) else sig.copy()
            t = np.atleast_1d(self.time_for(sig.ravel()))
            tt = torch.as_tensor(t, dtype=torch.float32, device=_prior_device(self.prior))
            # γ(t) from the table the time was read from (2,049 points: within 1e-5 of the
            # schedule's own value; a call of the 1,024-feature schedule per step cost
            # 1.7 ms, 2 % of plug-and-play's time)
            g = np.interp(t, self._t, self._g)
            a_t, s_t = alpha_sigma(g)
            per_image = tuple(self.shape[:-2]) + (1, 1)
            a_t = xp.asarray(np.reshape(a_t, per_image), dtype=np.float32)
            s_t = xp.asarray(np.reshape(s_t, per_image), dtype=np.float32)
            start = time.perf_counter()
            z = to_torch(xp.ascontiguousarray(a_t * v))
            imgs = z.reshape((-1, 1) + tuple(self.shape[-2:]))
            ctx = (torch.autocast(imgs.device.type, dtype=torch.bfloat16) if self.bf16
                   else _null())
            n = imgs.shape[0]
            if self.flip_ensemble:
                imgs = torch.cat([imgs, imgs.flip(-1)])
                tt = tt.repeat(2)
            with torch.inference_mode(), ctx:
                eps = predict_eps(self.prior, imgs, tt).float()
                if self.flip_ensemble:
                    eps = 0.5 * (eps[:n] + eps[n:].flip(-1))
            if eps.device.type == "cuda":
                torch.cuda.synchronize(eps.device)
            self.nfe += 1
            self.time_network += time.perf_counter() - start
            eps = xp.asarray(from_torch(eps.reshape(z.shape)))
            x = (a_t * v - s_t * eps) / a_t * s
            if complex_in and self.mode == "magnitude":
                x = x * xp.exp(1j * xp.angle(input))
            return x.astype(input.dtype, copy=False)


def _prior_device(prior):
    import torch
    if isinstance(prior, torch.nn.Module):
        for p in prior.parameters():
            return p.device
    return torch.device("cpu")


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
