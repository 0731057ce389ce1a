"""The k-space-guided VDM sampler: the maths, on callables (SigPy ``Alg`` style).

Two samplers share one state ``z`` (the noisy image z_t, real) and one data-consistency
object (:class:`DataConsistency`):

``"paper"`` (Jiang, Gao, Sun 2023, after Song, Shen, Xing, Ermon 2022)
    VDM ancestral steps from t = 1 to 0 on a uniform grid; before each step the measurement
    is brought to the current noise level and mixed into z_t with weight λ.

``"fast"`` (x̂₀-consistency + renoising, for ≤ 50 network evaluations)
    predict x̂₀ from ε̂ (Tweedie), make it consistent with the data (exact projection when
    noiseless, a noise-weighted proximal step otherwise), renoise to the next time: with
    all of the noise new (``renoise="fresh"``, the default) or with a DDIM step of
    stochasticity η (``renoise="ddim"``).

Both are written in VDM's log-SNR form: γ = γ_φ(t) = −log SNR(t), α_t² = sigmoid(−γ),
σ_t² = sigmoid(γ), z_t = α_t x + σ_t ε. See ``docs/sampler.md`` and ``docs/notation.md``.

Real images and complex k-space: the prior models real magnitude images, so every data
consistency is solved over *real* images (``x ∈ R^n``), i.e. with the real normal operator
Re(AᴴA). For the centre crop of an even-sized k-space this differs from "apply the complex
projection, take the real part": the outermost row/column of the crop (frequency −m/2) has
its Hermitian partner +m/2 outside the crop, so a plain real part would only move it half
way. :func:`hermitian_weights` gives the factor 2 that makes the step exact.

References:
    Jiang, Y., Gao, Y., Sun, H. (2023). MR image super-resolution via a variational
    diffusion model. Proc. Intl. Soc. Mag. Reson. Med. 31 (ISMRM 2023), abstract 0163.

    Song, Y., Shen, L., Xing, L., Ermon, S. (2022). Solving inverse problems in medical
    imaging with score-based generative models. International Conference on Learning
    Representations (ICLR 2022). arXiv:2111.08005.

    Kingma, D. P., Salimans, T., Poole, B., Ho, J. (2021). Variational diffusion models.
    Advances in Neural Information Processing Systems 34 (NeurIPS 2021), 21696–21707.
    arXiv:2107.00630.

    Song, J., Meng, C., Ermon, S. (2021). Denoising diffusion implicit models.
    International Conference on Learning Representations (ICLR 2021). arXiv:2010.02502.

    Karras, T., Aittala, M., Aila, T., Laine, S. (2022). Elucidating the design space of
    diffusion-based generative models. NeurIPS 35. arXiv:2206.00364.

    Zhu, Y., Zhang, K., Liang, J., Cao, J., Wen, B., Timofte, R., Van Gool, L. (2023).
    Denoising diffusion models for plug-and-play image restoration (DiffPIR). CVPR
    Workshops 2023. arXiv:2305.08995.
"""
import math

import numpy as np
import sigpy as sp

from ._checks import check_in_range

__all__ = ["GuidedVDM", "DataConsistency", "batched_cg", "hermitian_weights",
           "crop_hermitian_weights", "DC_METHODS", "DEFAULT_CG_ITER",
           "make_time_grid", "alpha_sigma", "SAMPLERS", "RENOISE", "TIME_GRIDS", "DC_VARIANCES",
           "DEFAULT_NUM_STEPS", "DEFAULT_TIME_GRID", "DEFAULT_RENOISE", "resolve_renoise"]

SAMPLERS = ("paper", "fast")
RENOISE = ("ddim", "fresh")
#: The fast sampler's renoising when none is given (``docs/sampler.md``, "Fresh renoising").
DEFAULT_RENOISE = "fresh"
TIME_GRIDS = ("uniform", "logsnr", "karras")
DC_VARIANCES = ("flat", "unit")
DEFAULT_NUM_STEPS = {"paper": 1000, "fast": 50}
#: The fast sampler's floor of the variance attached to x̂₀ (``dc_variance_floor``; units of
#: the image over its scale: an RMS error of 1.7 % of the intensity). Six validation
#: slices, mean of 4, without → with, noise 0.05: Cartesian 4× with a smooth phase 31.59 →
#: 31.69 dB, without a phase 31.27 → 31.51, Poisson 8× 32.55 → 32.80, super-resolution 4×
#: 30.80 → 30.85; noiseless with a phase 35.76 → 35.73 (``docs/sampler.md``, "The variance
#: floor"). Noiseless data without a phase (σ̂ = 0) are not affected.
DEFAULT_DC_VARIANCE_FLOOR = 3e-4
DEFAULT_TIME_GRID = {"paper": "uniform", "fast": "logsnr"}
KARRAS_RHO = 7.0


