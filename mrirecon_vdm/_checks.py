"""Input checks with messages that name the object, what it expected and what came."""
import operator
import os

import numpy as np

__all__ = ["check_shape", "check_finite", "check_complex", "check_real", "check_in_range",
           "check_array", "check_measurement", "check_magnitude", "check_seed", "check_output_path",
           "check_fields", "as_shape",
           "differing_keys", "is_int", "MAX_SEED", "MAX_MAGNITUDE"]

#: The largest seed accepted anywhere (torch generators and numpy SeedSequences both take
#: every integer in [0, MAX_SEED]).
MAX_SEED = 2 ** 63 - 1
#: The largest k-space magnitude the solvers take (:func:`check_magnitude`): squares of
#: values up to 1e15 summed over 1e8 entries stay within float32's range (3.4e38).
MAX_MAGNITUDE = 1e15


def is_int(v):
    """Whether ``v`` is a Python or numpy integer (not a bool)."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def differing_keys(a, b):
    """Sorted keys whose values differ between two dicts (a key missing on one side counts)."""
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def as_shape(name, shape, min_ndim=1):
    """A tuple of positive ints, or ``ValueError``.

    Sizes must be integers (Python or numpy): a float such as 128.7 or a string such as
    ``"128"`` is refused rather than truncated.
    """
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__"):
        raise ValueError(f"{name}: expected a sequence of ints, got {shape!r}")
    items, sizes = tuple(shape), []
    for s in items:
        try:
            if isinstance(s, (bool, np.bool_)):
                raise TypeError
            sizes.append(operator.index(s))
        except TypeError:
            raise ValueError(f"{name}: expected a sequence of ints, got {items!r} "
                             f"({s!r} is a {type(s).__name__})") from None
    shape = tuple(sizes)
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
    import sigpy as sp  # here, not at import: training (the prior) runs without SigPy

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


def check_array(name, x):
    """``ValueError`` unless ``x`` is a numeric (bool, int, float or complex) numpy or cupy
    array: a Python list, an object-dtype or a structured array is refused by name."""
    module = type(x).__module__.split(".")[0]
    if module == "torch":
        raise ValueError(f"{name}: expected a numpy or cupy array, got torch.Tensor (convert it "
                         f"with mrirecon_vdm.backend.from_torch, or .numpy() on the CPU)")
    if not hasattr(x, "shape") or not hasattr(x, "dtype") or not hasattr(x, "ndim") \
            or not (isinstance(x, np.ndarray) or module == "cupy"):
        raise ValueError(f"{name}: expected a numpy or cupy array, got {type(x).__name__}"
                         + (" (convert it with numpy.asarray)"
                            if isinstance(x, (list, tuple)) else ""))
    if np.dtype(x.dtype).kind not in "biufc":
        raise ValueError(f"{name}: expected a numeric array (bool, int, float or complex), "
                         f"got dtype {x.dtype}")


def check_measurement(name, y, A, complex_required=True):
    """Checks before any work on a measurement ``y`` of the operator ``A``: ``A`` a SigPy
    Linop (``TypeError``), ``y`` a numeric array of shape ``A.oshape``, complex (k-space:
    a real array is far more often a low-resolution *image* passed by mistake) unless
    ``complex_required`` is False, and finite."""
    import sigpy as sp

    if not isinstance(A, sp.linop.Linop):
        raise TypeError(f"{name}: A must be a sigpy Linop (e.g. CropFourier), got "
                        f"{type(A).__name__}")
    check_array(f"{name} y", y)
    check_shape(f"{name} y (must match A.oshape)", y, A.oshape)
    if complex_required:
        check_complex(f"{name} y (a low-resolution image? use lowres_image_to_kspace)", y)
    check_finite(f"{name} y", y)
    check_magnitude(f"{name} y", y)


def check_magnitude(name, x, limit=None):
    """``ValueError`` when the largest magnitude of ``x`` exceeds ``limit`` (default
    :data:`MAX_MAGNITUDE`): the solvers square and sum k-space values in float32, whose
    range ends at 3.4e38."""
    import sigpy as sp

    limit = MAX_MAGNITUDE if limit is None else float(limit)
    xp = sp.get_device(x).xp
    if x.size == 0:
        return
    peak = float(xp.abs(x).max())
    if peak > limit:
        raise ValueError(f"{name}: the largest magnitude is {peak:.3g}, beyond {limit:.0e}, the "
                         f"intensity range the float32 solvers handle (their squared sums must "
                         f"stay below 3.4e38); divide the data by a constant (the "
                         f"reconstruction scales with it)")


def check_seed(name, seed, allow_none=True, offset=0):
    """``ValueError`` unless ``seed`` is an int in [0, :data:`MAX_SEED`] (or None when
    ``allow_none``); ``offset`` is the largest amount that will be added to it (e.g. a
    slice index)."""
    if seed is None and allow_none:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"{name}: expected an integer seed in [0, {MAX_SEED}], got {seed!r}")
    if not 0 <= int(seed) <= MAX_SEED - int(offset):
        hi = MAX_SEED - int(offset)
        raise ValueError(f"{name}: expected an integer seed in [0, {hi}], got {seed}")
    return int(seed)


def check_output_path(name, path, folder=False):
    """Fail before any work when ``path`` cannot be written.

    A file output (``folder=False``) must not be an existing folder; a folder output must
    not be an existing file; the nearest existing folder on the way (created as needed by
    the writers) must be a writable folder.

    Raises:
        IsADirectoryError: a file output names a folder.
        NotADirectoryError: a folder output, or a folder on the way, is a file.
        PermissionError: the folder is not writable (read-only folder or file system).
    """
    path = os.fspath(path)
    if not path:
        raise ValueError(f"{name}: expected a path, got an empty string")
    if folder:
        if os.path.exists(path) and not os.path.isdir(path):
            raise NotADirectoryError(f"{name} {path}: expected a folder, found a file")
        if os.path.isdir(path):
            if not os.access(path, os.W_OK | os.X_OK):
                raise PermissionError(f"{name} {path}: the folder is not writable")
            return
    elif os.path.isdir(path):
        raise IsADirectoryError(f"{name} {path}: is a folder; expected a file name")
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise NotADirectoryError(f"{name} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"{name} {path}: the folder {parent} is not writable")


def _type_name(t):
    return getattr(t, "__name__", None) or str(t).replace("typing.", "")


def check_fields(obj):
    """Check (and normalise) the fields of a configuration dataclass against their types.

    ``int`` fields take integers (a float such as ``1e4`` only when it is integral, and it
    becomes an int), ``float`` fields numbers (ints included, kept as they are), ``bool``
    fields booleans, ``str`` fields strings, ``Optional[...]`` None as well,
    ``Tuple[int, ...]``/``Tuple[float, float]`` sequences of those. Other fields (nested
    configurations) are left alone. A value of the wrong type raises ``ValueError`` naming
    ``<Class>.<field>``, what it expected and what came (e.g. ``"steps": "ten"`` in a JSON
    file).
    """
    import dataclasses
    import typing

    cls = type(obj)
    hints = typing.get_type_hints(cls)

    def convert(where, t, v):
        origin, args = typing.get_origin(t), typing.get_args(t)
        if origin is typing.Union:
            if v is None and type(None) in args:
                return None
            inner = [a for a in args if a is not type(None)]
            return convert(where, inner[0], v) if len(inner) == 1 else v
        if origin in (tuple, typing.Tuple):
            if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
                raise ValueError(f"{where}: expected a list of {_type_name(args[0])}, got "
                                 f"{v!r}")
            v = list(v)
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(convert(where, args[0], a) for a in v)
            if len(v) != len(args):
                raise ValueError(f"{where}: expected a list of {len(args)} values, got {v!r}")
            return tuple(convert(where, a, b) for a, b in zip(args, v))
        if t is tuple:
            if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
                raise ValueError(f"{where}: expected a list, got {v!r}")
            return tuple(v)
        if t is bool:
            if not isinstance(v, (bool, np.bool_)):
                raise ValueError(f"{where}: expected true or false, got {v!r}")
            return bool(v)
        if t is int:
            if isinstance(v, (bool, np.bool_)):
                raise ValueError(f"{where}: expected an integer, got {v!r}")
            if isinstance(v, (int, np.integer)):
                return int(v)
            if isinstance(v, (float, np.floating)) and float(v).is_integer():
                return int(v)
            raise ValueError(f"{where}: expected an integer, got {v!r}")
        if t is float:
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer,
                                                                     np.floating)):
                raise ValueError(f"{where}: expected a number, got {v!r}")
            return v if isinstance(v, (int, float)) else float(v)
        if t is str:
            if not isinstance(v, str):
                raise ValueError(f"{where}: expected a string, got {v!r}")
            return v
        return v

    for f in dataclasses.fields(cls):
        t = hints.get(f.name)
        if t is None:
            continue
        value = getattr(obj, f.name)
        setattr(obj, f.name, convert(f"{cls.__name__}.{f.name}", t, value))
