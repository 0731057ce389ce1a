"""Classical super-resolution baselines, as SigPy Apps.

Every App takes the low-resolution k-space ``y`` and the forward operator ``A`` (a
:class:`~mrirecon_vdm.linop.CropFourier`, ``y = A x``); ``run()`` returns the real
high-resolution **magnitude** image (numpy or cupy, on ``y``'s device) and sets ``time``,
the wall-clock seconds the reconstruction took (set-up included).

* :class:`ZeroFillRecon`: :math:`|A^H y|` (zero-padded k-space, inverse FFT);
* :class:`BicubicRecon`: cubic-spline interpolation of the LR magnitude image;
* :class:`L1WaveletRecon`: :math:`\\min_x \\frac12\\|Ax-y\\|_2^2 + \\lambda s\\|Wx\\|_1`,
  SigPy, FISTA;
* :class:`TVRecon`: :math:`\\min_x \\frac12\\|Ax-y\\|_2^2 + \\lambda s\\|\\nabla x\\|_1`,
  SigPy, PDHG;
* :class:`BartPicsRecon`: the same two problems through BART ``pics``.

**Constraints.** By default the CS Apps reconstruct a complex image. With ``real=True`` the
unknown is a real image ``x`` seen through ``A · diag(e^{iφ})`` (the image is
:math:`x e^{i\\varphi}`), as the VDM methods reconstruct it: ``phase`` is resolved exactly as
theirs (:func:`mrirecon_vdm.phase.resolve_phase`, then
:func:`mrirecon_vdm.phase.apply_phase`: ``"none"`` a real image, ``"auto"`` the phase
estimated from the calibration region by :func:`mrirecon_vdm.phase.estimate_phase`, an array
a known phase; None: ``"auto"`` for coil maps, whose ESPIRiT phase is arbitrary, else
``"none"``). SigPy solves over real arrays through
``A * Phase(φ) * RealToComplex`` (:class:`mrirecon_vdm.linop.RealToComplex`, adjoint the
real part); BART runs ``pics -c`` (real-value constraint) with the phase folded into the
coil maps (:math:`S e^{i\\varphi}`; a single coil's map is :math:`e^{i\\varphi}`). The
benchmark names them ``<method>-real`` (no phase) and ``<method>-phase`` (an estimated
phase), each with its own tuned weights.

**Scale-invariant regularisation.** ``lamda`` is relative to the data: the weight used is
:math:`\\lambda s` with :math:`s = \\max |A^H y|`, the peak of the zero-filled image. Both
problems are 1-homogeneous, so multiplying ``y`` by ``c`` multiplies the reconstruction by
``c`` and leaves the best ``lamda`` unchanged: a value tuned on slices of peak about 1 works
on scanner data of any intensity. BART is called on ``y / s`` with its own scaling switched
off (``-w 1``) and the result is multiplied by ``s``, so that ``lamda`` means the same for
SigPy and BART (up to their wavelets and TV discretisations).

**Defaults.** ``lamda=None`` / ``max_iter=None`` take the values tuned on the validation split
(``benchmarks/tune_baselines.py``), stored per method and scale factor in
``baselines_defaults.json``; the scale factor is :math:`\\sqrt{N_1N_2/(m_1m_2)}` and the nearest
tuned factor (on a log scale) is used. See :func:`default_lamda`.

**Input.** ``y`` must have exactly ``A.oshape``, be finite and complex: a real ``y`` is
rejected, since it is far more often a low-resolution *image* passed by mistake than real
k-space (convert images with :func:`mrirecon_vdm.linop.lowres_image_to_kspace`).
The CS Apps reconstruct a complex image (real scans carry phase), or a real one under a
constraint (above), and return its magnitude.

References:
    Lustig, M., Donoho, D., & Pauly, J. M. (2007). Sparse MRI: The application of
    compressed sensing for rapid MR imaging. Magnetic Resonance in Medicine, 58(6),
    1182-1195.

    Rudin, L. I., Osher, S., & Fatemi, E. (1992). Nonlinear total variation based noise
    removal algorithms. Physica D, 60(1-4), 259-268.

    Ong, F., & Lustig, M. (2019). SigPy: A Python package for high performance iterative
    reconstruction. Proc. Intl. Soc. Mag. Reson. Med. 27, 4819.

    Uecker, M., Ong, F., Tamir, J. I., Bahri, D., Virtue, P., Cheng, J. Y., Zhang, T., &
    Lustig, M. (2015). Berkeley Advanced Reconstruction Toolbox. Proc. Intl. Soc. Mag.
    Reson. Med. 23, 2486.

    Beck, A., & Teboulle, M. (2009). A fast iterative shrinkage-thresholding algorithm for
    linear inverse problems. SIAM Journal on Imaging Sciences, 2(1), 183-202.

    Chambolle, A., & Pock, T. (2011). A first-order primal-dual algorithm for convex
    problems with applications to imaging. Journal of Mathematical Imaging and Vision,
    40(1), 120-145.
"""
import functools
import json
import math
import pathlib
import time

