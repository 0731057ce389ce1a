"""The benchmark's outputs: the Markdown table, the CSV and JSON summaries, the per-slice CSV.

:func:`write_outputs` writes, each atomically, into the output folder:

* ``bench.md``: a Markdown table (:func:`markdown_table`), mean ± std over slices;
* ``bench.csv``: one row per method and scale factor, columns :data:`COLUMNS`;
* ``bench.json``: the run's description and
  ``{"results": [{"method", "scale", "psnr", "psnr_std", ..., "seconds_per_slice", "nfe"}]}``;
* ``bench_slices.csv``: every slice's metrics, seconds and NFE (columns
  :data:`SLICE_COLUMNS`), for paired comparisons (``benchmarks/gains.py``).
"""
__all__ = ["COLUMNS", "SLICE_COLUMNS", "markdown_table", "write_outputs"]

#: Columns of ``bench.csv`` (one row per method and scale factor).
COLUMNS = ("method", "scale", "psnr", "psnr_std", "ssim", "ssim_std", "nrmse", "nrmse_std",
           "hfen", "hfen_std", "seconds_per_slice", "nfe", "n_slices", "task", "accel", "coils",
           "phase", "sigma")
#: Columns of ``bench_slices.csv`` (one row per method, scale factor and slice).
SLICE_COLUMNS = ("method", "scale", "slice", "psnr", "ssim", "nrmse", "hfen", "seconds", "nfe")


def markdown_table(rows):
    """The rows as a Markdown table (mean ± std)."""
    head = ("| method | scale | PSNR (dB) | SSIM | NRMSE | HFEN | s / slice | NFE |\n"
            "|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        lines.append(f"| {r['method']} | {r['scale']}× | {r['psnr']:.2f} ± {r['psnr_std']:.2f} "
                     f"| {r['ssim']:.3f} ± {r['ssim_std']:.3f} "
                     f"| {r['nrmse']:.4f} ± {r['nrmse_std']:.4f} "
                     f"| {r['hfen']:.4f} ± {r['hfen_std']:.4f} "
                     f"| {r['seconds_per_slice']:.3f} | {r['nfe']} |")
    return "\n".join(lines)


def _task_line(meta):
    t = meta.get("task")
    if not t or t.get("task", "sr") == "sr":
        return ""
    return (f"\n\nTask: {t['task']} undersampling (scale column = acceleration R), centre "
            f"{t['center_fraction']}, {t['coils']} coil(s), phase {t['phase']}")


def write_outputs(rows, meta, out_dir, json_path=None):
    """Write bench.md, bench.csv, bench.json and bench_slices.csv (each atomically).

    Returns their paths. Rows may carry ``per_slice`` (from
    :func:`mrirecon_vdm.bench.runner.bench_method`): it goes to bench_slices.csv, not to the
    JSON.
    """
    import csv
    import io
    import json
    import pathlib

    from .._atomic import atomic_write_text

    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, csv_path = out_dir / "bench.md", out_dir / "bench.csv"
    slices_path = out_dir / "bench_slices.csv"
    json_path = pathlib.Path(json_path) if json_path else out_dir / "bench.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(md, f"Data: {meta['data']} ({meta['n_slices']} slices, data range "
                  f"{meta['data_range']:.4g}, k-space noise sigma {meta['sigma']:g})"
                  + _task_line(meta) + "\n\n"
                  + markdown_table(rows) + "\n")
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=COLUMNS)
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in COLUMNS})
    atomic_write_text(csv_path, buf.getvalue())
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=SLICE_COLUMNS)
    w.writeheader()
    for r in rows:
        for e in r.get("per_slice", ()):
            w.writerow({k: e[k] for k in SLICE_COLUMNS})
    atomic_write_text(slices_path, buf.getvalue())
    summary = [{k: v for k, v in r.items() if k != "per_slice"} for r in rows]
    atomic_write_text(json_path, json.dumps({**meta, "results": summary}, indent=2) + "\n")
    return md, csv_path, json_path, slices_path
