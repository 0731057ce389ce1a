"""The learned image prior: a variational diffusion model (VDM) and its training.

Exports :class:`VDM`, :class:`VDMConfig`, :func:`load_pretrained`, :func:`train`,
:class:`TrainConfig`. ``train`` and ``TrainConfig`` load lazily.

References:
    Kingma, D. P., Salimans, T., Poole, B., Ho, J. (2021). Variational Diffusion Models.
    Advances in Neural Information Processing Systems 34 (NeurIPS 2021), 21696–21707.
    arXiv:2107.00630.
"""
import importlib

from .vdm import VDM, VDMConfig, VDMLoss
from .schedule import LearnedGamma, LinearGamma

__all__ = ["VDM", "VDMConfig", "VDMLoss", "LearnedGamma", "LinearGamma", "load_pretrained",
           "export_pretrained", "train", "TrainConfig", "TrainResult"]

_LAZY = {"load_pretrained": "pretrained", "export_pretrained": "pretrained",
         "train": "training", "TrainConfig": "training", "TrainResult": "training"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
