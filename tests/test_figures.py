"""benchmarks/figures.py --quick on tiny data: every PNG and the JSON are written."""
import importlib.util
import json
import pathlib

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from mrirecon_vdm import vdm_methods as vm  # noqa: E402

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "figures.py"
PNGS = ["fig_psnr_nfe.png", "fig_recon_4x.png", "fig_recon_2x.png", "fig_lambda.png",
        "fig_uncertainty.png"]


def load_script():
    spec = importlib.util.spec_from_file_location("mrirecon_vdm_figures", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_figures_quick(tmp_path):
    from test_vdm_methods import slices, tiny_vdm
    data = tmp_path / "slices.npy"
    np.save(data, np.stack([np.kron(s, np.ones((2, 2))) for s in slices(3)]))   # 32 x 32
    vm.set_prior(tiny_vdm())
    try:
        rc = load_script().main(["--out", str(tmp_path / "fig"), "--data", str(data),
                                 "--quick", "--slice", "1"])
    finally:
        vm.set_prior(None)
    assert rc == 0
    for name in PNGS:
        blob = (tmp_path / "fig" / name).read_bytes()
        assert blob[:8] == b"\x89PNG\r\n\x1a\n" and len(blob) > 1000
    assert not [p for p in (tmp_path / "fig").iterdir() if p.name.startswith(".")]  # no temps
    rec = json.loads((tmp_path / "fig" / "figures.json").read_text())
    assert rec["slice"] == 1
    assert [r["lamda"] for r in rec["lambda"]["results"]] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert [c["nfe"] for c in rec["psnr_nfe"]["curves"]["fast"]] == [5, 10]
    assert rec["uncertainty"]["nfe"] == 4 * 10