import numpy as np
import sigpy as sp

from ._checks import check_measurement
from .linop import CropFourier, RealToComplex, kspace_to_lowres_image, max_eig

__all__ = ["ZeroFillRecon", "BicubicRecon", "L1WaveletRecon", "TVRecon", "BartPicsRecon",
           "operator_kind", "KINDS", "default_lamda", "default_max_iter", "scale_factor",
           "data_scale", "constraint_of",
           "DEFAULTS_PATH", "REGULARISED", "UNCONSTRAINED", "CONSTRAINTS", "SOLVER_VERSIONS",
           "TV_BALANCE", "BART_REGS"]

#: The JSON file with the tuned ``lamda`` (per method and scale factor) and ``max_iter``.
DEFAULTS_PATH = pathlib.Path(__file__).with_name("baselines_defaults.json")

#: The regularised methods on a complex image, as named in the defaults file and the benchmark.
UNCONSTRAINED = ("sigpy-wavelet", "sigpy-tv", "bart-wavelet", "bart-tv")
#: The constraints (a method-name suffix): ``"real"`` a real image, ``"phase"`` a real image
#: times the estimated phase e^{iφ} (the two image models of the VDM methods).
CONSTRAINTS = ("real", "phase")
#: Names of all regularised methods: the unconstrained ones, then ``<name>-real`` and
#: ``<name>-phase`` (each tuned on its own).
REGULARISED = UNCONSTRAINED + tuple(f"{m}-{c}" for c in CONSTRAINTS for m in UNCONSTRAINED)
#: Solver versions of the regularised methods whose iteration changed (recorded in the
#: benchmark journal beside the tuned weights): sigpy-tv 2, the balanced PDHG.
SOLVER_VERSIONS = {"sigpy-tv": 2}
#: The scale c of TVRecon's balanced PDHG (∇/c, λc).
TV_BALANCE = math.sqrt(8.0)

#: ``reg`` values of :class:`BartPicsRecon` -> BART ``pics`` regulariser (flags 3: axes 0, 1).
BART_REGS = {"wavelet": "W:3:0:{lamda}", "tv": "T:3:0:{lamda}"}


def constraint_of(method):
    """The constraint of a regularised method's name: None, ``"real"`` or ``"phase"``."""
    _check_method(method)
    tail = method.rsplit("-", 1)[-1]
    return tail if tail in CONSTRAINTS else None


# --------------------------------------------------------------------------- defaults
@functools.lru_cache(maxsize=None)
def _defaults():
    try:
        with open(DEFAULTS_PATH) as f:
            return json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"the baselines' defaults file is missing: {DEFAULTS_PATH}; "
                                "reinstall the package or pass lamda and max_iter") from None


def _check_method(method):
    if method not in REGULARISED:
        raise ValueError(f"method must be one of {', '.join(REGULARISED)}, got {method!r}")


#: Operator kinds with their own tuned weights (:func:`operator_kind`).
KINDS = ("sr", "mask", "sense")


def operator_kind(A):
    """The kind of ``A`` whose tuned weights apply: ``"sr"`` (centre crop), ``"mask"``
    (single-coil Fourier sampling, with or without phase), ``"sense"`` (coil maps), or
    ``"sr"`` for operators the package does not recognise (the historical default)."""
    from .linop import fourier_structure

    st = fourier_structure(A)
    if st is None or (st.crop is not None and st.maps is None):
        return "sr"
    return "sense" if st.maps is not None else "mask"


def _tuned(method, scale, what, kind="sr"):
    _check_method(method)
    if kind not in KINDS:
        raise ValueError(f"default_{what}: kind must be one of {KINDS}, got {kind!r}")
    try:
        scale = float(scale)
    except (TypeError, ValueError):
        raise ValueError(f"default_{what}: scale must be a number, got {scale!r}") from None
    if not np.isfinite(scale) or scale < 1:
        raise ValueError(f"default_{what}: scale must be finite and >= 1, got {scale!r}")
    table = _defaults()["methods"].get(method)
    if kind != "sr":
        # tuned per operator kind and acceleration; the super-resolution table otherwise
        table = _defaults().get("tasks", {}).get(kind, {}).get(method) or table
    if not table:
        raise ValueError(f"default_{what}: {method} has no tuned defaults for the operator kind "
                         f"{kind!r} (tune it with benchmarks/tune_baselines.py, or pass lamda "
                         f"and max_iter)")
    nearest = min(table, key=lambda key: abs(math.log(float(key)) - math.log(scale)))
    return table[nearest][what]


