"""benchmarks/device_train.sh and pack_device_data.py: the prepared GPU training run of issue
11, exercised on the CPU with the tiny config (the device tool itself is not available here)."""
import json
import os
import pathlib
import subprocess
import sys

import h5py
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_pack_then_train_then_half_precision_weights(tmp_path):
    rng = np.random.default_rng(0)
    with h5py.File(tmp_path / "ds.h5", "w") as f:
        f["train/images"] = rng.random((6, 32, 32)).astype(np.float32)
        f["val_person/images"] = rng.random((2, 32, 32)).astype(np.float32)
    pack = tmp_path / "pack" / "train.npz"
    subprocess.run([sys.executable, str(ROOT / "benchmarks/pack_device_data.py"), "--data",
                    str(tmp_path / "ds.h5"), "--out", str(pack)], check=True, cwd=ROOT)
    with np.load(pack) as z:
        assert z["train"].dtype == np.float16 and z["train"].shape == (6, 32, 32)
        assert z["val"].shape == (2, 32, 32)
    out = tmp_path / "out"
    # the device image has no SigPy or PyWavelets: training must not import them
    for mod in ("sigpy", "pywt"):
        (tmp_path / "block" / mod).mkdir(parents=True)
        (tmp_path / "block" / mod / "__init__.py").write_text(
            f"raise ImportError('{mod} is not on the device image')\n")
    env = dict(os.environ, OUT=str(out), RUN_DIR=str(tmp_path / "run"), DATA=str(pack),
               CONFIG="mrirecon_vdm/prior/configs/tiny.json", PYTHON=sys.executable,
               STEPS="3", BUDGET_S="300", PYTHONPATH=str(tmp_path / "block"))
    subprocess.run(["bash", str(ROOT / "benchmarks/device_train.sh")], check=True, cwd=ROOT,
                   env=env, capture_output=True)
    meta = json.loads((out / "prior" / "prior.json").read_text())
    assert meta["provenance"]["weights_dtype"] == "float16" and meta["provenance"]["step"] == 3
    assert (out / "metrics.csv").exists() and (out / "train.log").exists()
    assert not list(out.rglob("checkpoint.pt"))         # checkpoints stay out of $OUT
    from mrirecon_vdm.prior import load_pretrained
    assert load_pretrained(path=str(out / "prior")).config.base_channels == 8


def test_device_train_refuses_missing_data(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path / "out"), DATA=str(tmp_path / "none.npz"),
               PYTHON=sys.executable)
    r = subprocess.run(["bash", str(ROOT / "benchmarks/device_train.sh")], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "pack_device_data.py" in r.stderr


def test_the_gpu_recipe_is_the_shipped_one_wider():
    cfg = {n: json.loads((ROOT / "mrirecon_vdm/prior/configs" / n).read_text())
           for n in ("brain128.json", "brain128_w64.json")}
    a, b = cfg["brain128.json"], cfg["brain128_w64.json"]
    assert b["model"]["base_channels"] == 64
    assert {k: v for k, v in b["model"].items() if k != "base_channels"} == \
        {k: v for k, v in a["model"].items() if k != "base_channels"}
    assert b["augment"] == a["augment"] and b["patch_size"] == a["patch_size"]


@pytest.mark.parametrize("missing", ["train/images", "val_person/images"])
def test_pack_refuses_a_data_set_without_its_splits(tmp_path, missing):
    with h5py.File(tmp_path / "ds.h5", "w") as f:
        for key in ("train/images", "val_person/images"):
            if key != missing:
                f[key] = np.zeros((2, 8, 8), np.float32)
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks/pack_device_data.py"), "--data",
                        str(tmp_path / "ds.h5"), "--out", str(tmp_path / "p.npz")], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 2 and missing in r.stderr
