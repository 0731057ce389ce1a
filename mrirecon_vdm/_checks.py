"""Input checks with messages that name the object, what it expected and what came."""
import numpy as np
import sigpy as sp

__all__ = ["check_shape", "check_finite", "check_complex", "check_real", "check_in_range",
           "as_shape", "differing_keys"]


def differing_keys(a, b):
    """Sorted keys whose values differ between two dicts (a key missing on one side counts)."""
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def as_shape(name, shape, min_ndim=1):
    """A tuple of positive ints, or ``ValueError``."""
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise ValueError(f"{name}: expected a sequence of ints, got {shape!r}") from None
    if len(shape) < min_ndim or any(s < 1 for s in shape):
        raise ValueError(f"{name}: expected at least {min_ndim} positive sizes, got {shape}")
    return shape


def check_shape(name, x, expected):
    """Exact shape check, rank included (SigPy's zip-based check lets a rank mismatch by)."""
    expected = tuple(expected)
    if tuple(x.shape) != expected:
        raise ValueError(f"{name}: expected an array of shape {expected}, got shape {tuple(x.shape)}")


def check_finite(name, x):
    """Raise ``ValueError`` when ``x`` holds NaN or Inf."""
    xp = sp.get_device(x).xp
    if not bool(xp.all(xp.isfinite(x))):
        n = int(xp.sum(~xp.isfinite(x)))
        raise ValueError(f"{name}: expected finite values, got {n} NaN/Inf entries")


def check_complex(name, x):
    if not np.iscomplexobj(x):
        raise ValueError(f"{name}: expected complex k-space data, got real dtype {x.dtype}")


def check_real(name, x):
    if np.iscomplexobj(x):
        raise ValueError(f"{name}: expected a real (magnitude) image, got complex dtype {x.dtype}")


def check_in_range(name, value, lo, hi):
    if not (lo <= value <= hi):
        raise ValueError(f"{name}: expected a value in [{lo}, {hi}], got {value!r}")