def default_lamda(method, scale, kind="sr"):
    """The tuned relative regularisation weight of ``method`` at scale factor ``scale``.

    Args:
        method (str): one of :data:`REGULARISED`.
        scale (float): super-resolution factor (e.g. 4 for 32 -> 128), or the acceleration
            R of an undersampling operator; the nearest tuned value on a log scale is used.
        kind (str): the operator kind (:func:`operator_kind`): ``"sr"``, ``"mask"`` or
            ``"sense"``, each tuned on its own (``"mask"`` and ``"sense"`` fall back to the
            super-resolution table when the defaults file has no entry for them).

    Returns:
        float: ``lamda``, relative to :math:`\\max|A^H y|` (see the module docstring).
    """
    return float(_tuned(method, scale, "lamda", kind))


def default_max_iter(method, scale, kind="sr"):
    """The tuned iteration count of ``method`` at scale factor ``scale`` (int).

    The iterative solvers start from zero and are stopped after ``max_iter`` iterations; the
    count was tuned together with ``lamda`` (early stopping regularises too).
    """
    return int(_tuned(method, scale, "max_iter", kind))


def scale_factor(A):
    """Super-resolution factor :math:`\\sqrt{N_1 N_2 / (m_1 m_2)}` of a crop operator.

    For Fourier sampling with a mask, the acceleration ``H W / samples`` (mean over slices);
    for other linops, the square root of the ratio of input to output sizes.
    """
    from .linop import fourier_structure

    if isinstance(A, CropFourier):
        return math.sqrt(math.prod(A.hr_shape) / math.prod(A.lr_shape))
    st = fourier_structure(A)
    if st is not None and st.crop is not None:
        return math.sqrt(math.prod(st.hr_shape) / math.prod(st.crop))
    if st is not None:
        m = np.asarray(sp.to_device(st.full_mask()))
        return float(m.size / max(float(m.sum()), 1.0))
    return math.sqrt(math.prod(A.ishape) / math.prod(A.oshape))


def data_scale(y, A):
    """The intensity scale :math:`s = \\max|A^H y|` that ``lamda`` is relative to (float)."""
    xp = sp.get_device(y).xp
    with sp.get_device(y):
        return float(xp.abs(A.H(y)).max())


# --------------------------------------------------------------------------- plumbing
def _require_crop(name, A):
    if not isinstance(A, CropFourier):
        raise TypeError(f"{name}: A must be a CropFourier (the method needs the k-space grid), "
                        f"got {type(A).__name__}")


def _check_lamda(name, lamda):
    try:
        lamda = float(lamda)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: lamda must be a number, got {lamda!r}") from None
    if not np.isfinite(lamda) or lamda < 0:
        raise ValueError(f"{name}: lamda must be finite and >= 0, got {lamda!r}")
    return lamda


def _check_max_iter(name, max_iter):
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"{name}: max_iter must be an int >= 1, got {max_iter!r}")
    return int(max_iter)


def _real_dtype(y):
    return np.float64 if y.dtype == np.complex128 else np.float32


def _constrain(name, y, A, real, phase):
    """``(A_phase, φ, constraint)``: the operator with the phase, the phase in radians (None
    without) and the constraint (None, ``"real"`` or ``"phase"``).

    ``real=False``: ``A`` itself (a complex image). ``real=True``: ``A * Phase(φ)`` (``A``
    without a phase), to be solved over real images through ``A_phase * RealToComplex``;
    ``phase`` is resolved by the VDM Apps' own calls
    (:func:`~mrirecon_vdm.phase.resolve_phase`, :func:`~mrirecon_vdm.phase.apply_phase`).
    """
    from .phase import apply_phase, resolve_phase

    if not isinstance(real, (bool, np.bool_)):
        raise ValueError(f"{name}: real must be True or False, got {real!r}")
    if not real:
        if phase is not None:
            raise ValueError(f"{name}: phase applies to a real image (real=True); a complex "
                             f"image carries its own phase")
        return A, None, None
    A_phi, phi = apply_phase(resolve_phase(name, phase, A), y, A)
    return A_phi, phi, "real" if phi is None else "phase"


