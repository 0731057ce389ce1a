"""The method registry: every reconstruction method the benchmark knows, by name.

A method is a function ``fn(y, A, scale, **opts)`` that reconstructs the real HR magnitude
image from the low-resolution k-space ``y`` (a :class:`~mrirecon_vdm.bench.registry.Method`
holds it with its network evaluations per slice and whether it needs BART). Importing this
module registers the classical baselines (the Apps of :mod:`mrirecon_vdm.baselines`), in
this order:

=======================  ==============================================  ==========
name                     what                                            needs BART
=======================  ==============================================  ==========
``zero-fill``            :math:`|A^H y|`, zero-padded k-space
``bicubic``              cubic-spline interpolation of the LR magnitude
                         image
``sigpy-wavelet``        SigPy L1-wavelet (db4), FISTA
``sigpy-tv``             SigPy anisotropic TV, PDHG
``bart-wavelet``         BART pics L1-wavelet, FISTA                     yes
``bart-tv``              BART pics anisotropic TV, ADMM                  yes
``sigpy-wavelet-real``   the same four on a real image (SigPy through
``sigpy-tv-real``        ``A * RealToComplex``, BART ``pics -c``)        BART ones
``bart-wavelet-real``
``bart-tv-real``
``sigpy-wavelet-phase``  the same four on a real image times the phase   BART ones
``sigpy-tv-phase``       estimated as the VDM methods estimate it
``bart-wavelet-phase``   (``phase="auto"``; BART: ``pics -c``, the phase
``bart-tv-phase``        folded into the maps)
=======================  ==============================================  ==========

The ``-real`` methods run on the tasks whose VDM methods reconstruct a real image (one coil,
no phase), the ``-phase`` ones where they estimate a phase (a phase, or coil maps):
:attr:`Method.constraint` against :attr:`mrirecon_vdm.bench.tasks.Task.constraint`.

The VDM samplers are registered by :mod:`mrirecon_vdm.bench.vdm_methods`; more methods by
any module that calls :func:`register_method` (``mrirecon-vdm bench --plugin MODULE``).
The old names ``mrirecon_vdm.baselines.METHODS``, ``register_method``, ``reconstruct`` and
``Method`` still work: they are these objects.

Example:
    >>> from mrirecon_vdm.bench.registry import METHODS, reconstruct
    >>> x, nfe = reconstruct("sigpy-tv", y, A, 4)
"""
import dataclasses

from ..baselines import (CONSTRAINTS, BartPicsRecon, BicubicRecon, L1WaveletRecon, TVRecon,
                         ZeroFillRecon)

__all__ = ["Method", "METHODS", "register_method", "reconstruct"]


@dataclasses.dataclass(frozen=True)
class Method:
    """A reconstruction method as the benchmark sees it.

    Attributes:
        name (str): short lowercase name (``zero-fill``, ``sigpy-tv``, ``vdm-...``).
        fn (callable): ``fn(y, A, scale, **opts)`` -> the real HR magnitude image, or a tuple
            ``(image, nfe)`` when the number of network evaluations depends on ``opts``.
            ``y``: complex k-space of shape ``A.oshape``; ``A``: a ``CropFourier`` or, for
            the undersampling tasks, a ``FourierSampling`` (mask, optional coil maps);
            ``scale``: the integer super-resolution factor or acceleration R.
        nfe (int): network function evaluations per slice (0 for classical methods).
        requires_bart (bool): skip (with a note) when BART is not installed.
        description (str): one line for ``--help`` and the docs.
        needs_crop (bool): the method only applies to centre-crop super-resolution (it is
            skipped, with a note, on the undersampling tasks).
        settings (dict, callable or None): JSON-able defaults the results depend on (a
            learned method's algorithm version and options); recorded in the benchmark
            journal, so entries made with other settings are run again on resume. A callable
            ``settings(opts, kind)`` takes the options the benchmark passes to the method
            (``{"phase": "auto"}`` on a task with a phase, else ``{}``) and the operator kind
            (:func:`mrirecon_vdm.baselines.operator_kind`: ``"sr"``, ``"mask"``,
            ``"sense"``) and returns the dict: for a change that only matters on some tasks.
        constraint (str or None): the image model a classical method is built on: None (a
            complex image, every task), ``"real"`` (a real image: the tasks without a phase
            and with one coil) or ``"phase"`` (a real image times the estimated phase: the
            tasks with a phase or coil maps), skipped with a note elsewhere
            (:attr:`mrirecon_vdm.bench.tasks.Task.constraint`).
    """

    name: str
    fn: object
    nfe: int = 0
    requires_bart: bool = False
    description: str = ""
    needs_crop: bool = False
    settings: object = None
    constraint: str = None

    def settings_for(self, opts=None, kind="sr"):
        """The settings dict for a run with ``opts`` on an operator of ``kind`` (``{}``
        without settings)."""
        if self.settings is None:
            return {}
        out = (self.settings(dict(opts or {}), kind) if callable(self.settings)
               else self.settings)
        return dict(out or {})


