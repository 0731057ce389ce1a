"""The VDM samplers as benchmark methods: registry names, outputs, NFE, seeds, the prior
cache and the bench command (tiny randomly initialised VDM on 16 x 16 images)."""
import hashlib
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mrirecon_vdm.bench import registry as R  # noqa: E402
from mrirecon_vdm.bench import vdm_methods as vm  # noqa: E402
from mrirecon_vdm.linop import CropFourier  # noqa: E402
from mrirecon_vdm.noise import simulate_lowres  # noqa: E402
from toy_images import disc_slices  # noqa: E402

H = 16
TINY = dict(base_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,),
            norm_groups=4, fourier_exponents=(6,), schedule_features=16)
NAMES = ["vdm-paper", "vdm-fast-10", "vdm-fast-25", "vdm-fast-50", "vdm-fast-100",
         "vdm-mean4", "vdm-mean8", "vdm-pnp"]


def tiny_vdm():
    from mrirecon_vdm.prior import VDM, VDMConfig
    torch.manual_seed(0)
    return VDM(VDMConfig(**TINY)).eval()


def write_prior(model, folder):
    """An exported prior folder (prior.safetensors + prior.json) without a checkpoint."""
    from safetensors.torch import save

    from mrirecon_vdm.prior.pretrained import FORMAT
    blob = save({k: v.contiguous() for k, v in model.state_dict().items()})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prior.safetensors").write_bytes(blob)
    (folder / "prior.json").write_text(json.dumps(
        {"format": FORMAT, "model_config": model.config.to_dict(), "provenance": {"note": "t"},
         "sha256": hashlib.sha256(blob).hexdigest()}))
    return folder


def slices(n=3):
    return disc_slices(n, H)


@pytest.fixture
def tiny_prior():
    vm.set_prior(tiny_vdm())
    yield
    vm.set_prior(None)


def test_registered_names():
    vdm = [m for m in R.METHODS if m.startswith("vdm")]
    assert vdm == NAMES
    assert list(R.METHODS)[:2] == ["zero-fill", "bicubic"]       # baselines first
    assert {m: R.METHODS[m].nfe for m in NAMES} == {
        "vdm-paper": 1000, "vdm-fast-10": 10, "vdm-fast-25": 25, "vdm-fast-50": 50,
        "vdm-fast-100": 100, "vdm-mean4": 200, "vdm-mean8": 400, "vdm-pnp": 30}