class _RealProx(sp.prox.Prox):
    """A proximal operator of a real function of real arrays, its output made real.

    SigPy's soft-threshold is a numba ufunc compiled lazily per dtype: once it has run on
    complex arrays, a real input is cast to its complex loop and comes back complex (with a
    zero imaginary part), which a real iterate cannot take.
    """

    def __init__(self, prox):
        self.prox = prox
        super().__init__(prox.shape, repr_str=f"Real({prox.repr_str})")

    def _prox(self, alpha, input):
        out = self.prox(alpha, input)
        return out.real if np.iscomplexobj(out) else out


class _OneStep(sp.alg.Alg):
    """An Alg with a single update that stores ``fn()`` in ``result``."""

    def __init__(self, fn):
        self.fn = fn
        self.result = None
        super().__init__(1)

    def _update(self):
        self.result = self.fn()

    def output(self):
        if self.result is None:
            raise RuntimeError("no result yet: call run() first")
        return self.result


class _Recon(sp.app.App):
    """Common part: checks, device, timing and the magnitude output.

    Subclasses implement ``_image()``, the complex (or real) HR estimate of the Alg. ``time`` is None before ``run()``, then the seconds of set-up plus run.
    """

    def __init__(self, alg, show_pbar, setup_seconds=0.0):
        super().__init__(alg, show_pbar=show_pbar, leave_pbar=False, record_time=False)
        self._setup_seconds = setup_seconds
        self.time = None

    def run(self):
        """Run the reconstruction; return the real HR magnitude image on ``y``'s device."""
        start = time.perf_counter()
        out = super().run()
        self.time = self._setup_seconds + time.perf_counter() - start
        return out

    def image(self):
        """The current estimate as a real magnitude image (the result once ``run()`` ended)."""
        return self._output()

    def _output(self):
        with self.device:
            x = self._image()
            return self.device.xp.abs(x).astype(_real_dtype(self.y), copy=False)


# --------------------------------------------------------------------------- direct methods
class ZeroFillRecon(_Recon):
    """Zero-filled reconstruction, the magnitude of the adjoint.

    .. math::
        \\hat x = |A^H y|

    Args:
        y (array): k-space, complex, shape ``A.oshape``.
        A (Linop): forward operator (any SigPy linop; a ``CropFourier`` for super-resolution).
        show_pbar (bool): show SigPy's progress bar.
    """

    def __init__(self, y, A, show_pbar=False):
        check_measurement("ZeroFillRecon", y, A)
        self.y, self.A, self.device = y, A, sp.get_device(y)

        def solve():
            with self.device:
                return A.H(y)

        self._alg = _OneStep(solve)
        super().__init__(self._alg, show_pbar)

    def _image(self):
        return self._alg.output()


