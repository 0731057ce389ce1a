"""mrirecon_vdm._atomic: all-or-nothing writes."""
import os

import numpy as np
import pytest

from mrirecon_vdm._atomic import atomic_path, atomic_write_text


def test_atomic_write_replaces_whole_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "sub" / "r.json"
    atomic_write_text(p, "old")
    atomic_write_text(p, "new")
    assert p.read_text() == "new" and os.listdir(p.parent) == ["r.json"]


def test_atomic_path_keeps_the_target_on_failure(tmp_path):
    p = tmp_path / "x.npy"
    np.save(p, np.arange(3))
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_path(p, suffix=".npy") as tmp:
            np.save(tmp, np.arange(5))            # a writer that wants the extension
            assert tmp.endswith(".npy") and os.path.exists(tmp)
            raise RuntimeError("killed mid-write")
    np.testing.assert_array_equal(np.load(p), np.arange(3))
    assert sorted(os.listdir(tmp_path)) == ["x.npy"]
    with atomic_path(p, suffix=".npy") as tmp:
        np.save(tmp, np.arange(5))
    np.testing.assert_array_equal(np.load(p), np.arange(5))
    assert sorted(os.listdir(tmp_path)) == ["x.npy"]


def test_atomic_files_get_the_usual_mode(tmp_path):
    """Not mkstemp's private 0600: shipped weights and results must be readable by others."""
    old = os.umask(0o022)
    try:
        p = tmp_path / "w.json"
        atomic_write_text(p, "{}")
        assert (p.stat().st_mode & 0o777) == 0o644
        os.umask(0o077)
        atomic_write_text(p, "{}")
        assert (p.stat().st_mode & 0o777) == 0o600
    finally:
        os.umask(old)
