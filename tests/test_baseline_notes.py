"""The scripts behind notes of docs/baselines.md: the SigPy TV step balance
(benchmarks/tv_pdhg_balance.py) and the tuning of the classical weights
(benchmarks/tune_baselines.py)."""
import numpy as np
import sigpy as sp

from bench_scripts import load_benchmark
from mrirecon_vdm import metrics


def test_balanced_pdhg_converges_faster_than_the_baseline_iteration():
    """The same TV problem: with ∇ scaled by 1/√8 PDHG gets much further in 200 iterations
    than with the baseline's step balance (c = 1; measured 23.4 against 21.2 dB here)."""
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize
    mod = load_benchmark("tv_pdhg_balance")
    x = resize(shepp_logan_phantom(), (48, 48), anti_aliasing=True).astype(np.float32)
    mask = (np.random.default_rng(0).random((48, 48)) < 0.4).astype(np.float32)
    mask[20:28, 20:28] = 1
    A = sp.linop.Multiply((48, 48), mask) * sp.linop.FFT((48, 48), center=True)
    y = A(x.astype(np.complex64))
    slow = metrics.psnr(x, mod.tv_balanced(y, A, 1e-3, 200, 1.0))
    fast = metrics.psnr(x, mod.tv_balanced(y, A, 1e-3, 200, np.sqrt(8)))
    assert fast > slow + 1.5


def test_tuning_one_method_keeps_the_others_records(tmp_path, monkeypatch):
    """benchmarks/tune_baselines.py --methods M replaces M's defaults and grid only: the other
    methods' defaults and grid records stay (a re-tune of sigpy-tv once dropped them)."""
    import json

    import mrirecon_vdm.data as data
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize
    x = resize(shepp_logan_phantom(), (32, 32), anti_aliasing=True).astype(np.float32)
    monkeypatch.setattr(data, "load_split", lambda split: np.stack([x, x[::-1].copy()]))
    out = tmp_path / "defaults.json"
    gkey = "grid_psnr [lamda, max_iter, psnr]"
    old = {"methods": {"bart-tv": {"4": {"lamda": 0.005, "max_iter": 50, "val_psnr": 1.0}}},
           "tuning": {gkey: {"bart-tv 4": [[0.005, 50, 1.0]]}}}
    out.write_text(json.dumps(old))
    mod = load_benchmark("tune_baselines")
    assert mod.main(["--methods", "sigpy-wavelet", "--scales", "4", "--slices", "2",
                     "--out", str(out)]) == 0
    new = json.loads(out.read_text())
    assert new["methods"]["bart-tv"] == old["methods"]["bart-tv"]
    assert new["tuning"][gkey]["bart-tv 4"] == [[0.005, 50, 1.0]]
    assert {"lamda", "max_iter", "val_psnr"} <= new["methods"]["sigpy-wavelet"]["4"].keys()
    assert len(new["tuning"][gkey]["sigpy-wavelet 4"]) >= 35


def test_tuning_the_constrained_methods_of_a_phase_task(tmp_path, monkeypatch):
    """--constrained --phase smooth tunes the task's -phase methods (BART's skipped here) into
    the single-coil table, under a record of its own; the complex methods' entries stay."""
    import json

    import mrirecon_vdm.data as data
    from toy_images import disc_slices
    monkeypatch.setattr(data, "load_split", lambda split: disc_slices(2, 32))
    mod = load_benchmark("tune_baselines")
    monkeypatch.setattr(mod, "bart_available", lambda: False)
    out = tmp_path / "defaults.json"
    old = {"methods": {}, "tasks": {"mask": {"bart-tv": {"3": {"lamda": 0.01, "max_iter": 9,
                                                               "val_psnr": 1.0}}}}}
    out.write_text(json.dumps(old))
    assert mod.main(["--constrained", "--task", "cartesian", "--accel", "3", "--phase",
                     "smooth", "--center-fraction", "0.25", "--slices", "1",
                     "--out", str(out)]) == 0
    new = json.loads(out.read_text())
    assert sorted(new["tasks"]["mask"]) == ["bart-tv", "sigpy-tv-phase",
                                            "sigpy-wavelet-phase"]
    assert new["tasks"]["mask"]["bart-tv"] == old["tasks"]["mask"]["bart-tv"]
    record = new["tuning"]["tasks"]["mask cartesian phase smooth"]
    assert record["phase"] == "smooth" and record["minutes"] > 0
    assert sorted(record["grid_psnr [lamda, max_iter, psnr]"]) == [
        "mask sigpy-tv-phase 3", "mask sigpy-wavelet-phase 3"]
