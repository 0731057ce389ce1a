"""An analytic Gaussian image prior with the prior protocol, for tests and research.

For x ~ N(μ, Σ) and z_t = α_t x + σ_t ε, everything the samplers need is closed form:

.. math::
    \\mathbb{E}[x \\mid z_t] = \\mu + \\alpha_t \\Sigma (\\alpha_t^2 \\Sigma + \\sigma_t^2 I)^{-1}
    (z_t - \\alpha_t \\mu), \\qquad
    \\mathbb{E}[\\varepsilon \\mid z_t] = \\sigma_t (\\alpha_t^2 \\Sigma + \\sigma_t^2 I)^{-1}
    (z_t - \\alpha_t \\mu),

computed in the eigenbasis of Σ. Two forms of Σ:

* stationary (``variance=P``): Σ = Fᴴ diag(P) F is diagonal in the centred orthonormal
  Fourier basis F of real images, so E[x | z_t] is a per-frequency Wiener filter
  (cost: two FFTs); P must be Hermitian-symmetric, P(k) = P(−k), and positive;
* dense (``cov=Σ``): any symmetric positive semi-definite (n, n) matrix, n = H W (tiny
  images only: eigendecomposition once, then two matrix products).

:meth:`GaussianPrior.posterior_mean` and :meth:`GaussianPrior.posterior_variance` give the
exact posterior of x (real) given ``y = A x + n``, n ~ CN(0, σ²), the reference the
samplers are tested against.

References:
    Kingma, D. P., Salimans, T., Poole, B., Ho, J. (2021). Variational diffusion models.
    Advances in Neural Information Processing Systems 34 (NeurIPS 2021), 21696–21707.
    arXiv:2107.00630.

    Efron, B. (2011). Tweedie's formula and selection bias. Journal of the American
    Statistical Association 106(496), 1602–1614.
"""
import numpy as np
import sigpy as sp

from .alg import crop_hermitian_weights
from .linop import CropFourier

__all__ = ["GaussianPrior", "stationary_variance"]

MAX_DENSE_PIXELS = 4096


