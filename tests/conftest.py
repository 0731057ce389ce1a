"""Suite-wide fixtures."""
import pytest
import torch

from killed import Killed


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small tensors: one torch thread is faster, and much faster on busy cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def kill_at_run(monkeypatch):
    """``kill_at_run(n)``: the n-th ``GuidedVDMRecon.run`` from now on raises
    :class:`Killed` (a job killed half way); the runs before it go through. Returns the
    counter ``{"n": runs so far, "die_at": n}`` (``die_at=None`` disarms it)."""
    from mrirecon_vdm import app as app_mod

    def arm(die_at):
        real_run, calls = app_mod.GuidedVDMRecon.run, {"n": 0, "die_at": die_at}

        def run(self):
            calls["n"] += 1
            if calls["n"] == calls["die_at"]:
                raise Killed()
            return real_run(self)
        monkeypatch.setattr(app_mod.GuidedVDMRecon, "run", run)
        return calls
    return arm
