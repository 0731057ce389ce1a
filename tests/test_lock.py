"""One writer per output (mrirecon_vdm._lock): a second writer is refused at once, naming
the output, the lock file and the holder; the lock goes with its holder, even a SIGKILLed
one."""
import os
import signal
import subprocess
import sys

import pytest

from mrirecon_vdm._lock import OutputLocked, exclusive_lock

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOLDER = ("import sys; from mrirecon_vdm._lock import exclusive_lock\n"
          "with exclusive_lock(sys.argv[1], 'test'):\n"
          "    print('held', flush=True); sys.stdin.read()\n")


def test_second_writer_refused_and_lock_removed(tmp_path):
    path = tmp_path / "sub" / "out.npy.lock"
    with exclusive_lock(path, "--out out.npy"):
        assert path.read_text().strip() == str(os.getpid())
        with pytest.raises(OutputLocked, match=r"--out out.npy is being written by another "
                                               r"run \(lock .*out.npy.lock held by process "
                                               rf"{os.getpid()}\); wait"):
            with exclusive_lock(path, "--out out.npy"):
                pass
        assert path.exists()                           # the refused one leaves it alone
    assert not path.exists()
    with exclusive_lock(path, "--out out.npy"):        # free again
        pass
    with pytest.raises(KeyError):                      # released on an exception too
        with exclusive_lock(path, "x"):
            raise KeyError("boom")
    assert not path.exists()


def test_another_process_holds_it_until_it_is_killed(tmp_path):
    path = tmp_path / "train.lock"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": REPO}, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(OutputLocked, match=f"held by process {proc.pid}"):
            with exclusive_lock(path, "training folder"):
                pass
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert path.exists()                # a SIGKILLed holder cannot remove it, but ...
    with exclusive_lock(path, "training folder"):     # ... the kernel dropped its lock
        assert path.read_text().strip() == str(os.getpid())
