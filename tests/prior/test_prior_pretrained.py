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