class BicubicRecon(_Recon):
    """Cubic-spline interpolation of the low-resolution magnitude image.

    The LR image :math:`|x_{lr}|`, ``x_lr = kspace_to_lowres_image(y)`` (which keeps a constant
    image's value), is interpolated with third-order splines (``scipy.ndimage.map_coordinates``,
    ``order=3``, periodic borders as the FFT implies) at the HR pixel positions

    .. math::
        u_i = m/2 + (i - N/2)\\, m / N, \\qquad i = 0, \\dots, N - 1

    (integer halves ``n // 2``: the centre pixel of either grid is index ``n // 2``, the
    convention of the centred FFT; scipy's ``zoom`` and scikit-image's ``resize`` align the
    grids differently and shift the image by up to 1.5 HR pixels at 4x). Negative overshoot
    is clipped to 0, as a magnitude cannot be negative.

    Args:
        y (array): k-space, complex, shape ``A.oshape`` (``(..., m1, m2)``).
        A (CropFourier): the crop operator.
        show_pbar (bool): show SigPy's progress bar.
    """

    def __init__(self, y, A, show_pbar=False):
        check_measurement("BicubicRecon", y, A)
        _require_crop("BicubicRecon", A)
        self.y, self.A, self.device = y, A, sp.get_device(y)
        self._alg = _OneStep(self._solve)
        super().__init__(self._alg, show_pbar)

    def _solve(self):
        A, y, xp = self.A, self.y, self.device.xp
        if xp is np:
            from scipy import ndimage
        else:  # pragma: no cover - GPU
            from cupyx.scipy import ndimage
        with self.device:
            lr = xp.abs(kspace_to_lowres_image(y, A.hr_shape))
            lr = lr.astype(_real_dtype(y), copy=False)
            axes = [xp.asarray((np.arange(n) - n // 2) * (m / n) + m // 2, dtype=lr.dtype)
                    for n, m in zip(A.hr_shape, A.lr_shape)]
            coords = xp.stack(xp.meshgrid(*axes, indexing="ij"))
            flat = lr.reshape((-1,) + tuple(A.lr_shape))
            out = xp.stack([ndimage.map_coordinates(s, coords, order=3, mode="grid-wrap")
                            for s in flat])
            return xp.maximum(out, 0).reshape(A.ishape)

    def _image(self):
        return self._alg.output()


# --------------------------------------------------------------------------- SigPy CS
class _SigPyCS(_Recon):
    method = None

    def _setup(self, name, y, A, lamda, max_iter, real=False, phase=None):
        start = time.perf_counter()
        check_measurement(name, y, A)
        self.y, self.A, self.device = y, A, sp.get_device(y)
        with self.device:
            self.A_phase, self.phase, self.constraint = _constrain(name, y, A, real, phase)
        # the operator of the solver's unknown: real under a constraint
        self.A_solve = (self.A_phase * RealToComplex(A.ishape) if self.constraint else A)
        self.method = type(self).method + (f"-{self.constraint}" if self.constraint else "")
        self.scale = scale_factor(A)
        self.kind = operator_kind(A)
        self.lamda = _check_lamda(name, default_lamda(self.method, self.scale, self.kind)
                                  if lamda is None else lamda)
        self.max_iter = _check_max_iter(name, default_max_iter(self.method, self.scale,
                                                               self.kind)
                                        if max_iter is None else max_iter)
        self.data_scale = data_scale(y, A)
        return start

    def _x0(self):
        """The solvers' start: zeros, real under a constraint (every iterate stays real)."""
        xp = self.device.xp
        dtype = _real_dtype(self.y) if self.constraint else self.y.dtype
        return xp.zeros(self.A.ishape, dtype=dtype)

    def _image(self):
        return self._x


class L1WaveletRecon(_SigPyCS):
    """L1-wavelet compressed-sensing reconstruction (SigPy, FISTA).

    .. math::
        \\min_x \\frac{1}{2}\\|A x - y\\|_2^2 + \\lambda s \\|W x\\|_1,
        \\qquad s = \\max|A^H y|

    with ``W`` the orthogonal Daubechies wavelet transform (SigPy ``Wavelet``, ``db4``) on the
    last two axes, solved with accelerated proximal gradient (FISTA) from zero. For a
    ``CropFourier`` the step size is 1 (:math:`A^H A` is a projection); for other linops it is
    estimated by a seeded power iteration (:func:`~mrirecon_vdm.linop.max_eig`). With
    ``real=True`` the unknown is real and ``A`` becomes :math:`A\\,\\mathrm{diag}(e^{i\\varphi})R`
    (module docstring): the gradient is real and the real wavelet's soft-thresholding keeps
    it real.

    Args:
        y (array): k-space, complex, shape ``A.oshape``.
        A (Linop): forward operator (``CropFourier`` or any SigPy linop on ``(..., N1, N2)``).
        lamda (float or None): weight relative to ``s``; None: the tuned default.
        max_iter (int or None): FISTA iterations; None: the tuned default.
        wave_name (str): PyWavelets wavelet name.
        real (bool): reconstruct a real image (times ``phase``) instead of a complex one.
        phase (None, str or array): with ``real=True``, as the VDM Apps' ``phase``:
            ``"none"``, ``"auto"`` (estimated), an array of radians; None: ``"auto"`` with
            coil maps, else ``"none"``.
        show_pbar (bool): show SigPy's progress bar.

    Attributes:
        method (str): ``sigpy-wavelet``, ``sigpy-wavelet-real`` or ``sigpy-wavelet-phase``
            (whose tuned defaults apply).
        phase (array or None): φ (radians) used, None without.

    References:
        Lustig, Donoho & Pauly (2007); Beck & Teboulle (2009); Ong & Lustig (2019), see the
        module docstring.
    """

    method = "sigpy-wavelet"

    def __init__(self, y, A, lamda=None, max_iter=None, wave_name="db4", real=False,
                 phase=None, show_pbar=False):
        start = self._setup("L1WaveletRecon", y, A, lamda, max_iter, real, phase)
        As = self.A_solve
        with self.device:
            W = sp.linop.Wavelet(A.ishape, axes=(-2, -1), wave_name=wave_name)
            proxg = sp.prox.UnitaryTransform(
                sp.prox.L1Reg(W.oshape, self.lamda * self.data_scale), W)
            if self.constraint:
                proxg = _RealProx(proxg)
            x0 = self._x0()
            alpha = 1.0 if isinstance(A, CropFourier) else 1.0 / max_eig(
                As, dtype=x0.dtype, device=self.device)
            lls = sp.app.LinearLeastSquares(
                As, y, x=x0, proxg=proxg, max_iter=self.max_iter, alpha=alpha,
                show_pbar=False)
        self._x = lls.x                 # updated in place by the Alg
        super().__init__(lls.alg, show_pbar, time.perf_counter() - start)


class TVRecon(_SigPyCS):
    """Total-variation reconstruction (SigPy, primal-dual hybrid gradient).

    .. math::
        \\min_x \\frac{1}{2}\\|A x - y\\|_2^2 + \\lambda s \\|\\nabla x\\|_1,
        \\qquad s = \\max|A^H y|

    with :math:`\\nabla` the circular finite differences along the last two axes and the
    anisotropic (entrywise) L1 norm, as SigPy's ``TotalVariationRecon``; solved with PDHG
    (Chambolle & Pock 2011) from zero, on the equivalent problem with
    :math:`\\nabla / c` and :math:`\\lambda c`, :math:`c = \\sqrt 8` (:data:`TV_BALANCE`), so that
    the data and the gradient blocks of the dual have comparable norms
    (:math:`\\|\\nabla\\|^2 \\le 8`): with SigPy's plain iteration (:math:`c = 1`, σ = 1,
    τ = 1/9) the data block moved so slowly that 200 iterations were 1.3 dB short of
    convergence on undersampled k-space (``benchmarks/tv_pdhg_balance.py``). σ = 1 and
    :math:`\\tau = 1/\\|[A; \\nabla/c]\\|^2`: 1/2 for a ``CropFourier``, a seeded power
    iteration (:func:`~mrirecon_vdm.linop.max_eig`) for other linops. With ``real=True`` the
    unknown is real and the PDHG runs on :math:`K = [A\\,\\mathrm{diag}(e^{i\\varphi});
    \\nabla/c]\\,R` (module docstring), :math:`K^H = \\operatorname{Re}[\\dots]^H`, the same
    iteration SigPy's ``LinearLeastSquares`` builds for ``G`` (whose ``Vstack`` would give
    a real input a real output array and drop the imaginary part of ``A x``).

    Args:
        y (array): k-space, complex, shape ``A.oshape``.
        A (Linop): forward operator.
        lamda (float or None): weight relative to ``s``; None: the tuned default.
        max_iter (int or None): PDHG iterations; None: the tuned default.
        real (bool): reconstruct a real image (times ``phase``) instead of a complex one.
        phase (None, str or array): with ``real=True``, as :class:`L1WaveletRecon`'s.
        show_pbar (bool): show SigPy's progress bar.

    Attributes:
        method (str): ``sigpy-tv``, ``sigpy-tv-real`` or ``sigpy-tv-phase``.
        phase (array or None): φ (radians) used, None without.

    References:
        Rudin, Osher & Fatemi (1992); Chambolle & Pock (2011); Ong & Lustig (2019), see the
        module docstring.
    """

    method = "sigpy-tv"

    def __init__(self, y, A, lamda=None, max_iter=None, real=False, phase=None,
                 show_pbar=False):
        start = self._setup("TVRecon", y, A, lamda, max_iter, real, phase)
        As = self.A_solve
        with self.device:
            c = TV_BALANCE
            G = sp.linop.FiniteDifference(A.ishape, axes=(-2, -1)) * (1.0 / c)
            proxg = sp.prox.L1Reg(G.oshape, self.lamda * self.data_scale * c)
            x0 = self._x0()
            if not self.constraint:
                tau = 1.0 / (1.0 + 8.0 / c ** 2) if isinstance(A, CropFourier) else \
                    1.0 / max_eig(A, G, dtype=y.dtype, device=self.device)
                lls = sp.app.LinearLeastSquares(
                    A, y, x=x0, proxg=proxg, G=G, max_iter=self.max_iter, tau=tau,
                    sigma=1.0, show_pbar=False)
                alg = lls.alg
            else:
                # LinearLeastSquares' PDHG for G, on K = [A e^{iφ}; G] R
                K = sp.linop.Vstack([self.A_phase, G]) * RealToComplex(A.ishape)
                tau = 1.0 / (1.0 + 8.0 / c ** 2) if isinstance(A, CropFourier) else \
                    1.0 / max_eig(K, dtype=x0.dtype, device=self.device)
                proxfc = sp.prox.Stack([sp.prox.L2Reg(y.shape, 1, y=-y), sp.prox.Conj(proxg)])
                u = self.device.xp.zeros(K.oshape, dtype=y.dtype)
                alg = sp.alg.PrimalDualHybridGradient(
                    proxfc, sp.prox.NoOp(x0.shape), K, K.H, x0, u, tau, 1.0,
                    max_iter=self.max_iter)
        self._x = x0                    # updated in place by the Alg
        super().__init__(alg, show_pbar, time.perf_counter() - start)


# --------------------------------------------------------------------------- BART
class BartPicsRecon(_Recon):
    """L1-wavelet or TV reconstruction with BART ``pics``: crop, mask, or mask and coil maps.

    .. math::
        \\min_x \\frac{1}{2}\\|P F S x - y\\|_2^2 + \\lambda s\\, R(x),
        \\qquad R \\in \\{\\|W x\\|_1, \\|\\nabla x\\|_1\\},\\ s = \\max|A^H y|

    ``y`` is put on the N1 x N2 grid (zero-padded for a crop) with the sampling pattern ``P``
    passed explicitly (``-p``: the crop's block, or the mask of a
    :class:`~mrirecon_vdm.linop.FourierSampling`), the coil maps S of the operator (a map of
    ones for a single coil; the same maps every other method gets), divided by ``s``,
    reconstructed with ``pics -S -w 1 -R W:3:0:lamda`` (wavelet: BART's Daubechies-2 with
    random cycle spinning, FISTA) or ``-R T:3:0:lamda`` (anisotropic TV, ADMM), and multiplied
    by ``s``. Leading axes of ``y`` are reconstructed one slice at a time.

    With ``real=True`` the image is real, ``pics -c`` (BART's real-value constraint), times
    the phase e^{iφ} resolved as the VDM Apps resolve it (module docstring), which is folded
    into the maps: ``S e^{iφ}`` (a single coil's map is ``e^{iφ}``).

    BART's ``fft -u`` is our centred FFT, but ``pics`` centres its FFT by modulation: that
    agrees up to a sign per axis of size 2 (mod 4), which is corrected, and disagrees for
    odd sizes, which are rejected (measured with BART 0.8.00).

    Args:
        y (array): k-space, complex, shape ``A.oshape``.
        A (Linop): a :class:`~mrirecon_vdm.linop.CropFourier`, or a Fourier sampling operator
            with a 0/1 mask and optional coil maps (``FourierSampling``, ``Sense``, ...;
            :func:`~mrirecon_vdm.linop.fourier_structure`), without a phase.
        reg (str): ``"wavelet"`` or ``"tv"``.
        lamda (float or None): weight relative to ``s``; None: the tuned default.
        max_iter (int or None): BART iterations (``-i``); None: the tuned default.
        real (bool): reconstruct a real image (times ``phase``), ``pics -c``.
        phase (None, str or array): with ``real=True``, as :class:`L1WaveletRecon`'s.
        show_pbar (bool): show SigPy's progress bar (one step per slice).

    Attributes:
        method (str): ``bart-<reg>``, ``bart-<reg>-real`` or ``bart-<reg>-phase``.
        phase (array or None): φ (radians) used, None without.

    Raises:
        RuntimeError: BART is not installed (with install instructions), on construction.
        ValueError: an odd high-resolution size, an operator BART cannot express.
        mrirecon_vdm.bart.BartError: BART failed, with BART's message.

    References:
        Uecker et al. (2015), BART; Lustig, Donoho & Pauly (2007); Rudin, Osher & Fatemi
        (1992), see the module docstring.
    """

    def __init__(self, y, A, reg="wavelet", lamda=None, max_iter=None, real=False, phase=None,
                 show_pbar=False):
        from .config import require_bart
        from .linop import fourier_structure

        start = time.perf_counter()
        if reg not in BART_REGS:
            raise ValueError(f"BartPicsRecon: reg must be one of {', '.join(BART_REGS)}, "
                             f"got {reg!r}")
        check_measurement("BartPicsRecon", y, A)
        st = fourier_structure(A)
        if st is None or st.phase is not None:
            raise TypeError(f"BartPicsRecon: A must be a CropFourier or a Fourier sampling "
                            f"operator (mask, optional coil maps, no phase), got {A!r}")
        hr = st.hr_shape
        if any(n % 2 for n in hr):
            raise ValueError(f"BartPicsRecon: the high-resolution size must be even, got "
                             f"{tuple(hr)} (BART pics centres its FFT by modulation, "
                             "which is not the centred FFT for odd sizes)")
        require_bart()
        self.y, self.A, self.device, self.reg = y, A, sp.get_device(y), reg
        with self.device:
            _, self.phase, self.constraint = _constrain("BartPicsRecon", y, A, real, phase)
        self.method = f"bart-{reg}" + (f"-{self.constraint}" if self.constraint else "")
        self.scale = scale_factor(A)
        self.kind = operator_kind(A)
        self.lamda = _check_lamda("BartPicsRecon", default_lamda(self.method, self.scale,
                                                                 self.kind)
                                  if lamda is None else lamda)
        self.max_iter = _check_max_iter("BartPicsRecon",
                                        default_max_iter(self.method, self.scale, self.kind)
                                        if max_iter is None else max_iter)
        self.data_scale = data_scale(y, A)
        self._hr = tuple(hr)
        self._coils = st.maps is not None
        y_cpu = np.asarray(sp.to_device(y, sp.cpu_device))
        lead = tuple(A.ishape[:-2])
        n = int(np.prod(lead)) if lead else 1
        kshape = (st.maps.shape[-3],) + self._hr if self._coils else self._hr
        if st.crop is not None:
            k = y_cpu.reshape((n,) + kshape[:-2] + tuple(st.crop))
            self._kspace = np.stack([sp.resize(ki, kshape) for ki in k])
            pattern = sp.resize(np.ones(tuple(st.crop), np.complex64), self._hr)
            self._patterns = np.broadcast_to(pattern, (n,) + self._hr)
        else:
            self._kspace = y_cpu.reshape((n,) + kshape)
            m = np.asarray(sp.to_device(st.full_mask()), dtype=np.complex64)
            self._patterns = np.broadcast_to(m, lead + self._hr).reshape((n,) + self._hr)
        if self._coils:
            maps = np.asarray(sp.to_device(st.maps)).astype(np.complex64)
            self._maps = np.broadcast_to(maps, lead + kshape).reshape((n,) + kshape)
        else:
            self._maps = None
        if self.phase is not None:          # folded into the maps: S e^{iφ}
            e = np.exp(1j * np.asarray(sp.to_device(self.phase))).astype(np.complex64)
            e = np.broadcast_to(e, lead + self._hr).reshape((n,) + self._hr)
            self._maps = (self._maps * e[:, None] if self._coils else e)
        self._result = np.zeros((n,) + self._hr, np.complex64)
        self._alg = _SliceLoop(self._solve_slice, n)
        super().__init__(self._alg, show_pbar, time.perf_counter() - start)

    def _solve_slice(self, i):
        from .bart import bart

        hr = self._hr
        if self.data_scale == 0:
            return  # y == 0: the minimiser is 0
        k = (self._kspace[i] / self.data_scale).astype(np.complex64)
        pattern = np.ascontiguousarray(self._patterns[i])
        if self._coils:
            k = np.transpose(k, (1, 2, 0))[:, :, None, :]       # BART: (x, y, z, coils)
            sens = np.transpose(self._maps[i], (1, 2, 0))[:, :, None, :]
        elif self._maps is not None:                             # one coil, map e^{iφ}
            sens = self._maps[i]
        else:
            sens = np.ones(hr, np.complex64)
        reg = BART_REGS[self.reg].format(lamda=f"{self.lamda:.8g}")
        real = " -c" if self.constraint else ""
        cmd = f"pics -S -w 1{real} -R {reg} -i {self.max_iter}"
        # pics' modulation-centred FFT flips the sign once per axis of size 2 (mod 4)
        sign = (-1) ** sum(n % 4 == 2 for n in hr)
        out = bart(1, cmd, np.ascontiguousarray(k), np.ascontiguousarray(sens), p=pattern)
        self._result[i] = np.asarray(out).reshape(hr) * (sign * self.data_scale)

    def _image(self):
        x = self._result.reshape(self.A.ishape)
        if self.y.dtype == np.complex128:
            x = x.astype(np.complex128)
        return sp.to_device(x, self.device)


class _SliceLoop(sp.alg.Alg):
    """One update per slice: ``fn(i)`` for ``i = 0 .. n - 1``."""

    def __init__(self, fn, n):
        self.fn = fn
        super().__init__(n)

    def _update(self):
        self.fn(self.iter)
