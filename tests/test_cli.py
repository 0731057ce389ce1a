"""The ``mrirecon-vdm`` command line: every subcommand's help, and the demo end to end."""
import json

import h5py
import numpy as np
import pytest

from mrirecon_vdm import cli


@pytest.mark.parametrize("sub", cli.SUBCOMMANDS)
def test_every_subcommand_has_help(sub, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([sub, "--help"])
    assert e.value.code == 0
    assert len(capsys.readouterr().out) > 200


def test_top_level_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert all(s in out for s in cli.SUBCOMMANDS)


@pytest.fixture(scope="module")
def tiny_prior(tmp_path_factory):
    """A tiny VDM trained for 2 steps on 16x16 blobs and exported like the shipped prior."""
    from mrirecon_vdm.prior import TrainConfig, VDMConfig, export_pretrained, train
    tmp = tmp_path_factory.mktemp("prior")
    rng = np.random.default_rng(0)
    with h5py.File(tmp / "toy.h5", "w") as f:
        f["train/images"] = rng.random((6, 16, 16)).astype(np.float32)
        f["val/images"] = rng.random((2, 16, 16)).astype(np.float32)
    model = VDMConfig(base_channels=8, channel_mult=(1, 2), num_res_blocks=1,
                      attention_levels=(), norm_groups=4, schedule_features=16,
                      intensity_percentile=99.0)
    res = train(TrainConfig(data=str(tmp / "toy.h5"), out_dir=str(tmp / "run"), model=model,
                            steps=2, batch_size=2, patch_size=16, warmup_steps=0, bf16=False,
                            val_every=0, sample_every=0, save_every=2, progress=False,
                            num_threads=1))
    export_pretrained(res.checkpoint, tmp / "weights", {"data": "random toy images"})
    return tmp / "weights"


def test_demo_end_to_end(tiny_prior, tmp_path, capsys):
    out = tmp_path / "demo"
    code = cli.main(["demo", "--prior", str(tiny_prior), "--out", str(out), "--steps", "3",
                     "--samples", "2", "--slice", "1"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "zero-fill" in printed and "vdm-fast" in printed and str(out / "demo.png") in printed
    res = json.loads((out / "demo.json").read_text())
    names = [r["method"] for r in res["results"]]
    assert names[0] == "zero-fill" and names[-2].startswith("vdm-fast")
    assert names[-1] == "vdm-pnp" and res["results"][-1]["nfe"] == 3
    assert res["results"][-2]["nfe"] == 2 * 3          # K samples x steps, as in bench
    for r in res["results"]:
        assert np.isfinite(r["psnr"]) and 0 < r["ssim"] <= 1
    assert (out / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*tmp*"))


@pytest.mark.parametrize("args, match", [
    (["--slice", "99"], "--slice"),
    (["--scale", "3"], "--scale"),
])
def test_demo_bad_options_exit_2(tiny_prior, tmp_path, capsys, args, match):
    code = cli.main(["demo", "--prior", str(tiny_prior), "--out", str(tmp_path)] + args)
    assert code == 2
    assert match in capsys.readouterr().err


def test_demo_missing_prior_is_a_clear_error(tmp_path, capsys):
    code = cli.main(["demo", "--prior", str(tmp_path / "nope"), "--out", str(tmp_path),
                     "--steps", "1"])
    assert code == 2
    assert "nope" in capsys.readouterr().err
