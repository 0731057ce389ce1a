"""benchmarks/figures.py --quick on tiny data: every PNG and the JSON are written."""
import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from mrirecon_vdm.bench import vdm_methods as vm  # noqa: E402
from bench_scripts import load_benchmark  # noqa: E402

PNGS = ["fig_psnr_nfe.png", "fig_recon_4x.png", "fig_recon_2x.png", "fig_lambda.png",
        "fig_uncertainty.png"]


def test_figures_quick(tmp_path):
    from test_vdm_methods import slices, tiny_vdm
    data = tmp_path / "slices.npy"
    np.save(data, np.stack([np.kron(s, np.ones((2, 2))) for s in slices(3)]))   # 32 x 32
    vm.set_prior(tiny_vdm())
    try:
        rc = load_benchmark("figures").main(["--out", str(tmp_path / "fig"), "--data", str(data),
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
