"""The VDM samplers as benchmark methods (``mrirecon-vdm bench``).

Importing this module registers, in :data:`mrirecon_vdm.bench.registry.METHODS`:

=================  ======================================================  ==============
name               what                                                    NFE per slice
=================  ======================================================  ==============
``vdm-paper``      the abstract's sampler, 1000 uniform steps, λ = 1       1000
``vdm-fast-N``     the fast sampler (x̂₀ data consistency), N steps         N (10, 25, 50, 100)
``vdm-mean4``      mean of 4 fast-sampler samples (50 steps, one batch)    4 × 50 = 200
``vdm-mean8``      mean of 8 fast-sampler samples (50 steps, one batch)    8 × 50 = 400
``vdm-pnp``        plug-and-play: the VDM denoiser with an exact data     30
                   step, DPIR schedule (:mod:`mrirecon_vdm.pnp`)
=================  ======================================================  ==============

Also importable by its old name ``mrirecon_vdm.vdm_methods`` (the same module object).

**NFE convention.** One network evaluation is one *image* through the network: a mean of K
samples drawn in the same batched calls costs K × steps (``GuidedVDMRecon.nfe``), although
the network is called only ``steps`` times (``GuidedVDMRecon.network_calls``). This is the figure to compare with the
single-sample methods; the wall-clock ``seconds_per_slice`` of the benchmark shows what
batching saves.

**The prior** is loaded once and cached: :func:`set_prior` (a prior object or a path), else
the environment variable ``MRIRECON_VDM_PRIOR`` (a folder or ``prior.safetensors`` written
by :func:`mrirecon_vdm.prior.export_pretrained`), else the shipped weights
(:func:`mrirecon_vdm.load_pretrained`).

**Reproducibility.** Each reconstruction is seeded from the measurement itself (a hash of
``y``'s bytes, combined with :data:`BASE_SEED`): the same slice always gets the same noise,
different slices get different noise, whatever order or subset the benchmark runs. Pass
``seed=`` to override.

**Speed.** The network runs under bfloat16 autocast (:data:`BF16`, env
``MRIRECON_VDM_BF16=0`` to switch it off) where the CPU or GPU runs it fast: on AVX-512
CPUs it is about 2× faster than float32 at the same PSNR (measured, ``docs/benchmarks.md``);
an AVX2-only CPU runs float32 (:func:`mrirecon_vdm.precision.fast_bf16`). Torch runs with
:data:`THREADS` intra-op threads (env ``MRIRECON_VDM_THREADS``, default 1; 0 leaves torch's default): on a
2-core machine that is busy with anything else, two threads made one 128 × 128 forward pass
40× slower (2.6 s against 65 ms).

Example:
    >>> import mrirecon_vdm.bench.vdm_methods as vm
    >>> vm.set_prior("/tmp/prior_snapshot")
    >>> from mrirecon_vdm.bench import reconstruct
    >>> x, nfe = reconstruct("vdm-fast-25", y, A, 4)
"""
import hashlib
import os

import numpy as np
import sigpy as sp

from .registry import register_method

__all__ = ["set_prior", "get_prior", "vdm_recon", "pnp_recon", "slice_seed", "PRIOR_ENV",
           "BASE_SEED", "BF16", "THREADS", "FAST_STEPS", "MEAN_SAMPLES", "PAPER_STEPS",
           "PNP_STEPS", "PNP_VERSION", "GUIDED_VERSION", "VDM_METHODS", "RENOISE"]

#: Environment variable naming an exported prior (folder or ``prior.safetensors``).
PRIOR_ENV = "MRIRECON_VDM_PRIOR"
#: Combined with the hash of each measurement to seed its reconstruction.
BASE_SEED = 0
#: bfloat16 autocast for the network (``MRIRECON_VDM_BF16=0`` switches it off).
BF16 = os.environ.get("MRIRECON_VDM_BF16", "1") not in ("0", "false", "no", "")
#: torch intra-op threads set before each reconstruction (0: leave torch's setting).
THREADS = int(os.environ.get("MRIRECON_VDM_THREADS", "1"))
#: Renoising of the fast-sampler methods (``GuidedVDMRecon(renoise=...)``; env
#: ``MRIRECON_VDM_RENOISE``, default the sampler's own, ``"fresh"``: to compare the two on
#: the same slices). Recorded in the journal settings when it is not ``"ddim"``, so a resumed
#: run never mixes the two (an entry without the field is a DDIM one).
RENOISE = os.environ.get("MRIRECON_VDM_RENOISE") or None
#: Steps of the paper's sampler.
PAPER_STEPS = 1000
#: Steps of the registered fast-sampler variants.
FAST_STEPS = (10, 25, 50, 100)
#: Samples averaged by the registered posterior-mean variants (fast sampler, 50 steps).
MEAN_SAMPLES = (4, 8)
#: Steps of the fast sampler inside the posterior means (its default).
MEAN_STEPS = 50

