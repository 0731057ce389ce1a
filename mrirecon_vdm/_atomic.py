"""Atomic file writes: a reader sees the old file or the new one, whole, never a torn one.

Everything that matters (checkpoints, exported priors, data sets, benchmark results,
reconstructions, figures) is written to a temporary file in the target's folder, flushed to
disk and moved over the target with :func:`os.replace`; a kill in between leaves at most a
hidden ``.<name>.*.tmp`` file beside an intact target.
"""
import contextlib
import os
import tempfile

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_path"]


def _fsync_folder(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path beside ``path``; on a clean exit move it over ``path``.

    For writers that want a file name (``savefig``, ``np.save``, ``nibabel.save``, h5py):
    the temporary name is ``.<name>.<random>.tmp`` followed by ``suffix`` when one is given,
    so that writers which pick the format from the extension (or append it, as ``np.save``
    does) see the right one. On an exception the temporary file is removed and ``path`` is
    left as it was.

    Example:
        >>> with atomic_path("out/x.npy", suffix=".npy") as tmp:
        ...     np.save(tmp, x)
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp" + suffix, dir=folder)
    os.close(fd)
    try:
        # mkstemp makes the file private (0600); give it the mode open() would have given
        os.chmod(tmp, 0o666 & ~_umask())
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_folder(folder)


def atomic_write_bytes(path, data):
    """Write ``data`` (bytes) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def atomic_write_text(path, text, encoding="utf-8"):
    """Write ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode(encoding))
