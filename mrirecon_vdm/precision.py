"""Numerical precision of the network: bfloat16 autocast only where the device runs it fast.

Imports torch only (no SigPy), so training on a machine without SigPy can use it.
"""
import numpy as np

__all__ = ["fast_bf16", "use_bf16"]


def fast_bf16(torch_device):
    """Whether bfloat16 autocast is fast on ``torch_device`` (a ``torch.device`` or its type).

    CUDA: when the GPU supports bfloat16. CPU: when oneDNN has bfloat16 kernels for it
    (x86 with AVX-512 BW/VL/DQ, or ARM with bf16). Elsewhere, e.g. an AVX2-only x86 CPU,
    torch runs bfloat16 convolutions on a reference path: measured here, one 128 × 128
    forward pass of the shipped prior took 57 s under bfloat16 autocast against 0.47 s in
    float32 (one thread, AMD EPYC with AVX2 only).
    """
    kind = getattr(torch_device, "type", str(torch_device)).split(":")[0]
    return _fast_bf16(kind)


_FAST_BF16 = {}


def _fast_bf16(kind):
    if kind not in _FAST_BF16:
        import torch
        ok = False
        if kind == "cuda":
            ok = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
        elif kind == "cpu":
            try:
                ok = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
            except (AttributeError, RuntimeError):
                ok = torch.backends.cpu.get_cpu_capability() in ("AVX512",)
        _FAST_BF16[kind] = ok
    return _FAST_BF16[kind]


def use_bf16(bf16, torch_device, name="bf16"):
    """The effective bfloat16 choice for a ``bf16`` option: True where it is fast on
    ``torch_device`` (:func:`fast_bf16`), else float32; False: always float32.

    Raises:
        ValueError: ``bf16`` is not a bool.
    """
    if not isinstance(bf16, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {bf16!r}")
    return bool(bf16) and fast_bf16(torch_device)