_cache = {"prior": None, "source": None}


# --------------------------------------------------------------------------- the prior
def set_prior(prior_or_path):
    """Use this prior for every VDM method from now on.

    Args:
        prior_or_path: an object with the prior protocol (``docs/architecture.md``, e.g. a
            :class:`mrirecon_vdm.prior.VDM` or a
            :class:`mrirecon_vdm.gaussian_prior.GaussianPrior`), a path to an exported prior
            (folder or ``prior.safetensors``), or None to go back to the default (env
            variable, then the shipped weights), loaded on next use.
    """
    if prior_or_path is None:
        _cache.update(prior=None, source=None)
    elif isinstance(prior_or_path, (str, os.PathLike)):
        from ..prior.pretrained import load_pretrained
        _cache.update(prior=load_pretrained(path=prior_or_path), source=str(prior_or_path))
    else:
        for name in ("gamma", "predict_eps", "image_channels", "downsample_factor"):
            if not hasattr(prior_or_path, name):
                raise ValueError(f"set_prior: expected a path or an object with the prior "
                                 f"protocol, got {type(prior_or_path).__name__} without "
                                 f"{name!r}")
        _cache.update(prior=prior_or_path, source=type(prior_or_path).__name__)


def get_prior():
    """The cached prior, loading it on first use (see :func:`set_prior`)."""
    if _cache["prior"] is None:
        from ..prior.pretrained import load_pretrained
        path = os.environ.get(PRIOR_ENV) or None
        _cache.update(prior=load_pretrained(path=path),
                      source=path if path else "shipped weights")
    return _cache["prior"]


def prior_source():
    """Where the cached prior came from (str), or None before it is loaded."""
    return _cache["source"]


# --------------------------------------------------------------------------- the methods
def slice_seed(y, base=BASE_SEED):
    """A seed determined by the measurement: 31 bits of SHA-256 of ``y``'s bytes, + base."""
    data = np.ascontiguousarray(sp.to_device(y, sp.cpu_device))
    digest = hashlib.sha256(data.tobytes()).digest()
    return (int.from_bytes(digest[:4], "little") & 0x7FFFFFFF) ^ int(base)


def vdm_recon(y, A, scale=None, sampler="fast", num_steps=None, num_samples=1, lamda=1.0,
              seed=None, bf16=None, **opts):
    """One guided-VDM reconstruction with the cached prior; returns ``(image, nfe, app)``.

    Args:
        y (array): complex k-space, ``A.oshape``.
        A (CropFourier): the forward operator.
        scale: the super-resolution factor (unused: the sampler needs no tuning per factor).
        sampler, num_steps, num_samples, lamda: see :class:`mrirecon_vdm.GuidedVDMRecon`.
        seed (int or None): None: :func:`slice_seed` of ``y``.
        bf16 (bool or None): None: :data:`BF16`.
        **opts: more :class:`~mrirecon_vdm.GuidedVDMRecon` options.

    Returns:
        tuple: the posterior-mean image (``A.ishape``, real), the network evaluations per
        image counted per sample (``num_samples × steps``) and the App (``.std``, ...).
    """
    from ..app import GuidedVDMRecon

    if THREADS > 0:
        import torch
        if torch.get_num_threads() != THREADS:
            torch.set_num_threads(THREADS)
    seed = slice_seed(y) if seed is None else seed
    bf16 = BF16 if bf16 is None else bf16
    app = GuidedVDMRecon(y, A, get_prior(), lamda=lamda, num_steps=num_steps,
                         sampler=sampler, num_samples=num_samples, seed=seed, bf16=bf16,
                         show_pbar=False, **opts)
    x = app.run()
    return x, int(app.nfe), app


def _renoise():
    """The renoising of the fast-sampler methods: :data:`RENOISE`, else the sampler's
    default (:data:`mrirecon_vdm.alg.DEFAULT_RENOISE`)."""
    from ..alg import DEFAULT_RENOISE
    return RENOISE or DEFAULT_RENOISE


def _method(**fixed):
    def fn(y, A, scale, **opts):
        if fixed.get("sampler") == "fast":
            opts = {"renoise": _renoise(), **opts}
        x, nfe, _ = vdm_recon(y, A, scale, **{**fixed, **opts})
        return x, nfe
    return fn