def _fft2c(x, xp=np):
    return xp.fft.fftshift(xp.fft.fft2(xp.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"),
                           axes=(-2, -1))


def _ifft2c(x, xp=np):
    return xp.fft.fftshift(xp.fft.ifft2(xp.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"),
                           axes=(-2, -1))


def _flip_k(a):
    """a(−k) on the centred grid (centre index n // 2)."""
    for ax in (-2, -1):
        n = a.shape[ax]
        a = np.take(a, (2 * (n // 2) - np.arange(n)) % n, axis=ax)
    return a


def stationary_variance(shape, pixel_variance=0.05, corr_length=2.0, exponent=3.0):
    """A smooth, image-like power spectrum P(k) for :class:`GaussianPrior`.

    .. math::
        P(k) \\propto (1 + (2\\pi \\ell |k|/N)^2)^{-\\beta/2},
        \\qquad \\frac{1}{n}\\sum_k P(k) = v_{pix}

    Args:
        shape (tuple of 2 ints): (H, W).
        pixel_variance (float): the per-pixel prior variance v_pix.
        corr_length (float): ℓ, in pixels.
        exponent (float): β, the spectral decay.

    Returns:
        array: (H, W) float64, Hermitian-symmetric, positive.
    """
    h, w = (int(s) for s in shape)
    k1 = (np.arange(h) - h // 2) / h
    k2 = (np.arange(w) - w // 2) / w
    kk = k1[:, None] ** 2 + k2[None, :] ** 2
    p = (1.0 + (2 * np.pi * corr_length) ** 2 * kk) ** (-exponent / 2)
    p = 0.5 * (p + _flip_k(p))
    return p * pixel_variance * h * w / p.sum()


class GaussianPrior:
    """Gaussian prior x ~ N(μ, Σ) following the prior protocol, with exact ε-prediction.

    Protocol members (torch tensors, any device): ``gamma(t)``, ``predict_eps(z, t)``,
    ``image_channels`` (1), ``downsample_factor``.

    Args:
        mean (array): μ, (H, W) real.
        variance (array or None): P, (H, W) positive per-frequency variance in the centred
            orthonormal Fourier basis (Hermitian-symmetric), for a stationary prior.
        cov (array or None): Σ, (H W, H W) symmetric positive semi-definite (row-major
            pixel order). Exactly one of ``variance`` and ``cov``.
        gamma (callable or None): the schedule, torch times → γ(t); default linear from
            ``gamma_min`` to ``gamma_max``.
        gamma_min, gamma_max (float): ends of the default linear schedule.
        downsample_factor (int): reported to the samplers (they pad other sizes to multiples
            of it, :mod:`mrirecon_vdm.padding`; this prior itself takes its own shape only).

    Example:
        >>> P = stationary_variance((32, 32))
        >>> prior = GaussianPrior(np.full((32, 32), 0.3), variance=P)
        >>> x_post = prior.posterior_mean(y, A, noise_sigma=0.0)
    """

    image_channels = 1

    def __init__(self, mean, variance=None, cov=None, gamma=None, gamma_min=-13.3,
                 gamma_max=5.0, downsample_factor=1):
        mean = np.asarray(mean)
        if mean.ndim != 2 or np.iscomplexobj(mean):
            raise ValueError(f"GaussianPrior: expected a real (H, W) mean, got shape {mean.shape} "
                             f"dtype {mean.dtype}")
        self.mean = mean.astype(np.float64)
        self.shape = tuple(mean.shape)
        n = mean.size
        if (variance is None) == (cov is None):
            raise ValueError("GaussianPrior: give exactly one of variance (per-frequency, "
                             "stationary) and cov (dense)")
        if variance is not None:
            variance = np.asarray(variance, dtype=np.float64)
            if variance.shape != self.shape:
                raise ValueError(f"GaussianPrior: expected variance of shape {self.shape}, got "
                                 f"{variance.shape}")
            if not np.all(np.isfinite(variance)) or np.any(variance <= 0):
                raise ValueError("GaussianPrior: the per-frequency variance must be finite and > 0")
            if not np.allclose(variance, _flip_k(variance), rtol=1e-6, atol=0):
                raise ValueError("GaussianPrior: the per-frequency variance must be "
                                 "Hermitian-symmetric, P(k) = P(-k) (a real image's spectrum)")
            self.kind = "fourier"
            self.variance = variance
        else:
            cov = np.asarray(cov, dtype=np.float64)
            if cov.shape != (n, n):
                raise ValueError(f"GaussianPrior: expected cov of shape {(n, n)}, got {cov.shape}")
            if not np.allclose(cov, cov.T, rtol=1e-8, atol=1e-12):
                raise ValueError("GaussianPrior: cov must be symmetric")
            d, U = np.linalg.eigh(cov)
            if d.min() < -1e-8 * max(d.max(), 1e-300):
                raise ValueError(f"GaussianPrior: cov must be positive semi-definite, smallest "
                                 f"eigenvalue {d.min():.3g}")
            self.kind = "dense"
            self.eigval = np.clip(d, 0, None)
            self.eigvec = U
        if int(downsample_factor) < 1:
            raise ValueError(f"GaussianPrior: downsample_factor must be >= 1, got "
                             f"{downsample_factor}")
        self.downsample_factor = int(downsample_factor)
        self.gamma_min, self.gamma_max = float(gamma_min), float(gamma_max)
        if gamma is None and not self.gamma_max > self.gamma_min:
            raise ValueError(f"GaussianPrior: expected gamma_max > gamma_min, got "
                             f"{gamma_min}, {gamma_max}")
        self._gamma = gamma
        self._torch_cache = {}

    # ------------------------------------------------------------ protocol
    def gamma(self, t):
        """γ(t), a tensor shaped like ``t`` (torch in, torch out)."""
        import torch
        t = torch.as_tensor(t)
        if not t.is_floating_point():
            t = t.double()
        if self._gamma is not None:
            return self._gamma(t)
        return self.gamma_min + (self.gamma_max - self.gamma_min) * t

    def _buffers(self, device):
        import torch
        key = str(device)
        if key not in self._torch_cache:
            buf = {"mean": torch.as_tensor(self.mean, device=device)}
            if self.kind == "fourier":
                # Σ is a circular convolution, so the centring shifts cancel: use the plain
                # (uncentred) real FFT with the variance moved to the uncentred layout
                half = np.fft.ifftshift(self.variance)[:, :self.shape[1] // 2 + 1]
                buf["variance"] = torch.as_tensor(np.ascontiguousarray(half), device=device)
            else:
                buf["eigval"] = torch.as_tensor(self.eigval, device=device)
                buf["eigvec"] = torch.as_tensor(self.eigvec, device=device)
            self._torch_cache[key] = buf
        return self._torch_cache[key]

    def _check_z(self, z):
        import torch
        if not torch.is_tensor(z) or z.ndim != 4 or z.shape[1] != 1 or \
                tuple(z.shape[2:]) != self.shape:
            shape = tuple(z.shape) if hasattr(z, "shape") else type(z).__name__
            raise ValueError(f"GaussianPrior: expected z as a torch tensor of shape "
                             f"(B, 1, {self.shape[0]}, {self.shape[1]}), got {shape}")

    def _time(self, t, z):
        import torch
        t = torch.as_tensor(t, device=z.device)
        if t.ndim == 0:
            t = t.expand(z.shape[0])
        if t.shape != (z.shape[0],):
            raise ValueError(f"GaussianPrior: expected t of shape ({z.shape[0]},), got "
                             f"{tuple(t.shape)}")
        return t

    def _filter(self, z, t, which):
        """E[ε | z_t] or E[x | z_t] in float64, returned in z's dtype."""
        import torch
        self._check_z(z)
        t = self._time(t, z)
        g = self.gamma(t).to(torch.float64).reshape(-1, 1, 1, 1)
        a2, s2 = torch.sigmoid(-g), torch.sigmoid(g)
        a, s = a2.sqrt(), s2.sqrt()
        buf = self._buffers(z.device)
        mu = buf["mean"]
        r = z.to(torch.float64) - a * mu
        if self.kind == "fourier":
            P = buf["variance"]
            R = torch.fft.rfft2(r, norm="ortho")
            gain = s / (a2 * P + s2) if which == "eps" else a * P / (a2 * P + s2)
            out = torch.fft.irfft2(R * gain, s=self.shape, norm="ortho")
        else:
            d, U = buf["eigval"], buf["eigvec"]
            c = r.reshape(r.shape[0], -1) @ U
            a2f, s2f = a2.reshape(-1, 1), s2.reshape(-1, 1)
            gain = s2f.sqrt() / (a2f * d + s2f) if which == "eps" \
                else a2f.sqrt() * d / (a2f * d + s2f)
            out = ((c * gain) @ U.T).reshape(r.shape)
        if which == "x0":
            out = out + mu
        return out.to(z.dtype)

    def predict_eps(self, z, t):
        """E[ε | z_t] (the exact ε-prediction).

        Args:
            z (torch.Tensor): (B, 1, H, W) noisy images.
            t (torch.Tensor or float): (B,) times in [0, 1], or a scalar.

        Returns:
            torch.Tensor: (B, 1, H, W), dtype of z (computed in float64).
        """
        return self._filter(z, t, "eps")

    def predict_x0(self, z, t):
        """E[x | z_t], shapes as in :meth:`predict_eps`."""
        return self._filter(z, t, "x0")

    # ------------------------------------------------------------ numpy side
    def covariance(self):
        """Σ as a dense (H W, H W) float64 matrix (row-major pixel order)."""
        if self.kind == "dense":
            return (self.eigvec * self.eigval) @ self.eigvec.T
        n = self.mean.size
        eye = np.eye(n).reshape((n,) + self.shape)
        cols = _ifft2c(self.variance * _fft2c(eye)).real.reshape(n, n)
        return 0.5 * (cols + cols.T)

    def sample(self, num, seed=None):
        """``num`` independent draws, (num, H, W) float64 (numpy generator ``seed``)."""
        rng = np.random.default_rng(seed)
        w = rng.standard_normal((int(num),) + self.shape)
        if self.kind == "fourier":
            return self.mean + _ifft2c(np.sqrt(self.variance) * _fft2c(w)).real
        c = w.reshape(int(num), -1) * np.sqrt(self.eigval)
        return self.mean + (c @ self.eigvec.T).reshape(w.shape)

    def _check_operator(self, A):
        if tuple(A.ishape[-2:]) != self.shape:
            raise ValueError(f"GaussianPrior: the operator's image shape {tuple(A.ishape)} does "
                             f"not end in the prior's {self.shape}")

    def _dense_system(self, A, noise_sigma):
        """Real-valued model: yr = Ar x + nr, nr ~ N(0, σ²/2 I) (real and imaginary parts)."""
        if tuple(A.ishape) != self.shape:
            raise ValueError(f"GaussianPrior: the dense posterior needs an operator on one "
                             f"{self.shape} image, got ishape {tuple(A.ishape)}")
        n = self.mean.size
        if n > MAX_DENSE_PIXELS:
            raise ValueError(f"GaussianPrior: the dense posterior is for tiny images (at most "
                             f"{MAX_DENSE_PIXELS} pixels), got {self.shape}")
        cols = []
        for j in range(n):
            e = np.zeros(n, dtype=np.complex128)   # complex: SigPy casts real to complex64
            e[j] = 1.0
            cols.append(np.asarray(A(e.reshape(self.shape)), dtype=np.complex128).ravel())
        M = np.stack(cols, axis=1)
        Ar = np.concatenate([M.real, M.imag], axis=0)
        # reduce to the row space: Ar = U s Vᵀ; Uᵀ keeps white noise white, and the part of
        # y_r outside range(U) carries no information on x (at most n rows remain)
        U, sv, Vt = np.linalg.svd(Ar, full_matrices=False)
        keep = sv > 1e-10 * max(sv.max(initial=0.0), 1e-300)
        U, At = U[:, keep], sv[keep, None] * Vt[keep]
        S = self.covariance()
        G = At @ S @ At.T + (float(noise_sigma) ** 2 / 2.0) * np.eye(At.shape[0])
        return U.T, At, S, G

    @staticmethod
    def _pinv(G):
        import scipy.linalg
        return scipy.linalg.pinvh(G, atol=0, rtol=1e-10 * G.shape[0])

    def posterior_mean(self, y, A, noise_sigma=0.0):
        """E[x | y] for y = A x + n, n ~ CN(0, σ²) (real x, real and imaginary noise parts of
        variance σ²/2).

        .. math::
            \\mathbb{E}[x \\mid y] = \\mu + \\Sigma A_r^T (A_r \\Sigma A_r^T
            + \\tfrac{\\sigma^2}{2} I)^{+} (y_r - A_r \\mu),
            \\qquad A_r = \\begin{bmatrix}\\mathrm{Re} A \\\\ \\mathrm{Im} A\\end{bmatrix}

        (pseudo-inverse: least squares on inconsistent noiseless data). For
        :class:`CropFourier` with a stationary prior, per frequency (leading axes allowed):
        x = μ − Re Aᴴ(κ ⊙ (Aμ − y)), κ = ω P / (P + ω σ²/2) with ω of
        :func:`mrirecon_vdm.alg.hermitian_weights`. Otherwise a dense solve (tiny images).

        Args:
            y (array): measurement, ``A.oshape``, complex.
            A (sigpy.linop.Linop): forward operator on real images ``(..., H, W)``.
            noise_sigma (float): σ ≥ 0, the k-space noise std.

        Returns:
            array: ``A.ishape`` float64.
        """
        self._check_operator(A)
        y = np.asarray(sp.to_device(y))
        if tuple(y.shape) != tuple(A.oshape):
            raise ValueError(f"GaussianPrior.posterior_mean: expected y of shape "
                             f"{tuple(A.oshape)}, got {y.shape}")
        if self.kind == "fourier" and isinstance(A, CropFourier):
            w = crop_hermitian_weights(A.hr_shape, A.lr_shape).astype(np.float64)
            P = sp.resize(self.variance, A.lr_shape)
            kappa = w * P / (P + w * float(noise_sigma) ** 2 / 2.0)
            mu = np.broadcast_to(self.mean, tuple(A.ishape))
            Ad = CropFourier(A.ishape, A.oshape)
            # complex128 in: SigPy's FFT casts real input to complex64
            r = Ad(mu.astype(np.complex128)) - y.astype(np.complex128)
            return mu - np.real(Ad.H(kappa * r))
        Ut, Ar, S, G = self._dense_system(A, noise_sigma)
        yr = Ut @ np.concatenate([y.real.ravel(), y.imag.ravel()])
        mu = self.mean.ravel()
        x = mu + S @ Ar.T @ (self._pinv(G) @ (yr - Ar @ mu))
        return x.reshape(self.shape)

    def posterior_variance(self, A, noise_sigma=0.0):
        """Per-pixel Var[x | y] (independent of y), (H, W) float64.

        .. math::
            \\mathrm{Cov}[x \\mid y] = \\Sigma - \\Sigma A_r^T (A_r \\Sigma A_r^T
            + \\tfrac{\\sigma^2}{2} I)^{+} A_r \\Sigma

        For :class:`CropFourier` on one image with a stationary prior the posterior is
        stationary too, with per-frequency variance P (1 − κ/ω) on measured frequencies and
        their Hermitian partners (κ, ω as in :meth:`posterior_mean`), P elsewhere; else a
        dense solve (tiny images).
        """
        self._check_operator(A)
        if self.kind == "fourier" and isinstance(A, CropFourier) and tuple(A.ishape) == self.shape:
            w = crop_hermitian_weights(A.hr_shape, A.lr_shape).astype(np.float64)
            P = sp.resize(self.variance, A.lr_shape)
            kappa = w * P / (P + w * float(noise_sigma) ** 2 / 2.0)
            shrink = 1.0 - sp.resize(kappa / w, self.shape)       # 1 outside the crop
            measured = sp.resize(np.ones(A.lr_shape), self.shape) > 0
            partner_only = _flip_k(measured) & ~measured
            shrink[partner_only] = _flip_k(shrink)[partner_only]
            return np.full(self.shape, np.sum(self.variance * shrink) / self.mean.size)
        _, Ar, S, G = self._dense_system(A, noise_sigma)
        C = S - S @ Ar.T @ self._pinv(G) @ Ar @ S
        return np.clip(np.diag(C), 0, None).reshape(self.shape)