def resolve_renoise(name, sampler, renoise=None, eta=None):
    """The fast sampler's renoising and η from the user's ``renoise`` and ``eta``.

    Returns ``(renoise, eta)``: for the fast sampler ``renoise`` is one of :data:`RENOISE`
    (None: :data:`DEFAULT_RENOISE`) and η is 1 unless given; for the paper sampler renoising
    does not apply (None; ``"ddim"`` is accepted as a no-op).

    Raises:
        ValueError: an unknown ``renoise``; ``"fresh"`` with the paper sampler; an η other
            than 1 with fresh renoising, which has no η (all of its noise is new at every
            step), rather than ignoring it.
    """
    if renoise is not None and renoise not in RENOISE:
        raise ValueError(f"{name}: renoise must be None or one of {RENOISE}, got {renoise!r}")
    if eta is not None:
        check_in_range(f"{name} eta", eta, 0.0, 1.0)
    eta = 1.0 if eta is None else float(eta)
    if sampler != "fast":
        if renoise not in (None, "ddim"):
            raise ValueError(f"{name}: renoise={renoise!r} needs the fast sampler (got "
                             f"sampler={sampler!r})")
        return None, eta
    renoise = DEFAULT_RENOISE if renoise is None else renoise
    if renoise != "ddim" and eta != 1.0:
        raise ValueError(f"{name}: eta={eta!r} is the stochasticity of DDIM renoising; "
                         f"renoise={renoise!r} has none (all of its noise is new at every "
                         f"step). Pass renoise='ddim' with eta, or leave eta out")
    return renoise, eta


def alpha_sigma(gamma):
    """(α, σ) = (sqrt(sigmoid(−γ)), sqrt(sigmoid(γ))) in float64, for scalars or arrays."""
    g = np.asarray(gamma, dtype=np.float64)
    # sigmoid(±g) without overflow
    alpha = np.sqrt(0.5 * (1.0 - np.tanh(0.5 * g)))
    sigma = np.sqrt(0.5 * (1.0 + np.tanh(0.5 * g)))
    if alpha.ndim == 0:
        return float(alpha), float(sigma)
    return alpha, sigma


