"""benchmarks/gains.py: paired gains over the best classical method, from bench_slices.csv."""
import numpy as np
import pytest

from bench_scripts import load_benchmark
from mrirecon_vdm._cli import bench
from toy_images import disc_slices


@pytest.fixture(scope="module")
def gains():
    return load_benchmark("gains")


def test_gains_from_a_real_bench(tmp_path, gains):
    from mrirecon_vdm import baselines as B
    from mrirecon_vdm.bench import registry
    # a "learned" method: zero-filling plus a tiny constant, reported with nfe > 0
    registry.register_method("test-learned", lambda y, A, s: (B.ZeroFillRecon(y, A).run(), 5),
                             nfe=5)
    try:
        data = tmp_path / "s.npy"
        np.save(data, disc_slices(4))
        assert bench.main(["--data", str(data), "--scales", "2", "--methods", "zero-fill",
                           "bicubic", "test-learned", "--out", str(tmp_path / "o")]) == 0
    finally:
        del registry.METHODS["test-learned"]
    table = gains.read_slices(tmp_path / "o" / "bench_slices.csv")
    rows = gains.gains(table, "psnr")
    assert len(rows) == 1
    r = rows[0]
    # zero-fill beats bicubic on these slices, and the "learned" method equals zero-fill
    assert r["reference"] == "zero-fill" and r["method"] == "test-learned"
    assert r["gain"] == pytest.approx(0.0, abs=1e-9) and r["better"] == 0 and r["n"] == 4
    assert gains.main([str(tmp_path / "o" / "bench_slices.csv"), "--out",
                       str(tmp_path / "g.md")]) == 0
    assert "| 2× | test-learned | zero-fill | +0.00 |" in (tmp_path / "g.md").read_text()


def test_gain_and_interval(gains):
    rows = {}
    for i, (a, b) in enumerate([(30.0, 31.0), (32.0, 32.5), (28.0, 29.5)]):
        rows.setdefault(("cs", 4), {})[i] = {"psnr": a, "ssim": 0.8, "nfe": "0"}
        rows.setdefault(("weak", 4), {})[i] = {"psnr": a - 1, "ssim": 0.7, "nfe": "0"}
        rows.setdefault(("vdm", 4), {})[i] = {"psnr": b, "ssim": 0.9, "nfe": "200"}
    (r,) = gains.gains(rows, "psnr")
    d = np.array([1.0, 0.5, 1.5])
    assert r["reference"] == "cs" and r["gain"] == pytest.approx(d.mean())
    assert r["ci95"] == pytest.approx(4.302653 * d.std(ddof=1) / np.sqrt(3), rel=1e-5)
    assert r["better"] == 3
    del rows[("vdm", 4)][2]
    with pytest.raises(ValueError, match="different slices"):
        gains.gains(rows, "psnr")


def test_bad_input(tmp_path, gains):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert gains.main([str(bad)]) == 2
    assert gains.main([str(tmp_path / "missing.csv")]) == 2


def test_tables_are_merged_and_duplicates_refused(tmp_path, gains):
    data = tmp_path / "s.npy"
    np.save(data, disc_slices(3))
    for name, methods in (("a", ["zero-fill"]), ("b", ["bicubic"])):
        assert bench.main(["--data", str(data), "--scales", "2", "--methods", *methods,
                           "--out", str(tmp_path / name)]) == 0
    a, b = tmp_path / "a" / "bench_slices.csv", tmp_path / "b" / "bench_slices.csv"
    table = gains.read_slices(a, b)
    assert set(table) == {("zero-fill", 2), ("bicubic", 2)}
    with pytest.raises(ValueError, match="more than one table"):
        gains.read_slices(a, a)


def test_summary_has_the_means_and_both_gains(tmp_path, gains):
    import csv
    path = tmp_path / "bench_slices.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "scale", "slice", "psnr", "ssim", "nrmse", "hfen", "seconds", "nfe"])
        for s in (2, 4):
            for i in range(2):
                w.writerow(["bart-tv", s, i, 30.0 + i, 0.80, 0.2, 0.1, 0.5, 0])
                w.writerow(["vdm-pnp", s, i, 31.0 + i, 0.85, 0.1, 0.05, 3.0, 30])
    out = tmp_path / "summary.md"
    assert gains.main([str(path), "--out", str(out)]) == 0
    text = out.read_text()
    # means (bench.md's table), the larger factor first, then PSNR and SSIM gains
    assert text.index("| bart-tv | 4× | 30.50 ± 0.50 | 0.800 ± 0.000") < text.index("| bart-tv | 2× |")
    assert "| vdm-pnp | 4× | 31.50 ± 0.50 | 0.850 ± 0.000 | 0.1000 ± 0.0000 | 0.0500 ± 0.0000 " \
           "| 3.000 | 30 |" in text
    assert "| 4× | vdm-pnp | bart-tv | +1.00 | ± 0.00 | 2 / 2 |" in text
    assert "| 4× | vdm-pnp | bart-tv | +0.050 | ± 0.000 | 2 / 2 |" in text
