"""A killed benchmark goes on with --resume: the journal (mrirecon_vdm.bench.journal), its
fingerprint, torn lines and the per-slice table (classical methods and a registered method
that dies mid-run), through the bench command."""
import csv
import json

import numpy as np
import pytest

from mrirecon_vdm import baselines as B
from mrirecon_vdm._cli import bench
from mrirecon_vdm.bench import journal, registry, runner
from toy_images import disc_slices

H = 16


def slices(n=4):
    return disc_slices(n, H)


class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing on the way catches it."""


@pytest.fixture
def dying_method():
    """``test-dying``: zero-filling that raises Killed on its call number ``die_at``."""
    state = {"calls": 0, "die_at": None}

    def fn(y, A, scale):
        state["calls"] += 1
        if state["calls"] == state["die_at"]:
            raise Killed()
        return B.ZeroFillRecon(y, A).run(), 0

    registry.register_method("test-dying", fn)
    yield state
    del registry.METHODS["test-dying"]


def argv(data, out, *extra):
    return ["--data", str(data), "--scales", "4", "2", "--methods", "zero-fill",
            "test-dying", "--out", str(out), *extra]


def results(out):
    rows = json.loads((out / "bench.json").read_text())["results"]
    return [{k: r[k] for k in ("method", "scale", "psnr", "ssim", "nrmse", "hfen", "nfe",
                               "n_slices")} for r in rows]


def test_resume_after_kill_gives_the_uninterrupted_result(tmp_path, dying_method):
    data = tmp_path / "slices.npy"
    np.save(data, slices(4))
    assert bench.main(argv(data, tmp_path / "full")) == 0
    expected = results(tmp_path / "full")

    # killed on its 6th call: the warm-up and slices 0-3 at 4x, then slice 0 at 2x dies
    dying_method.update(calls=0, die_at=7)
    with pytest.raises(Killed):
        bench.main(argv(data, tmp_path / "run"))
    assert not (tmp_path / "run" / "bench.json").exists()
    lines = (tmp_path / "run" / journal.JOURNAL).read_text().splitlines()
    done = [json.loads(line) for line in lines[1:]]
    assert [(e["method"], e["scale"]) for e in done].count(("test-dying", 4)) == 4
    assert ("test-dying", 2) not in [(e["method"], e["scale"]) for e in done]

    dying_method.update(calls=0, die_at=None)
    assert bench.main(argv(data, tmp_path / "run", "--resume")) == 0
    # only the 2x slices (plus one warm-up) ran again for the dying method
    assert dying_method["calls"] == 1 + 4
    assert results(tmp_path / "run") == expected

    # everything is in the journal now: a second resume runs nothing
    dying_method.update(calls=0)
    assert bench.main(argv(data, tmp_path / "run", "--resume")) == 0
    assert dying_method["calls"] == 0
    assert results(tmp_path / "run") == expected


def test_torn_last_line_is_dropped(tmp_path, dying_method):
    data = tmp_path / "slices.npy"
    np.save(data, slices(3))
    out = tmp_path / "out"
    assert bench.main(argv(data, out)) == 0
    path = out / journal.JOURNAL
    lines = path.read_text().splitlines(keepends=True)
    torn = "".join(lines[:-1]) + lines[-1][:20]          # the kill hit the last write
    path.write_text(torn)
    dying_method.update(calls=0)
    assert bench.main(argv(data, out, "--resume")) == 0
    assert dying_method["calls"] == 2                     # warm-up + the lost slice
    assert all(json.loads(line) for line in path.read_text().splitlines())
    # a broken line in the middle is not a kill: refused
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + "garbage\n" + "".join(lines[1:]))
    assert bench.main(argv(data, out, "--resume")) == 2


def test_resume_refuses_another_run(tmp_path, capsys):
    data = tmp_path / "slices.npy"
    np.save(data, slices(3))
    out = tmp_path / "out"
    base = ["--data", str(data), "--scales", "2", "--methods", "zero-fill", "--out", str(out)]
    assert bench.main(base) == 0
    capsys.readouterr()
    assert bench.main(base + ["--seed", "5", "--sigma", "0.01", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "written for another run" in err and "seed" in err and "sigma" in err
    np.save(data, slices(3)[::-1])                        # other images, same shape
    assert bench.main(base + ["--resume"]) == 2
    assert "images_sha256" in capsys.readouterr().err
    np.save(data, slices(3))
    # a missing journal with --resume simply starts; other methods may be added on resume
    assert bench.main(base + ["--resume", "--out", str(tmp_path / "new")]) == 0
    assert bench.main(base[:-4] + ["--methods", "zero-fill", "bicubic", "--out", str(out),
                                   "--resume"]) == 0


def test_per_slice_table(tmp_path):
    data = tmp_path / "slices.npy"
    np.save(data, slices(3))
    out = tmp_path / "out"
    assert bench.main(["--data", str(data), "--scales", "2", "--methods", "zero-fill",
                       "bicubic", "--out", str(out)]) == 0
    with open(out / "bench_slices.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["method"], r["slice"]) for r in rows] == [
        ("zero-fill", "0"), ("zero-fill", "1"), ("zero-fill", "2"),
        ("bicubic", "0"), ("bicubic", "1"), ("bicubic", "2")]
    summary = json.loads((out / "bench.json").read_text())["results"]
    assert "per_slice" not in summary[0]
    psnr = [float(r["psnr"]) for r in rows if r["method"] == "bicubic"]
    assert summary[1]["psnr"] == pytest.approx(np.mean(psnr))


def test_unknown_method_writes_nothing(tmp_path):
    data = tmp_path / "slices.npy"
    np.save(data, slices(2))
    assert bench.main(["--data", str(data), "--methods", "nope", "--out",
                       str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_entries_with_other_settings_run_again(tmp_path, dying_method, monkeypatch, capsys):
    """A re-tuned classical method (or another prior) does not reuse its old entries."""
    data = tmp_path / "slices.npy"
    np.save(data, slices(3))
    out = tmp_path / "out"
    assert bench.main(argv(data, out)) == 0
    first = results(out)
    real = journal.method_settings
    assert real("sigpy-tv", 4).keys() == {"lamda", "max_iter", "solver"}  # tuned weights
    assert real("bart-tv", 4).keys() == {"lamda", "max_iter"}
    monkeypatch.setattr(runner, "method_settings",
                        lambda m, s, k="sr", o=None: {"v": 2} if m == "test-dying"
                        else real(m, s, k, o))
    dying_method.update(calls=0)
    assert bench.main(argv(data, out, "--resume")) == 0
    assert dying_method["calls"] == 2 * (1 + 3)                   # both factors again
    assert results(out) == first                                  # same method, same numbers
    dying_method.update(calls=0)
    assert bench.main(argv(data, out, "--resume")) == 0           # now up to date
    assert dying_method["calls"] == 0


def test_prior_settings_name_the_weights(tmp_path):
    torch = pytest.importorskip("torch")
    from mrirecon_vdm.bench import vdm_methods as vm
    from mrirecon_vdm.prior import VDM, VDMConfig
    cfg = dict(base_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,),
               norm_groups=4, fourier_exponents=(6,), schedule_features=16)
    torch.manual_seed(0)
    a = VDM(VDMConfig(**cfg)).eval()
    torch.manual_seed(1)
    b = VDM(VDMConfig(**cfg)).eval()
    try:
        vm.set_prior(a)
        sa = journal.method_settings("vdm-fast-10", 4)
        assert sa == journal.method_settings("vdm-mean4", 2) and len(sa["prior_sha256"]) == 64
        vm.set_prior(b)
        assert journal.method_settings("vdm-fast-10", 4) != sa
    finally:
        vm.set_prior(None)


def test_a_nan_metric_in_the_journal_is_refused(tmp_path, dying_method, capsys):
    """Reliability issue, item 4: a NaN metric in a resumed journal was taken and printed as
    nan; the damaged line is named instead (metrics cannot be NaN; PSNR may be +inf)."""
    data = tmp_path / "slices.npy"
    np.save(data, slices(3))
    out = tmp_path / "out"
    assert bench.main(argv(data, out)) == 0
    path = out / journal.JOURNAL
    lines = path.read_text().splitlines()
    for field, value in (("hfen", float("nan")), ("ssim", None), ("seconds", -1.0)):
        entry = json.loads(lines[3])
        entry[field] = value
        path.write_text("\n".join(lines[:3] + [json.dumps(entry)] + lines[4:]) + "\n")
        capsys.readouterr()
        assert bench.main(argv(data, out, "--resume")) == 2
        err = capsys.readouterr().err
        assert f"line 4 ({entry['method']} {entry['scale']}x slice {entry['slice']}) is " \
               f"damaged: {field} is" in err, err
    path.write_text("\n".join(lines) + "\n")
    assert bench.main(argv(data, out, "--resume")) == 0
    entry = json.loads(lines[3])
    assert journal._entry_problem(entry, 3) == ""
    assert journal._entry_problem({**entry, "psnr": float("inf")}, 3) == ""   # exact: fine
    assert "outside" in journal._entry_problem({**entry, "slice": 3}, 3)


def test_registered_settings_make_entries_stale(monkeypatch):
    """A learned method's registered settings (its algorithm version) are part of its
    journal settings: a new version runs its slices again."""
    from mrirecon_vdm.bench import registry
    from mrirecon_vdm.bench.registry import register_method
    try:
        register_method("toy-versioned", lambda y, A, s: A.H(y).real, settings={"v": 1})
        assert journal.method_settings("toy-versioned", 4) == {"v": 1}
        register_method("toy-versioned", lambda y, A, s: A.H(y).real, settings={"v": 2},
                        replace=True)
        assert journal.method_settings("toy-versioned", 4) == {"v": 2}
        register_method("toy-versioned", lambda y, A, s: A.H(y).real, replace=True,
                        settings=lambda opts, kind: {"v": 3} if opts.get("phase") else {})
        assert journal.method_settings("toy-versioned", 4) == {}
        assert journal.method_settings("toy-versioned", 4, opts={"phase": "auto"}) == {"v": 3}
        with pytest.raises(ValueError, match="settings must be a dict, a callable"):
            register_method("toy-bad", lambda y, A, s: y, settings=[1])
    finally:
        registry.METHODS.pop("toy-versioned", None)
    from mrirecon_vdm.bench import vdm_methods  # noqa: F401  (registers vdm-pnp)
    assert registry.METHODS["vdm-pnp"].settings == {"pnp_version": vdm_methods.PNP_VERSION}
    # the guided sampler's version is recorded for every operator (coil maps included),
    # its renoising whenever it is not DDIM's, so that DDIM entries are never reused for
    # fresh renoising
    fresh = {"renoise": "fresh"}
    v2 = {"guided_version": vdm_methods.GUIDED_VERSION, **fresh}
    for name in ("vdm-fast-50", "vdm-mean4"):
        m = registry.METHODS[name]
        assert m.settings_for({"phase": "auto"}, "mask") == v2
        assert m.settings_for({"phase": "auto"}, "sr") == v2
        assert m.settings_for({}, "sense") == v2
        assert m.settings_for({"phase": "auto"}, "sense") == v2
        assert m.settings_for({}, "mask") == v2 and m.settings_for(None) == v2
    monkeypatch.setattr(vdm_methods, "RENOISE", "ddim")
    m = registry.METHODS["vdm-mean4"]
    assert m.settings_for({}, "sense") == m.settings_for({}, "mask") == \
        m.settings_for({"phase": "auto"}, "sr") == {"guided_version": vdm_methods.GUIDED_VERSION}
    assert registry.METHODS["vdm-paper"].settings_for({"phase": "auto"}, "sense") == {}
