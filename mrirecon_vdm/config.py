"""Optional dependencies, detected once and imported lazily.

The package imports fast and works without cupy or BART. GPU paths are chosen on
``cupy.cuda.is_available()``, not on import success: ``cupy-cuda12x`` imports on a
machine without a GPU and fails at the first array operation.
"""
import functools
import shutil

__all__ = ["cupy_enabled", "bart_available", "require_bart", "torch_cuda_enabled"]

BART_INSTALL_HINT = (
    "BART is needed for this method. Install the binary with `apt-get install bart` "
    "(Debian/Ubuntu) and its Python wrapper with `pip install mrbart` "
    "(or `pip install mrirecon_vdm[bart]`)."
)


@functools.lru_cache(maxsize=None)
def cupy_enabled():
    """True when cupy imports *and* a CUDA device is usable."""
    try:
        import cupy
        return bool(cupy.cuda.is_available())
    except Exception:  # ImportError, CUDA driver errors
        return False


@functools.lru_cache(maxsize=None)
def torch_cuda_enabled():
    """True when torch sees a CUDA device."""
    import torch
    return bool(torch.cuda.is_available())


@functools.lru_cache(maxsize=None)
def bart_available():
    """True when the ``bart`` binary is on PATH and the ``bart`` wrapper imports."""
    if shutil.which("bart") is None:
        return False
    try:
        import bart  # noqa: F401  (PyPI ``mrbart``)
    except ImportError:
        return False
    return True


def require_bart():
    """Raise ``RuntimeError`` with install instructions when BART is missing."""
    if not bart_available():
        raise RuntimeError(BART_INSTALL_HINT)
