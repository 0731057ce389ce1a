import json

import pytest
import torch

import mrirecon_vdm.prior.pretrained as pretrained
from mrirecon_vdm.prior import export_pretrained, load_pretrained, train


def test_export_load_roundtrip(tiny_train_config, tmp_path):
    res = train(tiny_train_config.replace(steps=3, channels_last=True))
    out = tmp_path / "weights"
    wpath, mpath = export_pretrained(res.checkpoint, out, {"data": "toy blobs", "licence": "none"})
    assert wpath.name == "prior.safetensors" and mpath.name == "prior.json"
    meta = json.loads(mpath.read_text())
    assert meta["provenance"]["data"] == "toy blobs" and meta["provenance"]["step"] == 3
    assert meta["model_config"] == tiny_train_config.model.to_dict()
    for p in (out, wpath):                                   # folder or file
        m = load_pretrained(path=str(p))
        assert not m.training
        assert all(not q.requires_grad for q in m.parameters())
        for a, b in zip(m.state_dict().values(), res.ema.state_dict().values()):
            torch.testing.assert_close(a, b.float(), rtol=0, atol=0)
    z = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(m.predict_eps(z, 0.3), res.ema.predict_eps(z, 0.3))
    # a corrupted weights file is caught by the checksum
    blob = bytearray(wpath.read_bytes())
    blob[-1] ^= 0xFF
    wpath.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="checksum"):
        load_pretrained(path=str(out))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_export_in_half_precision(tiny_train_config, tmp_path, dtype):
    """Half-precision storage (the ≤ 20 MB limit for a wider net): about half the bytes, the
    dtype recorded, loaded back as a float32 model equal to the weights rounded once."""
    res = train(tiny_train_config.replace(steps=2))
    full, _ = export_pretrained(res.checkpoint, tmp_path / "f32", {"data": "toy"})
    half, mpath = export_pretrained(res.checkpoint, tmp_path / dtype, {"data": "toy"},
                                    dtype=dtype)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    assert json.loads(mpath.read_text())["provenance"]["weights_dtype"] == dtype
    m = load_pretrained(path=str(tmp_path / dtype))
    td = getattr(torch, dtype)
    for a, b in zip(m.state_dict().values(), res.ema.state_dict().values()):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a, b.to(td).float(), rtol=0, atol=0)
    with pytest.raises(ValueError, match="dtype must be one of"):
        export_pretrained(res.checkpoint, tmp_path / "x", {"data": "toy"}, dtype="int8")


def test_missing_default_weights(monkeypatch, tmp_path):
    monkeypatch.setattr(pretrained, "default_weights_path",
                        lambda: tmp_path / "none" / "prior.safetensors")
    with pytest.raises(FileNotFoundError, match="default pretrained prior is not installed"):
        load_pretrained()
    with pytest.raises(FileNotFoundError, match="not found"):
        load_pretrained(path=str(tmp_path / "elsewhere"))


def test_export_needs_dict(tiny_train_config):
    res = train(tiny_train_config.replace(steps=1))
    with pytest.raises(ValueError, match="provenance"):
        export_pretrained(res.checkpoint, tiny_train_config.out_dir, "not a dict")


def test_truncated_weights_and_mismatched_config_are_one_line(tiny_train_config, tmp_path):
    """Reliability issue, items 8 and 9: a truncated prior.safetensors whose prior.json has
    no checksum raised safetensors' own error (also through TrainConfig.init); a prior.json
    whose model_config does not fit the weights printed every torch size mismatch."""
    import shutil
    res = train(tiny_train_config.replace(steps=1))
    good = tmp_path / "good"
    export_pretrained(res.checkpoint, good, {"data": "toy"})
    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    meta = json.loads((bad / "prior.json").read_text())
    del meta["sha256"]
    (bad / "prior.json").write_text(json.dumps(meta))
    blob = (bad / "prior.safetensors").read_bytes()
    (bad / "prior.safetensors").write_bytes(blob[:len(blob) // 2])
    with pytest.raises(ValueError, match=r"prior.safetensors' cannot be read, the file is "
                                         r"truncated .*records no checksum"):
        load_pretrained(path=str(bad))
    with pytest.raises(ValueError, match="prior.safetensors' cannot be read"):
        train(tiny_train_config.replace(out_dir=str(tmp_path / "ft"), init=str(bad)))
    mism = tmp_path / "mism"
    shutil.copytree(good, mism)
    meta = json.loads((mism / "prior.json").read_text())
    meta["model_config"]["base_channels"] = 4
    (mism / "prior.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError) as e:
        load_pretrained(path=str(mism))
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 600, msg
    assert "tensors of another shape" in msg and "base_channels: 4 vs trained 8" in msg
