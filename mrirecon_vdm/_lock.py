"""One writer per output: an exclusive ``fcntl.flock`` on a lock file (Linux, macOS).

``recon`` locks ``<out>.lock`` beside its output (its ``<out>.partial/`` progress folder
included), ``train`` locks ``<out_dir>/train.lock`` and ``bench`` ``<out>/bench.lock``, for
as long as they run. A second process that wants the same output is refused at once with
:class:`OutputLocked`, naming the output, the lock file and the process that holds it, instead
of both running and the last one silently winning. The lock file holds the holder's process
id and is removed on release; the kernel drops the lock when its holder dies (even by
SIGKILL), so a file left behind by a killed run does not block the next one.
"""
import contextlib
import fcntl
import os

__all__ = ["OutputLocked", "exclusive_lock"]


class OutputLocked(RuntimeError):
    """Another process is writing the same output (it holds the output's lock)."""


def _holder(fd):
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 64).decode("ascii", "replace").strip()
    except OSError:
        return None
    return text if text.isdigit() else None


@contextlib.contextmanager
def exclusive_lock(path, what, hint="wait for it to finish or choose another output"):
    """Hold an exclusive lock on ``path`` (created, with its folder, if needed) for the block.

    Args:
        path (path-like): the lock file.
        what (str): the output it protects, for the message (e.g. ``"--out out.nii"``).
        hint (str): what the refused user can do.

    Raises:
        OutputLocked: another process (or another open of it in this process) holds it.
    """
    path = os.path.abspath(os.fspath(path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder(fd)
            os.close(fd)
            by = f" by process {pid}" if pid else ""
            raise OutputLocked(f"{what} is being written by another run (lock {path} held"
                               f"{by}); {hint}") from None
        except BaseException:
            os.close(fd)
            raise
        # the previous holder may have removed the file between our open and our lock: the
        # lock only counts when it is on the file that is at ``path`` now
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        if current is not None and os.path.samestat(os.fstat(fd), current):
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        try:
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                os.unlink(path)          # still ours: remove it before letting go
        except OSError:
            pass
        os.close(fd)