#: name -> (GuidedVDMRecon options, NFE per slice, description)
VDM_METHODS = {"vdm-paper": (dict(sampler="paper", num_steps=PAPER_STEPS, lamda=1.0),
                             PAPER_STEPS,
                             f"guided VDM, the paper's sampler, {PAPER_STEPS} steps, lamda=1")}
for _n in FAST_STEPS:
    VDM_METHODS[f"vdm-fast-{_n}"] = (dict(sampler="fast", num_steps=_n), _n,
                                     f"guided VDM, fast sampler, {_n} steps")
for _k in MEAN_SAMPLES:
    VDM_METHODS[f"vdm-mean{_k}"] = (
        dict(sampler="fast", num_steps=MEAN_STEPS, num_samples=_k), _k * MEAN_STEPS,
        f"guided VDM, mean of {_k} fast-sampler samples ({MEAN_STEPS} steps, one batch)")

#: Version of the fast guided sampler's defaults, recorded in the journal settings of every
#: fast-sampler method, so that ``bench --resume`` runs an entry of another version again
#: instead of reusing it. Version 8 is the current set: σ̂ from the measured pairs (k, −k) for
#: one coil without a phase (:func:`mrirecon_vdm.noise.estimate_sigma`), from the smallest
#: of the calibration misfit, its band (:data:`mrirecon_vdm.noise.CALIBRATION_BAND`) and the
#: high-pass bound (:func:`mrirecon_vdm.noise.highpass_sigma`) for one coil with a phase; the
#: phase refined at every :data:`mrirecon_vdm.app.PHASE_REFINE_EVERY`-th step, σ re-estimated
#: at every :data:`mrirecon_vdm.app.PHASE_SIGMA_EVERY`-th refinement and
#: :data:`mrirecon_vdm.app.PHASE_CG_ITER` CG iterations per data step with a phase; the floor
#: :data:`mrirecon_vdm.alg.DEFAULT_DC_VARIANCE_FLOOR` of the variance attached to x̂₀. Raise
#: it whenever a default that changes these results changes.
GUIDED_VERSION = 8


def _guided_settings(opts, kind):
    out = {"guided_version": GUIDED_VERSION}
    if _renoise() != "ddim":
        out["renoise"] = _renoise()
    return out


for _name, (_opts, _nfe, _desc) in VDM_METHODS.items():
    register_method(_name, _method(**_opts), nfe=_nfe, description=_desc, replace=True,
                    settings=_guided_settings if _opts["sampler"] == "fast" else None)


def pnp_recon(y, A, scale=None, num_steps=None, bf16=None, **opts):
    """Plug-and-play with the cached prior (:class:`mrirecon_vdm.pnp.PnPVDMRecon`);
    returns ``(image, nfe, app)``. ``opts``: more PnPVDMRecon options (``phase``, ...)."""
    from ..pnp import PnPVDMRecon

    if THREADS > 0:
        import torch
        if torch.get_num_threads() != THREADS:
            torch.set_num_threads(THREADS)
    bf16 = BF16 if bf16 is None else bf16
    app = PnPVDMRecon(y, A, get_prior(), num_steps=num_steps, bf16=bf16, show_pbar=False,
                      **opts)
    x = app.run()
    return x, int(app.nfe), app


def _pnp(y, A, scale, **opts):
    x, nfe, _ = pnp_recon(y, A, scale, **opts)
    return x, nfe


#: Iterations (= network evaluations) of the registered plug-and-play method.
PNP_STEPS = 30
#: Version of the plug-and-play algorithm, recorded in the journal settings of ``vdm-pnp``
#: (``bench --resume`` runs an entry of another version again). Version 12 is the current
#: algorithm: the exact data step (``data_step="auto"``), the noise floor ρσ² with c = 16 (8
#: with coil maps), σ̂ as the guided sampler's (:func:`mrirecon_vdm.noise.estimate_sigma`),
#: an estimated phase refined at every :data:`mrirecon_vdm.pnp.PHASE_REFINE_EVERY`-th step
#: with :data:`mrirecon_vdm.pnp.PHASE_CG_ITER` CG iterations, the coil-map defaults
#: (:data:`mrirecon_vdm.pnp.DEFAULT_PNP_COILS`) and the final data step
#: (:data:`mrirecon_vdm.pnp.FINAL_STEP_VARIANCE`). Raise it whenever a default that changes
#: these results changes.
PNP_VERSION = 12
register_method("vdm-pnp", _pnp, nfe=PNP_STEPS, replace=True,
                description=f"VDM denoiser with an exact data step (plug-and-play, "
                            f"half-quadratic splitting, DPIR schedule), {PNP_STEPS} steps "
                            f"(45 with coil maps)",
                settings={"pnp_version": PNP_VERSION})
