"""The bench command (mrirecon_vdm._cli.bench): outputs, options, errors, the subcommand."""
import json

import numpy as np
import pytest

from test_baselines import phantom  # noqa: F401  (a fixture)


def test_bench_command(tmp_path, phantom):  # noqa: F811
    from mrirecon_vdm._cli.bench import main

    data = tmp_path / "slices.npy"
    np.save(data, np.stack([phantom, phantom.T, phantom[::-1]]))
    out = tmp_path / "out"
    rc = main(["--data", str(data), "--limit", "2", "--scales", "4", "2", "--methods",
               "zero-fill", "bicubic", "sigpy-tv", "--out", str(out), "--sigma", "0.01"])
    assert rc == 0
    result = json.loads((out / "bench.json").read_text())
    rows = result["results"]
    assert [(r["method"], r["scale"]) for r in rows] == [
        ("zero-fill", 4), ("bicubic", 4), ("sigpy-tv", 4),
        ("zero-fill", 2), ("bicubic", 2), ("sigpy-tv", 2)]
    for r in rows:
        for key in ("psnr", "psnr_std", "ssim", "nrmse", "hfen", "seconds_per_slice", "nfe"):
            assert np.isfinite(r[key])
        assert r["n_slices"] == 2
    assert result["data_range"] == pytest.approx(float(phantom.max()))
    assert "| sigpy-tv | 2× |" in (out / "bench.md").read_text()
    assert (out / "bench.csv").read_text().startswith("method,scale,psnr")
    # bad options fail with a message, not a traceback
    assert main(["--data", str(data), "--methods", "nope", "--out", str(out)]) == 2
    assert main(["--data", str(data), "--scales", "3", "--out", str(out)]) == 2


def test_cli_registers_bench():
    import argparse

    from mrirecon_vdm._cli import bench

    parser = argparse.ArgumentParser()
    bench.register(parser.add_subparsers())
    args = parser.parse_args(["bench", "--limit", "3", "--methods", "zero-fill"])
    assert args.func is bench.run and args.limit == 3 and args.scales == [4, 2]


def test_every_factor_size_and_method_is_checked_before_the_first_method(tmp_path):
    """``--scales 2 3`` is refused (3 does not divide 18) before any method runs, and so is a
    --json path that is a folder."""
    from mrirecon_vdm._cli.bench import main
    from mrirecon_vdm.bench import registry, vdm_methods
    calls = []

    def counted(y, A, scale):
        calls.append(scale)
        return np.abs(A.H(y)), 0
    registry.register_method("test-counted", counted)
    try:
        data = tmp_path / "slices.npy"
        np.save(data, np.random.default_rng(0).random((2, 18, 18)).astype(np.float32))
        out = tmp_path / "out"
        assert main(["--data", str(data), "--scales", "2", "3", "4", "--methods",
                     "test-counted", "--out", str(out)]) == 2
        assert calls == [] and not (out / "bench.journal.jsonl").exists()
        assert main(["--data", str(data), "--scales", "2", "--methods", "test-counted",
                     "--out", str(out), "--json", str(tmp_path)]) == 2
        assert calls == []
    finally:
        del registry.METHODS["test-counted"]
        vdm_methods.set_prior(None)
