"""Array conversions between numpy/cupy and torch, all through DLPack.

Every numpy/cupy <-> torch conversion in the package goes through this module.
On the GPU ``to_torch`` and ``from_torch`` share memory (no copies); on the CPU
numpy and torch share memory as well.
"""
import numpy as np
import sigpy as sp

__all__ = ["get_xp", "to_torch", "from_torch", "torch_device_of", "to_device"]


def get_xp(x):
    """numpy or cupy, whichever module owns ``x``."""
    return sp.get_device(x).xp


def torch_device_of(x):
    """The ``torch.device`` that matches the SigPy device of array ``x``."""
    import torch
    dev = sp.get_device(x)
    if dev.id < 0:
        return torch.device("cpu")
    return torch.device("cuda", dev.id)


def to_torch(x):
    """numpy/cupy array -> torch tensor on the matching device, sharing memory."""
    import torch
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        # from_dlpack needs a contiguous, writeable-agnostic buffer
        return torch.from_dlpack(np.ascontiguousarray(x))
    return torch.from_dlpack(x)  # cupy implements __dlpack__


def from_torch(t, device=None):
    """torch tensor -> numpy (CPU tensor) or cupy (CUDA tensor) array, sharing memory.

    Args:
        t (torch.Tensor): tensor to convert (detached first).
        device (sigpy.Device or int or None): when given, the result is moved there.
    """
    t = t.detach()
    if t.device.type == "cpu":
        out = np.from_dlpack(t.resolve_conj().contiguous())
    else:
        import cupy
        out = cupy.from_dlpack(t.resolve_conj().contiguous())
    if device is not None:
        out = sp.to_device(out, device)
    return out


def to_device(x, device):
    """Move an array to a SigPy device (``-1`` is the CPU)."""
    return sp.to_device(x, device)