#: The registry: name -> :class:`Method`, in registration order. Add methods with
#: :func:`register_method` (e.g. the VDM samplers, from their own module).
METHODS = {}


def register_method(name, fn, nfe=0, requires_bart=False, description="", replace=False,
                    needs_crop=False, settings=None, constraint=None):
    """Add a method to :data:`METHODS` (``ValueError`` on a taken name unless ``replace``).

    Example:
        >>> def my_recon(y, A, scale, num_steps=50):
        ...     return GuidedVDMRecon(y, A, num_steps=num_steps).run(), num_steps
        >>> register_method("vdm-ddim50", my_recon, nfe=50)
    """
    if not isinstance(name, str) or not name or name != name.lower() or " " in name:
        raise ValueError(f"register_method: name must be a short lowercase string without "
                         f"spaces, got {name!r}")
    if not callable(fn):
        raise ValueError(f"register_method: fn must be callable, got {type(fn).__name__}")
    if name in METHODS and not replace:
        raise ValueError(f"register_method: {name!r} is already registered "
                         "(pass replace=True to replace it)")
    if settings is not None and not isinstance(settings, dict) and not callable(settings):
        raise ValueError(f"register_method: settings must be a dict, a callable or None, "
                         f"got {type(settings).__name__}")
    if constraint is not None and constraint not in CONSTRAINTS:
        raise ValueError(f"register_method: constraint must be None or one of "
                         f"{', '.join(CONSTRAINTS)}, got {constraint!r}")
    METHODS[name] = Method(name, fn, int(nfe), bool(requires_bart), description,
                           bool(needs_crop),
                           dict(settings) if isinstance(settings, dict) else settings,
                           constraint)
    return METHODS[name]


def reconstruct(name, y, A, scale, **opts):
    """Run the registered method ``name``; returns ``(image, nfe)``.

    Raises:
        ValueError: ``name`` is not registered (the message lists the registered names).
    """
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; registered: {', '.join(METHODS)}")
    method = METHODS[name]
    out = method.fn(y, A, scale, **opts)
    if isinstance(out, tuple):
        image, nfe = out
        return image, int(nfe)
    return out, method.nfe


def _app_runner(factory):
    def fn(y, A, scale, **opts):
        return factory(y, A, scale, **opts).run()
    return fn


# --------------------------------------------------------------------------- classical methods
register_method("zero-fill", _app_runner(lambda y, A, s, **o: ZeroFillRecon(y, A, **o)),
                description="|A^H y|, zero-padded k-space")
register_method("bicubic", _app_runner(lambda y, A, s, **o: BicubicRecon(y, A, **o)),
                description="cubic-spline interpolation of the LR magnitude image",
                needs_crop=True)
register_method("sigpy-wavelet", _app_runner(lambda y, A, s, **o: L1WaveletRecon(y, A, **o)),
                description="SigPy L1-wavelet (db4), FISTA")
register_method("sigpy-tv", _app_runner(lambda y, A, s, **o: TVRecon(y, A, **o)),
                description="SigPy anisotropic TV, PDHG")
register_method("bart-wavelet",
                _app_runner(lambda y, A, s, **o: BartPicsRecon(y, A, "wavelet", **o)),
                requires_bart=True, description="BART pics L1-wavelet, FISTA")
register_method("bart-tv", _app_runner(lambda y, A, s, **o: BartPicsRecon(y, A, "tv", **o)),
                requires_bart=True, description="BART pics anisotropic TV, ADMM")

# the same four on the VDM methods' image models: a real image ("-real", phase "none") and a
# real image times the estimated phase ("-phase", phase "auto")
_PHASE = {"real": "none", "phase": "auto"}
_WHAT = {"real": "real image", "phase": "real image x estimated phase"}
for _c in CONSTRAINTS:
    register_method(f"sigpy-wavelet-{_c}", _app_runner(
        lambda y, A, s, _p=_PHASE[_c], **o: L1WaveletRecon(y, A, real=True, phase=_p, **o)),
        description=f"SigPy L1-wavelet (db4), FISTA, {_WHAT[_c]}", constraint=_c)
    register_method(f"sigpy-tv-{_c}", _app_runner(
        lambda y, A, s, _p=_PHASE[_c], **o: TVRecon(y, A, real=True, phase=_p, **o)),
        description=f"SigPy anisotropic TV, PDHG, {_WHAT[_c]}", constraint=_c)
    for _reg, _alg in (("wavelet", "L1-wavelet, FISTA"), ("tv", "anisotropic TV, ADMM")):
        register_method(f"bart-{_reg}-{_c}", _app_runner(
            lambda y, A, s, _r=_reg, _p=_PHASE[_c], **o: BartPicsRecon(y, A, _r, real=True,
                                                                      phase=_p, **o)),
            requires_bart=True, description=f"BART pics -c {_alg}, {_WHAT[_c]}",
            constraint=_c)