@pytest.mark.parametrize("name", NAMES)
def test_method_shape_and_nfe(tiny_prior, name):
    x = slices(1)[0]
    A = CropFourier((H, H), (H // 4, H // 4))
    y = simulate_lowres(x, A.lr_shape)
    out, nfe = R.reconstruct(name, y, A, 4)
    assert out.shape == (H, H) and np.isrealobj(out) and np.all(np.isfinite(out))
    assert nfe == R.METHODS[name].nfe


def test_seeded_per_slice(tiny_prior):
    xs = slices(2)
    A = CropFourier((H, H), (H // 2, H // 2))
    y0, y1 = (simulate_lowres(x, A.lr_shape) for x in xs)
    a, _ = R.reconstruct("vdm-fast-10", y0, A, 2)
    b, _ = R.reconstruct("vdm-fast-10", y0.copy(), A, 2)
    np.testing.assert_array_equal(a, b)                     # same slice, same output
    assert vm.slice_seed(y0) != vm.slice_seed(y1)
    c, _ = R.reconstruct("vdm-fast-10", y0, A, 2, seed=123)  # seed can be overridden
    assert not np.array_equal(a, c)
    # K samples: mean of a batched run, std available
    x, nfe, app = vm.vdm_recon(y0, A, num_samples=3, num_steps=2)
    assert nfe == 6 and app.std.shape == (H, H) and app.samples.shape == (3, H, H)


def test_renoising_of_the_fast_methods(tiny_prior, monkeypatch):
    """The fast methods use the sampler's default renoising (fresh) unless
    MRIRECON_VDM_RENOISE (:data:`vm.RENOISE`) says otherwise; the paper sampler has none."""
    x = slices(1)[0]
    A = CropFourier((H, H), (H // 2, H // 2))
    y = simulate_lowres(x, A.lr_shape)
    seen = []
    real = vm.vdm_recon
    monkeypatch.setattr(vm, "vdm_recon", lambda *a, **k: seen.append(k.get("renoise"))
                        or real(*a, **{**k, "num_steps": 2}))
    fresh, _ = R.reconstruct("vdm-fast-10", y, A, 2)
    monkeypatch.setattr(vm, "RENOISE", "ddim")
    ddim, _ = R.reconstruct("vdm-fast-10", y, A, 2)
    R.reconstruct("vdm-paper", y, A, 2)
    assert seen == ["fresh", "ddim", None] and not np.allclose(fresh, ddim)


def test_prior_sources(tmp_path, monkeypatch):
    model = tiny_vdm()
    folder = write_prior(model, tmp_path / "prior")
    vm.set_prior(None)
    monkeypatch.setenv(vm.PRIOR_ENV, str(folder))
    try:
        p = vm.get_prior()
        assert vm.get_prior() is p and vm.prior_source() == str(folder)    # cached
        vm.set_prior(str(folder / "prior.safetensors"))
        assert vm.get_prior() is not p
        with pytest.raises(ValueError, match="prior protocol"):
            vm.set_prior(object())
        monkeypatch.setenv(vm.PRIOR_ENV, str(tmp_path / "missing"))
        vm.set_prior(None)
        with pytest.raises(FileNotFoundError):
            vm.get_prior()
    finally:
        vm.set_prior(None)


def test_benchmark_row(tiny_prior):
    from mrirecon_vdm.bench.runner import benchmark
    rows = benchmark(slices(2), scales=(2,), methods=["zero-fill", "vdm-fast-10"],
                     log=lambda s: None)
    assert [(r["method"], r["scale"]) for r in rows] == [("zero-fill", 2), ("vdm-fast-10", 2)]
    r = rows[1]
    assert r["nfe"] == 10 and r["n_slices"] == 2 and np.isfinite(r["psnr"])
    assert r["seconds_per_slice"] > 0


def test_bench_command_json(tiny_prior, tmp_path):
    from mrirecon_vdm._cli import bench
    from mrirecon_vdm.bench.runner import PLUGINS
    assert "mrirecon_vdm.bench.vdm_methods" in PLUGINS
    data = tmp_path / "slices.npy"
    np.save(data, slices(5))
    out = tmp_path / "out"
    rc = bench.main(["--data", str(data), "--stride", "2", "--limit", "2", "--scales", "4",
                     "--methods", "vdm-fast-10", "vdm-mean4", "--out", str(out),
                     "--json", str(tmp_path / "b.json")])
    assert rc == 0
    result = json.loads((tmp_path / "b.json").read_text())
    assert result["n_slices"] == 2
    rows = result["results"]
    assert [r["method"] for r in rows] == ["vdm-fast-10", "vdm-mean4"]
    for r in rows:
        assert {"method", "scale", "psnr", "ssim", "seconds_per_slice", "nfe"} <= set(r)
        assert r["scale"] == 4 and np.isfinite(r["psnr"]) and np.isfinite(r["ssim"])
    assert [r["nfe"] for r in rows] == [10, 200]
    assert "| vdm-mean4 | 4× |" in (out / "bench.md").read_text()
    assert bench.main(["--data", str(data), "--stride", "0", "--out", str(out)]) == 2


def test_bench_script(tiny_prior, tmp_path):
    import importlib.util
    import pathlib
    script = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"
    spec = importlib.util.spec_from_file_location("mrirecon_vdm_bench_script", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    data = tmp_path / "slices.npy"
    np.save(data, slices(4))
    rc = mod.main(["--data", str(data), "--stride", "3", "--scales", "2", "--methods",
                   "zero-fill", "vdm-fast-10", "--out", str(tmp_path / "o")])
    assert rc == 0
    result = json.loads((tmp_path / "o" / "bench.json").read_text())
    assert result["stride"] == 3 and result["n_slices"] == 2
    assert [(r["method"], r["nfe"]) for r in result["results"]] == [("zero-fill", 0),
                                                                   ("vdm-fast-10", 10)]
    assert result["prior"] == "VDM"
