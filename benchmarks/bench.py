#!/usr/bin/env python
"""Benchmark every registered method (classical baselines and VDM samplers) on the test split.

Same options as ``mrirecon-vdm bench`` (see ``--help``); for example

    python benchmarks/bench.py --scales 4 2 --out results/bench
    python benchmarks/bench.py --data my_slices.npy --methods zero-fill sigpy-tv

writes ``bench.md``, ``bench.csv`` and ``bench.json`` into ``--out``. The options are those
of :mod:`mrirecon_vdm._cli.bench`, the engine is :mod:`mrirecon_vdm.bench`; methods come from
:data:`mrirecon_vdm.bench.registry.METHODS`.
"""
import pathlib
import sys

try:
    import mrirecon_vdm  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from mrirecon_vdm._cli.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