# ------------------------------------------------------------------ Hermitian weights
def hermitian_weights(mask):
    """Real-image data-consistency weights ω of a Fourier sampling mask.

    For a real image x, its centred spectrum is Hermitian, X(−k) = conj X(k). When k is
    sampled and −k is not, the real normal operator Re(AᴴA) has eigenvalue ½ there instead
    of 1; weighting that residual by 2 makes ``x − Re Aᴴ(ω ⊙ (Ax − y))`` the exact real
    least-squares projection.

    Args:
        mask (array): (..., N1, N2) boolean/0-1 sampling pattern on the full centred grid
            (centre index ``n // 2``).

    Returns:
        array: (..., N1, N2) float32 ω: 1 where k and −k are both sampled (self-conjugate
        frequencies included), 2 where only k is sampled, 0 where k is not sampled.
    """
    xp = sp.get_device(mask).xp
    m = xp.asarray(mask) != 0
    partner = m
    for ax in (-2, -1):
        n = m.shape[ax]
        idx = xp.asarray((2 * (n // 2) - np.arange(n)) % n)
        partner = xp.take(partner, idx, axis=ax)
    w = xp.where(m & partner, 1.0, 2.0) * m
    return w.astype(np.float32)


def crop_hermitian_weights(hr_shape, lr_shape, device=sp.cpu_device):
    """ω of :func:`hermitian_weights` for :class:`CropFourier`, on the (m1, m2) block."""
    (n1, n2), (m1, m2) = tuple(hr_shape)[-2:], tuple(lr_shape)[-2:]
    device = sp.Device(device)
    with device:
        xp = device.xp
        mask = sp.resize(xp.ones((m1, m2), dtype=np.float32), (n1, n2))
        return sp.resize(hermitian_weights(mask), (m1, m2))


# ------------------------------------------------------------------ data consistency
#: Data-consistency methods (:attr:`DataConsistency.method`).
DC_METHODS = ("closed-form", "cg")
#: CG iterations per data-consistency step for Fourier-structured operators (SENSE, phase):
#: warm-started from the previous step's correction, a few iterations suffice
#: (``docs/sampler.md``, "Data consistency").
DEFAULT_CG_ITER = 8
#: CG iterations for operators the package does not recognise (no warm start).
DEFAULT_CG_ITER_GENERAL = 50


def batched_cg(normal, b, x0, max_iter, tol=0.0, axes=None):
    """Conjugate gradients on many independent real systems at once.

    Solves ``normal(x) = b`` where ``normal`` acts independently on the blocks that
    ``axes`` reduce over (each image of a batch): step sizes α and β are per block, so
    every block follows its own CG iterates exactly as :class:`sigpy.alg.ConjugateGradient`
    would on it alone, while each ``normal`` call does the FFTs of all blocks together.

    Args:
        normal (callable): the symmetric positive semi-definite operator, array -> array.
        b (array): right-hand side.
        x0 (array): start.
        max_iter (int): iterations.
        tol (float): stop when every block's residual norm is ≤ tol × its ‖b‖.
        axes (tuple or None): the axes of one block (None: the whole array is one system).

    Returns:
        array: x, the shape of ``b``.
    """
    xp = sp.get_device(b).xp

    def dot(u, v):
        return (u * v).sum(axis=axes, keepdims=True) if axes is not None else (u * v).sum()

    x = x0.copy()
    r = b - normal(x)
    p = r.copy()
    rr = dot(r, r)
    bb = dot(b, b)
    for _ in range(int(max_iter)):
        if bool(xp.all(rr <= (tol ** 2) * bb)):
            break
        Ap = normal(p)
        pAp = dot(p, Ap)
        alpha = xp.where(pAp > 0, rr / xp.where(pAp > 0, pAp, 1), 0).astype(x.dtype, copy=False)
        x += alpha * p
        r -= alpha * Ap
        rr_new = dot(r, r)
        beta = xp.where(rr > 0, rr_new / xp.where(rr > 0, rr, 1), 0).astype(x.dtype, copy=False)
        p = r + beta * p
        rr = rr_new
    return x


class DataConsistency:
    """Data consistency over real images for ``y = A x + n``, n ~ CN(0, σ²).

    The proximal step (``v`` the variance attached to the estimate ``x̂``)

    .. math::
        \\mathrm{prox}(\\hat x; y, v) = \\arg\\min_{x \\in \\mathbb{R}^n}
        \\frac{\\|A x - y\\|_2^2}{\\sigma^2} + \\frac{\\|x - \\hat x\\|_2^2}{2 v},
        \\qquad
        (\\mathrm{Re}\\,A^H A + \\tfrac{\\sigma^2}{2v} I)\\, x
        = \\mathrm{Re}\\,A^H y + \\tfrac{\\sigma^2}{2v}\\, \\hat x,

    and, for σ = 0 or v = ∞, the projection onto {x real : A x = y} (least squares when y
    is inconsistent) that moves x̂ the least.

    **The method is picked from the operator** (:func:`mrirecon_vdm.linop.fourier_structure`
    reads it out of :class:`~mrirecon_vdm.linop.CropFourier`,
    :class:`~mrirecon_vdm.linop.FourierSampling`, ``Multiply(mask) * FFT``,
    ``sigpy.mri.linop.Sense(maps, weights=mask)`` and any of these times
    :func:`~mrirecon_vdm.linop.Phase`), so a plain SigPy composition gets the same result as
    the package's operator:

    ``"closed-form"`` (single coil, no phase: the crop and any 0/1 mask). A Aᴴ is a 0/1
    diagonal, and

    .. math::
        \\mathrm{prox}(\\hat x) = \\hat x - \\mathrm{Re}\\, A^H\\big(\\kappa \\odot
        (A \\hat x - y)\\big), \\qquad \\kappa = \\frac{\\omega\\, v}{v + \\omega \\sigma^2/2},

    ω from :func:`hermitian_weights` (κ = ω when σ = 0), exact; two FFTs per image.

    ``"cg"`` (coil maps or a phase, and operators it does not recognise): conjugate gradient
    on the real normal equations. For a Fourier structure every image (sample × slice) is its
    own system, all solved together (:func:`batched_cg`), and warm-started: the correction
    ``prox(x̂) − x̂`` of the previous step is the start of the next (successive x̂₀ of a
    sampler differ little; for the noiseless projection the start changes nothing at
    convergence, as the correction lies in the row space of A), with ``max_iter``
    (:data:`DEFAULT_CG_ITER`) iterations. Other operators are applied one sample at a
    time, started at x̂, :data:`DEFAULT_CG_ITER_GENERAL` iterations.

    **Support of the coil maps.** Where every coil map is zero (ESPIRiT crops its maps
    outside the object) the data say nothing about the image, and the prior fills those
    pixels with whatever it likes (a second, ghost head on a held-out slice). The step then
    sets the image to 0 there (``support``): the maps' support is a constraint. Measured on
    three validation slices (8 coils, Cartesian 8×, ESPIRiT maps, noise): the mean of 4 went
    from 28.61 / 23.86 / 21.09 to 29.42 / 26.05 / 23.21 dB, the worst single sample from
    14.6 to 21.8 dB.

    Args:
        A (sigpy.linop.Linop): forward operator, ``ishape`` the (real) image shape
            ``(..., N1, N2)``, ``oshape`` the measurement shape.
        sigma (float or array): k-space noise std σ ≥ 0, same units as y. An array
            broadcastable to the image shape (e.g. one value per slice, ``(S, 1, 1)``)
            needs a Fourier-structured operator.
        weights (array or None): ω for the closed form of an operator the package does not
            recognise but knows to be single-coil Fourier sampling; None: picked as above.
        max_iter (int or None): CG iterations (None: the defaults above).
        tol (float): CG stopping tolerance, relative to ‖b‖ of each system.
        warm_start (bool): reuse the previous correction as the CG start (Fourier
            structures only).
        min_lam (float): the smallest weight of ‖x − x̂‖² in the CG normal equations
            (``"cg"`` only; 0: none). Through a phase the real normal operator
            Re AᴴA has eigenvalues close to 0 (a line whose mirror line is not sampled is
            only half-known, and the phase mixes the halves): an exact projection amplifies
            the data's small inconsistencies along them without bound (plug-and-play with
            many steps diverged on a Gaussian-prior test); a floor of ε leaves the
            directions whose eigenvalue is below ε to the prior.

    Attributes:
        method (str): ``"closed-form"`` or ``"cg"``.
        structure (FourierStructure or None): what was read out of A.
        support (array or None): 0/1 image support of the coil maps (None: everywhere).

    Arrays passed to :meth:`prox` carry one extra leading axis (samples): ``x`` is
    ``(K, *A.ishape)``, ``y`` is ``A.oshape`` or ``(K, *A.oshape)``.
    """

    def __init__(self, A, sigma=0.0, weights=None, max_iter=None, tol=1e-6, warm_start=True,
                 min_lam=0.0):
        from .linop import fourier_structure

        if not (np.isfinite(min_lam) and min_lam >= 0):
            raise ValueError(f"DataConsistency: min_lam must be finite and >= 0, got "
                             f"{min_lam!r}")
        self.min_lam = float(min_lam)
        self.A = A
        self.ishape = tuple(A.ishape)
        self.oshape = tuple(A.oshape)
        self.tol = float(tol)
        self.warm_start = bool(warm_start)
        self.structure = fourier_structure(A)
        if np.ndim(sigma) == 0:
            sigma = float(sigma)
            self._sigma_is_zero = sigma == 0
        else:
            self._sigma_is_zero = bool(np.all(sp.to_device(sigma) == 0))
        self.sigma = sigma
        st = self.structure
        if weights is None and st is not None and st.maps is None and st.phase is None:
            if st.crop is not None:
                weights = crop_hermitian_weights(st.hr_shape, st.crop)
            else:
                weights = hermitian_weights(st.mask)
        self.closed_form = weights is not None
        self.method = "closed-form" if self.closed_form else "cg"
        self.weights = weights
        if max_iter is None:
            max_iter = DEFAULT_CG_ITER if st is not None else DEFAULT_CG_ITER_GENERAL
        self.max_iter = int(max_iter)
        if st is None and not isinstance(sigma, float):
            raise ValueError("DataConsistency: a per-entry/per-slice sigma needs a Fourier "
                             "sampling operator (CropFourier, FourierSampling, Sense, ...); "
                             "got an array sigma with a general operator")
        self._delta = None
        self._aty = None
        self.support = None
        if st is not None and st.maps is not None:
            # pixels where every coil map is zero (ESPIRiT crops its maps outside the
            # object) are unseen by the data: the image is 0 there
            with sp.get_device(st.maps):
                xp = sp.get_device(st.maps).xp
                rss = (xp.abs(st.maps) ** 2).sum(axis=-3)
                support = rss > 1e-6 * float(rss.max())
                if not bool(support.all()):
                    self.support = support.astype(np.float32)

    def _to(self, device):
        if self.weights is not None and sp.get_device(self.weights) != device:
            self.weights = sp.to_device(self.weights, device)
        if not isinstance(self.sigma, float) and sp.get_device(self.sigma) != device:
            self.sigma = sp.to_device(self.sigma, device)
        if self.structure is not None:
            self.structure.to(device)
        if self.support is not None and sp.get_device(self.support) != device:
            self.support = sp.to_device(self.support, device)

    def set_phase(self, phase):
        """Replace the phase e^{iφ} of the operator (unit-modulus complex, the image shape;
        e.g. :func:`mrirecon_vdm.phase.refine_phase`); the cached Aᴴy and warm start go."""
        st = self.structure
        if st is None or st.phase is None:
            raise ValueError("DataConsistency.set_phase: the operator has no phase "
                             "(A * Phase(...)) to replace")
        st.phase = phase
        self._aty = None
        self._delta = None

    def refine_phase(self, y, x, window):
        """Refine the operator's phase from a magnitude estimate ``x`` (the image shape) with
        :func:`mrirecon_vdm.phase.refine_phase` and use it from now on; returns e^{iφ'}."""
        from .phase import refine_phase

        st = self.structure
        if getattr(self, "_aty0", None) is None or self._aty0[0] is not y:
            # A₀ᴴy (the operator without its phase), once per measurement
            self._aty0 = (y, st.without_phase().adjoint(y))
        self.set_phase(refine_phase(y, st, x, window, aty0=self._aty0[1]))
        # Re Aᴴy through the new phase, without another FFT (the data step's cache)
        xp = sp.get_device(x).xp
        self._aty = (y, xp.real(self._aty0[1] * st.phase.conj()).astype(x.dtype, copy=False))
        return self.structure.phase

    def set_sigma(self, sigma):
        """Replace the noise level σ (a number ≥ 0, units of y)."""
        sigma = float(sigma)
        if not (np.isfinite(sigma) and sigma >= 0):
            raise ValueError(f"DataConsistency.set_sigma: sigma must be finite and >= 0, got "
                             f"{sigma!r}")
        self.sigma = sigma
        self._sigma_is_zero = sigma == 0

    def forward(self, x):
        """A x for a batch of images, ``(K, *ishape) -> (K, *oshape)``."""
        # complex in: SigPy's FFT would cast real float64 to complex64
        x = x.astype(np.result_type(x.dtype, np.complex64), copy=False)
        if self.structure is not None:
            self.structure.to(sp.get_device(x))
            return self.structure.forward(x)
        xp = sp.get_device(x).xp
        return xp.stack([self.A(xk) for xk in x])

    def adjoint(self, r):
        """A^H r for a batch, ``(K, *oshape) -> (K, *ishape)`` (complex)."""
        if self.structure is not None:
            self.structure.to(sp.get_device(r))
            return self.structure.adjoint(r)
        xp = sp.get_device(r).xp
        return xp.stack([self.A.H(rk) for rk in r])

    def _kappa(self, v):
        w = self.weights
        if self._sigma_is_zero or v is None or (np.ndim(v) == 0 and not np.isfinite(v)):
            return w
        return w * v / (v + w * self.sigma ** 2 / 2.0)

    def _lam(self, v):
        """σ²/(2v), the weight of ‖x − x̂‖² in the normal equations (0: a projection), at
        least ``min_lam``."""
        if self._sigma_is_zero or v is None or (np.ndim(v) == 0 and not np.isfinite(v)):
            return self.min_lam
        if np.ndim(v) == 0:
            v = float(v)
        lam = self.sigma ** 2 / (2.0 * v)
        if np.ndim(lam) == 0:
            return max(float(lam), self.min_lam)
        return lam if self.min_lam == 0 else sp.get_device(lam).xp.maximum(lam, self.min_lam)

    def project(self, x, y):
        """The real least-squares projection of ``x`` onto {A x = y} (σ ignored)."""
        return self._solve(x, y, None, remember=False)

    def prox(self, x, y, v):
        """The proximal step of the class docstring.

        Args:
            x (array): (K, *ishape) real estimates x̂.
            y (array): ``oshape`` or (K, *oshape) complex measurement.
            v (float, array or None): variance attached to x̂ (None or inf: projection); an
                array gives one per image, broadcastable to ``(K, *ishape)`` (e.g.
                ``ishape[:-2] + (1, 1)``), on the device of ``x``, and needs a Fourier
                structure.

        Returns:
            array: (K, *ishape) real, dtype of ``x``.
        """
        return self._solve(x, y, v, remember=True)

    def _solve(self, x, y, v, remember):
        device = sp.get_device(x)
        self._to(device)
        with device:
            xp = device.xp
            if self.closed_form:
                kappa = self._kappa(v)
                r = self.forward(x) - y
                return (x - xp.real(self.adjoint(kappa * r))).astype(x.dtype, copy=False)
            lam = self._lam(v)
            if self.structure is None:
                if not isinstance(lam, float):
                    raise ValueError("DataConsistency: an array sigma or variance needs a "
                                     "Fourier operator")
                out = xp.empty_like(x)
                yb = xp.broadcast_to(y, x.shape[:1] + self.oshape)
                for k in range(x.shape[0]):
                    out[k] = self._cg(x[k], yb[k], lam)
                return out
            out = self._batched(x, y, lam, remember)
            if self.support is not None:
                out = out * self.support
            return out

    def _batched(self, x, y, lam, remember):
        """CG over every image of the batch at once (Fourier structures)."""
        xp = sp.get_device(x).xp
        st = self.structure

        def normal(u):
            out = xp.real(st.normal(u)).astype(u.dtype, copy=False)
            if not (isinstance(lam, float) and lam == 0):
                out = out + lam * u
            return out

        if self._aty is None or self._aty[0] is not y or self._aty[1].dtype != x.dtype:
            # Re Aᴴy, once per measurement (the fast sampler passes the same y every step)
            self._aty = (y, xp.real(st.adjoint(y)).astype(x.dtype, copy=False))
        b = xp.broadcast_to(self._aty[1], x.shape)
        if not (isinstance(lam, float) and lam == 0):
            b = b + lam * x
        start = x
        if self.warm_start and remember and self._delta is not None \
                and self._delta.shape == x.shape:
            start = x + self._delta
        out = batched_cg(normal, b, start, self.max_iter, self.tol, axes=(-2, -1))
        out = out.astype(x.dtype, copy=False)
        if remember:
            self._delta = out - x
        return out

    def _cg(self, x0, y, lam):
        xp = sp.get_device(x0).xp
        A = self.A

        cdtype = np.result_type(x0.dtype, np.complex64)

        def normal(u):
            out = xp.real(A.H(A(u.astype(cdtype)))).astype(u.dtype, copy=False)
            if lam:
                out = out + lam * u
            return out

        b = xp.real(A.H(y)).astype(x0.dtype, copy=False)
        if lam:
            b = b + lam * x0
        bnorm = float(xp.linalg.norm(b))
        alg = sp.alg.ConjugateGradient(normal, b, x0.copy(), max_iter=self.max_iter,
                                       tol=self.tol * bnorm)
        while not alg.done():
            alg.update()
        return alg.x


# ------------------------------------------------------------------ time grids
def make_time_grid(gamma, num_steps, kind="logsnr", t_start=1.0):
    """N + 1 decreasing times from ``t_start`` to 0 and their γ.

    The sampler evaluates the network at the first N and ends at t = 0.

    * ``"uniform"``: uniform in t, t_i = t_start (1 − i/N) (the paper's grid);
    * ``"logsnr"``: uniform in γ = −log SNR between γ(t_start) and γ(0) (equals
      ``"uniform"`` for a linear schedule);
    * ``"karras"``: Karras et al. (2022) spacing with ρ = 7 in τ = σ/α = exp(γ/2),
      τ_i = (τ_max^{1/ρ} + i/N (τ_min^{1/ρ} − τ_max^{1/ρ}))^ρ (compared with ``"logsnr"``,
      coarser at the very lowest and highest noise levels, finer in between).

    Args:
        gamma (callable): numpy array of times (n,) → γ(t) (n,), monotone increasing.
        num_steps (int): N ≥ 1.
        kind (str): one of :data:`TIME_GRIDS`.
        t_start (float): first time, in (0, 1].

    Returns:
        tuple of arrays: ``t`` (N + 1,) and ``g`` = γ(t) (N + 1,), float64.
    """
    if kind not in TIME_GRIDS:
        raise ValueError(f"make_time_grid: time grid must be one of {TIME_GRIDS}, got {kind!r}")
    n = int(num_steps)
    if kind == "uniform":
        t = t_start * (1.0 - np.arange(n + 1) / n)
    else:
        t_dense = np.linspace(0.0, t_start, 4097)
        g_dense = np.maximum.accumulate(np.asarray(gamma(t_dense), dtype=np.float64))
        g_hi, g_lo = g_dense[-1], g_dense[0]
        if kind == "logsnr":
            g_target = g_hi + (g_lo - g_hi) * np.arange(n + 1) / n
        else:
            rho = KARRAS_RHO
            tau_max, tau_min = math.exp(g_hi / 2), math.exp(g_lo / 2)
            tau = (tau_max ** (1 / rho)
                   + np.arange(n + 1) / n * (tau_min ** (1 / rho) - tau_max ** (1 / rho))) ** rho
            g_target = 2.0 * np.log(tau)
        t = np.interp(g_target, g_dense, t_dense)
        t[0], t[-1] = t_start, 0.0
    t = np.minimum.accumulate(t)      # monotone despite rounding
    g = np.asarray(gamma(t), dtype=np.float64)
    return t, g


# ------------------------------------------------------------------ the sampler
class GuidedVDM(sp.alg.Alg):
    """k-space-guided VDM sampling of p(x | y), one network evaluation per ``update()``.

    The state ``z`` holds K chains (posterior samples) at once, shape ``(K, *A.ishape)``.

    **"paper"** sampler, step i, t = t_i → s = t_{i+1} (uniform grid from 1 to 0):

    .. math::
        \\hat y_t &= \\alpha_t \\hat y_0 + \\sigma_t A \\varepsilon', \\\\
        z_t' &= z_t - \\lambda\\,(z_t - \\Pi_{\\hat y_t}(z_t))
        \\;=\\; F^{-1}[\\lambda \\mathcal{P}(\\Lambda) \\hat y_t + (1-\\lambda)\\Lambda F z_t
        + (I - \\Lambda) F z_t] \\text{ (CropFourier)}, \\\\
        z_s &= \\frac{\\alpha_s}{\\alpha_t}\\big(z_t' - \\sigma_t c\\,
        \\hat\\varepsilon_\\theta(z_t'; t)\\big) + \\sigma_s \\sqrt{c}\\, \\varepsilon,
        \\qquad c = -\\mathrm{expm1}(\\gamma_s - \\gamma_t),

    the VDM ancestral step p(z_s | z_t) = q(z_s | z_t, x = x̂_θ(z_t; t)) (no noise into
    s = 0); the output is x̂ = z_0 / α_0.

    **"fast"** sampler, step i:

    .. math::
        \\hat x_0 &= (z_t - \\sigma_t \\hat\\varepsilon_\\theta(z_t; t)) / \\alpha_t, \\\\
        \\hat x_0' &= \\hat x_0 - \\lambda\\,(\\hat x_0 - \\mathrm{prox}(\\hat x_0; \\hat y_0,
        v_t)), \\qquad v_t = \\sigma_t^2/\\alpha_t^2 \\text{ ("flat") or } \\sigma_t^2
        \\text{ ("unit")}, \\\\
        \\hat\\varepsilon' &= (z_t - \\alpha_t \\hat x_0') / \\sigma_t, \\quad
        \\varsigma = \\eta\\, \\sigma_s \\sqrt{c}, \\\\
        z_s &= \\alpha_s \\hat x_0' + \\sqrt{\\sigma_s^2 - \\varsigma^2}\\, \\hat\\varepsilon'
        + \\varsigma\\, \\varepsilon,

    (DDIM; η = 1 is the ancestral step q(z_s | z_t, x = x̂₀')); after the last evaluation
    the output is x̂₀'. Start: z_{t_0} = α_{t_0} λ Π_{ŷ_0}(0) + σ_{t_0} ε (a warm start from
    the minimum-norm consistent image when t_0 < 1; λ = 0 keeps the data out).

    Args:
        denoise (callable): ``denoise(z, t) -> eps_hat``, z (K, *ishape) real array, t float;
            returns an array or torch tensor of the same shape, ε̂_θ(z_t; t).
        gamma (callable): numpy times (n,) → γ_φ(t) (n,).
        y (array): ŷ_0, the measurement, shape ``dc.oshape``.
        dc (DataConsistency): the data-consistency object (holds A and σ).
        shape (tuple): the state shape ``(K, *dc.ishape)``.
        sampler (str): ``"fast"`` or ``"paper"``.
        num_steps (int or None): network evaluations N (default 1000 paper, 50 fast).
        lamda (float): λ ∈ [0, 1], the weight of the data.
        eta (float or None): η ∈ [0, 1], DDIM stochasticity (fast sampler,
            ``renoise="ddim"``; None: 1).
        renoise (str or None): how the fast sampler goes from x̂₀′ to z_s: ``"fresh"`` (the
            default, :data:`DEFAULT_RENOISE`): z_s = α_s x̂₀′ + σ_s ε, all of the noise new
            (the forward process from x̂₀′; no η), or ``"ddim"`` (above). See
            :func:`resolve_renoise` and ``docs/sampler.md`` ("Fresh renoising").
        time_grid (str or None): one of :data:`TIME_GRIDS` (default uniform for paper,
            logsnr for fast).
        t_start (float): first time t_0 ∈ (0, 1]; below 1 a warm start from the noised
            minimum-norm consistent image λA⁺y, or from ``x_init`` (the paper starts from
            z_1 ~ N(0, I)).
        dc_variance (str): v_t of the fast sampler's proximal step, ``"flat"`` or ``"unit"``.
        dc_variance_floor (float): the smallest v_t (≥ 0; units of the state). Late in the
            sampler v_t goes to 0 while x̂₀ still carries the error of the whole trajectory,
            so with noise (σ > 0) the data would stop counting; a floor keeps them in.
        randn (callable or None): ``randn(shape) -> array`` of standard normals, on the
            device of y (default: a fresh numpy/cupy generator). Zeros give the mean path.
        dtype: real dtype of the state.
        before_dc (callable or None): called with x̂₀ before each data step (fast sampler).
        x_init (array or None): the image of the warm start (``ishape``, or one per sample,
            ``(K, *ishape)``), e.g. a plug-and-play reconstruction; None: λA⁺y.

    Attributes:
        z (array): the current state z_t, (K, *ishape).
        x (array or None): the output x̂ after the last step, (K, *ishape).
        t, g (arrays): the time grid and γ on it, (N + 1,).
        nfe (int): network evaluations so far.
    """

    def __init__(self, denoise, gamma, y, dc, shape, sampler="fast", num_steps=None, lamda=1.0,
                 eta=None, time_grid=None, t_start=1.0, dc_variance="flat", randn=None,
                 dtype=np.float32, before_dc=None, x_init=None, renoise=None,
                 dc_variance_floor=0.0):
        if sampler not in SAMPLERS:
            raise ValueError(f"GuidedVDM: sampler must be one of {SAMPLERS}, got {sampler!r}")
        if before_dc is not None and sampler != "fast":
            raise ValueError("GuidedVDM: before_dc needs the fast sampler")
        self.before_dc = before_dc
        num_steps = DEFAULT_NUM_STEPS[sampler] if num_steps is None else num_steps
        if int(num_steps) != num_steps or num_steps < 1:
            raise ValueError(f"GuidedVDM: num_steps must be an integer >= 1, got {num_steps!r}")
        check_in_range("GuidedVDM lamda", lamda, 0.0, 1.0)
        renoise, eta = resolve_renoise("GuidedVDM", sampler, renoise, eta)
        if not 0.0 < t_start <= 1.0:
            raise ValueError(f"GuidedVDM: t_start must be in (0, 1], got {t_start!r}")
        time_grid = DEFAULT_TIME_GRID[sampler] if time_grid is None else time_grid
        if time_grid not in TIME_GRIDS:
            raise ValueError(f"GuidedVDM: time_grid must be one of {TIME_GRIDS}, "
                             f"got {time_grid!r}")
        if dc_variance not in DC_VARIANCES:
            raise ValueError(f"GuidedVDM: dc_variance must be one of {DC_VARIANCES}, "
                             f"got {dc_variance!r}")
        self.renoise = renoise
        shape = tuple(int(s) for s in shape)
        if shape[1:] != dc.ishape:
            raise ValueError(f"GuidedVDM: expected a state shape (K, *{dc.ishape}), got {shape}")
        if tuple(y.shape) != dc.oshape:
            raise ValueError(f"GuidedVDM: expected y of shape {dc.oshape}, got {tuple(y.shape)}")
        self.denoise = denoise
        self.y = y
        self.dc = dc
        self.sampler = sampler
        self.lamda = float(lamda)
        self.eta = float(eta)
        self.time_grid = time_grid
        self.dc_variance = dc_variance
        if isinstance(dc_variance_floor, bool) or not isinstance(
                dc_variance_floor, (int, float, np.number)) \
                or not (math.isfinite(dc_variance_floor) and dc_variance_floor >= 0):
            raise ValueError(f"GuidedVDM: dc_variance_floor must be a finite number >= 0, got "
                             f"{dc_variance_floor!r}")
        self.dc_variance_floor = float(dc_variance_floor)
        self.dtype = np.dtype(dtype)
        self.device = sp.get_device(y)
        if randn is None:
            rng = self.device.xp.random.default_rng()
            randn = lambda shp: rng.standard_normal(shp, dtype=self.dtype)  # noqa: E731
        self.randn = randn
        self.t, self.g = make_time_grid(gamma, int(num_steps), time_grid, t_start)
        self.nfe = 0
        self.x = None
        self.x0 = None
        with self.device:
            xp = self.device.xp
            a0, s0 = alpha_sigma(self.g[0])
            eps = self._randn(shape)
            if sampler == "paper" and self.t[0] == 1.0:
                self.z = eps                                          # z_1 ~ N(0, I)
            elif x_init is not None:
                x_init = xp.broadcast_to(xp.asarray(x_init, dtype=self.dtype), shape)
                self.z = (a0 * x_init + s0 * eps).astype(self.dtype, copy=False)
            else:
                x_init = xp.zeros(shape, dtype=self.dtype)
                if self.lamda > 0:
                    x_init = self.lamda * self.dc.project(x_init, y)
                self.z = (a0 * x_init + s0 * eps).astype(self.dtype, copy=False)
        super().__init__(int(num_steps))

    def _randn(self, shape):
        return self.device.xp.asarray(self.randn(tuple(shape))).astype(self.dtype, copy=False)

    def _eps(self, z, t):
        e = self.denoise(z, float(t))
        self.nfe += 1
        if type(e).__module__.startswith("torch"):
            from .backend import from_torch
            e = from_torch(e)
        e = self.device.xp.asarray(e)
        if e.shape != z.shape:
            raise ValueError(f"GuidedVDM: denoise returned shape {tuple(e.shape)} for a state "
                             f"of shape {tuple(z.shape)}")
        return e.astype(self.dtype, copy=False)

    def _update(self):
        with self.device:
            if self.sampler == "paper":
                self._paper_step()
            else:
                self._fast_step()

    def _paper_step(self):
        """One step of the paper's sampler.

        Notation (code → paper):
            z ↔ z_t (x_t in Song et al.), y ↔ ŷ_0 = 𝒫⁻¹(Λ) F x + n, y_t ↔ ŷ_t,
            lamda ↔ λ, g_t, g_s ↔ γ_φ(t), γ_φ(s), a_t, s_t ↔ α_t, σ_t,
            eps_hat ↔ ε̂_θ(z_t; t), dc.project ↔ Π (F⁻¹[𝒫(Λ)ŷ_t + (I − Λ)F z_t] for CropFourier).
        """
        i = self.iter
        t, g_t, g_s = self.t[i], self.g[i], self.g[i + 1]
        a_t, s_t = alpha_sigma(g_t)
        a_s, s_s = alpha_sigma(g_s)
        z = self.z
        # 1. measurement at the current noise level: ŷ_t = α_t ŷ_0 + σ_t A ε'
        # 2. mixing: z_t' = z_t − λ (z_t − Π_{ŷ_t}(z_t))
        if self.lamda > 0:
            y_t = a_t * self.y + s_t * self.dc.forward(self._randn(z.shape))
            z = z - self.lamda * (z - self.dc.project(z, y_t))
        # 3. ε̂_θ(z_t'; t)
        eps_hat = self._eps(z, t)
        # 4. ancestral step z_s = (α_s/α_t)(z_t' − σ_t c ε̂) + σ_s √c ε, c = −expm1(γ_s − γ_t)
        c = -math.expm1(g_s - g_t)
        z = (a_s / a_t) * (z - (s_t * c) * eps_hat)
        last = i == self.max_iter - 1
        if not last:
            z = z + (s_s * math.sqrt(c)) * self._randn(z.shape)
        self.z = z.astype(self.dtype, copy=False)
        # 5. output x̂ = z_0 / α_0
        if last:
            self.x = self.z / a_s

    def _fast_step(self):
        """One step of the fast sampler.

        Notation (code → paper):
            z ↔ z_t, y ↔ ŷ_0, x0 ↔ x̂₀ (Tweedie estimate of x), lamda ↔ λ, eta ↔ η,
            g_t, g_s ↔ γ_φ(t), γ_φ(s), a_t, s_t ↔ α_t, σ_t, v ↔ v_t (variance attached
            to x̂₀ in the proximal step), eps_eff ↔ ε̂' (the noise direction after data
            consistency), vs ↔ ς² (DDIM's σ_t(η)²).
        """
        i = self.iter
        t, g_t, g_s = self.t[i], self.g[i], self.g[i + 1]
        a_t, s_t = alpha_sigma(g_t)
        a_s, s_s = alpha_sigma(g_s)
        z = self.z
        # 1. ε̂_θ(z_t; t) and x̂₀ = (z_t − σ_t ε̂)/α_t
        eps_hat = self._eps(z, t)
        x0 = (z - s_t * eps_hat) / a_t
        # 2. data consistency: x̂₀' = x̂₀ − λ (x̂₀ − prox(x̂₀; ŷ_0, v_t)) (before_dc: a hook
        #    that may update the data consistency from x̂₀, e.g. refine the phase)
        if self.before_dc is not None and i > 0:
            self.before_dc(x0)
        if self.lamda > 0:
            v = math.exp(g_t) if self.dc_variance == "flat" else s_t ** 2
            v = max(v, self.dc_variance_floor)
            x0 = x0 - self.lamda * (x0 - self.dc.prox(x0, self.y, v))
        x0 = x0.astype(self.dtype, copy=False)
        self.x0 = x0
        if i == self.max_iter - 1:
            # 3'. output after the last evaluation
            self.x = x0
            return
        if self.renoise == "fresh":
            # 3. the forward process from x̂₀': z_s = α_s x̂₀' + σ_s ε
            self.z = (a_s * x0 + s_s * self._randn(z.shape)).astype(self.dtype, copy=False)
            return
        # 3. DDIM renoising to s: ε̂' = (z_t − α_t x̂₀')/σ_t, ς² = η² σ_s² c
        eps_eff = (z - a_t * x0) / s_t
        c = -math.expm1(g_s - g_t)
        vs = (self.eta * s_s) ** 2 * c
        z = a_s * x0 + math.sqrt(max(s_s ** 2 - vs, 0.0)) * eps_eff
        if vs > 0:
            z = z + math.sqrt(vs) * self._randn(z.shape)
        self.z = z.astype(self.dtype, copy=False)
