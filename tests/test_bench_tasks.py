"""The benchmark's undersampling tasks: simulation, per-slice operators, skipped methods,
task columns, resume, CLI options (tiny images, tiny prior)."""
import json

import numpy as np
import pytest

from mrirecon_vdm.bench import runner
from mrirecon_vdm.bench.tasks import COIL_NOISE, Task, simulate_task
from mrirecon_vdm.linop import FourierSampling, fourier_structure
from toy_images import disc_slices

H = 32


def images(n=2):
    return disc_slices(n, H)


def test_task_checks():
    with pytest.raises(ValueError, match="task must be one of"):
        Task("radial")
    with pytest.raises(ValueError, match="phase must be one of"):
        Task("cartesian", phase="random")
    with pytest.raises(ValueError, match="coils"):
        Task("cartesian", coils=0)
    with pytest.raises(ValueError, match="undersampling tasks"):
        Task("sr", coils=4)


@pytest.mark.parametrize("kind", ["cartesian", "poisson"])
def test_simulate_single_coil(kind):
    xs = images(2)
    task = Task(kind, center_fraction=0.25)
    ops, ys, info = simulate_task(xs, task, 3 if kind == "cartesian" else 4, seed=5)
    assert len(ops) == len(ys) == 2 and info["sigma"] == 0.0
    for A, y, x in zip(ops, ys, xs):
        assert isinstance(A, FourierSampling) and A.maps is None
        np.testing.assert_allclose(A(x), y, atol=1e-5)          # noiseless, no phase
    assert not np.array_equal(ops[0].mask, ops[1].mask)          # a mask per slice
    again = simulate_task(xs, task, 3 if kind == "cartesian" else 4, seed=5)
    np.testing.assert_array_equal(again[1][1], ys[1])            # seeded


def test_simulate_coils_phase_noise():
    xs = images(2)
    task = Task("cartesian", center_fraction=12, coils=4, phase="smooth")
    ops, ys, info = simulate_task(xs, task, 2, seed=0)
    st = fourier_structure(ops[0])
    assert st.maps is not None and st.maps.shape == (4, H, H)
    assert ys[0].shape == (4, H, H)
    # default noise with coils: COIL_NOISE x the largest k-space magnitude, only where sampled
    assert info["sigma"] > 0
    assert info["sigma"] == pytest.approx(
        COIL_NOISE * max(np.abs(y).max() for y in ys), rel=0.2)
    assert np.all(ys[0][:, ~ops[0].mask.astype(bool)] == 0)
    # an explicit sigma=0 is noiseless
    ops0, ys0, info0 = simulate_task(xs, Task("cartesian", center_fraction=12, coils=4,
                                              sigma=0.0), 2, seed=0)
    assert info0["sigma"] == 0.0


def test_benchmark_cartesian(tmp_path):
    from mrirecon_vdm.bench.journal import BenchJournal, fingerprint

    xs = images(2)
    task = Task("cartesian", center_fraction=0.25)
    notes = []
    journal = BenchJournal(tmp_path / "j.jsonl", fingerprint(xs, 1.0, 0.0, 0, task=task))
    rows = runner.benchmark(xs, [3], ["zero-fill", "bicubic", "sigpy-tv"], seed=0,
                            log=notes.append, journal=journal, task=task)
    journal.close()
    assert [r["method"] for r in rows] == ["zero-fill", "sigpy-tv"]
    assert any("skipping bicubic" in n for n in notes)
    for r in rows:
        assert r["task"] == "cartesian" and r["coils"] == 1 and r["phase"] == "none"
        assert r["accel"] == pytest.approx(3, rel=0.1) and r["scale"] == 3
    assert rows[1]["psnr"] > rows[0]["psnr"] - 1.0
    head = json.loads((tmp_path / "j.jsonl").read_text().split("\n")[0])["fingerprint"]
    assert head["task"]["task"] == "cartesian"
    # resume: nothing runs again
    journal = BenchJournal(tmp_path / "j.jsonl", fingerprint(xs, 1.0, 0.0, 0, task=task),
                           resume=True)
    assert journal.resumed == 4
    again = runner.benchmark(xs, [3], ["zero-fill", "sigpy-tv"], seed=0, log=notes.append,
                             journal=journal, task=task)
    journal.close()
    assert [r["psnr"] for r in again] == [r["psnr"] for r in rows]
    # a centre larger than the kept lines is refused before any work
    with pytest.raises(ValueError, match="centre"):
        runner.benchmark(xs, [8], ["zero-fill"], task=Task("cartesian", center_fraction=0.5))


def test_bench_cli_task_options(tmp_path):
    from mrirecon_vdm._cli.bench import main

    data = tmp_path / "slices.npy"
    np.save(data, images(2))
    out = tmp_path / "out"
    assert main(["--data", str(data), "--task", "poisson", "--accel", "4",
                 "--center-fraction", "0.25", "--methods", "zero-fill", "--out", str(out)]) == 0
    result = json.loads((out / "bench.json").read_text())
    assert result["task"]["task"] == "poisson"
    assert result["results"][0]["task"] == "poisson"
    assert "Task: poisson" in (out / "bench.md").read_text()
    assert "task" in (out / "bench.csv").read_text().split("\n")[0]
    # --accel belongs to the undersampling tasks
    assert main(["--data", str(data), "--accel", "4", "--out", str(out)]) == 2
    assert main(["--data", str(data), "--task", "sr", "--coils", "4", "--out", str(out)]) == 2
