"""mrirecon_vdm: MR image super-resolution with a k-space-guided Variational Diffusion Model.

The package imports fast: heavy modules (torch, the prior, BART) load on first use.

Main entry points:
    * operators: :class:`CropFourier`, :func:`simulate_lowres`, :class:`GaussianNoise`;
    * classical baselines: :class:`ZeroFillRecon`, :class:`BicubicRecon`,
      :class:`L1WaveletRecon`, :class:`TVRecon`, :class:`BartPicsRecon`;
    * the learned prior: :class:`VDM`, :func:`load_pretrained`;
    * the method: :class:`GuidedVDMRecon` (App) and :class:`GuidedVDM` (Alg), and
      :func:`reconstruct_volume` (a stack of slices, a few at a time, resumable);
    * the benchmark engine: :mod:`mrirecon_vdm.bench` (method registry, runner,
      journal, tables).
"""
import importlib

__version__ = "0.1.0"

_LAZY = {
    "CropFourier": "linop",
    "ZeroFillIFFT": "linop",
    "lowres_image_to_kspace": "linop",
    "kspace_to_lowres_image": "linop",
    "zero_filled": "linop",
    "GaussianNoise": "noise",
    "simulate_lowres": "noise",
    "ZeroFillRecon": "baselines",
    "BicubicRecon": "baselines",
    "L1WaveletRecon": "baselines",
    "TVRecon": "baselines",
    "BartPicsRecon": "baselines",
    "VDM": "prior",
    "VDMConfig": "prior",
    "load_pretrained": "prior",
    "train": "prior",
    "TrainConfig": "prior",
    "GuidedVDM": "alg",
    "GuidedVDMRecon": "app",
    "reconstruct_volume": "volume",
}

__all__ = sorted(_LAZY) + ["metrics", "__version__"]


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    if name in ("metrics", "linop", "noise", "baselines", "prior", "alg", "app", "data", "bart",
                "backend", "config", "volume", "bench"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
