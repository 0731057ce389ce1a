"""benchmarks/compare_priors.py: paired gains of one prior over another and the shipping score."""
import csv

import pytest

from bench_scripts import load_benchmark


@pytest.fixture(scope="module")
def cp():
    return load_benchmark("compare_priors")


def _write(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "scale", "slice", "psnr", "ssim", "nrmse", "hfen", "seconds", "nfe"])
        for m, s, i, p in rows:
            w.writerow([m, s, i, p, 0.9, 0.1, 0.1, 1.0, 200])


def test_score_is_the_mean_of_the_cells_and_names_the_worst(tmp_path, cp, capsys):
    # two people x two scales; the candidate gains +1 dB on person 0 and -0.5 dB on person 1
    ref = [("vdm-mean4", s, i, 30.0 + i) for s in (4, 2) for i in range(3)]
    for k, shift in enumerate((1.0, -0.5)):
        _write(tmp_path / f"S{k}.csv", ref)
        _write(tmp_path / f"N{k}.csv", [(m, s, i, p + shift) for m, s, i, p in ref])
    args = [f"S={tmp_path / 'S0.csv'}", f"S={tmp_path / 'S1.csv'}",
            f"N={tmp_path / 'N0.csv'}", f"N={tmp_path / 'N1.csv'}", "--names", "a", "b"]
    assert cp.main(args) == 0
    out = capsys.readouterr().out
    assert "| N | +0.250 | -0.500 | 4 |" in out
    assert "| N | a | vdm-mean4 | 4× | +1.00 |" in out and "3 / 3" in out


def test_mismatched_slices_and_bad_spec(tmp_path, cp, capsys):
    _write(tmp_path / "a.csv", [("vdm-mean4", 4, 0, 30.0), ("vdm-mean4", 4, 1, 30.0)])
    _write(tmp_path / "b.csv", [("vdm-mean4", 4, 0, 30.0)])
    with pytest.raises(ValueError, match="different slices"):
        cp.main([f"S={tmp_path / 'a.csv'}", f"N={tmp_path / 'b.csv'}"])
    assert cp.main([str(tmp_path / "a.csv")]) == 2
    assert "LABEL=PATH" in capsys.readouterr().err


def test_out_writes_the_printed_tables(tmp_path, cp, capsys):
    ref = [("vdm-mean4", 4, i, 30.0 + i) for i in range(3)]
    _write(tmp_path / "S.csv", ref)
    _write(tmp_path / "N.csv", [(m, s, i, p + 0.5) for m, s, i, p in ref])
    out = tmp_path / "compare.md"
    assert cp.main([f"S={tmp_path / 'S.csv'}", f"N={tmp_path / 'N.csv'}", "--names", "a",
                    "--out", str(out)]) == 0
    assert out.read_text() == capsys.readouterr().out
    assert "| N | +0.500 | +0.500 | 1 |" in out.read_text()
