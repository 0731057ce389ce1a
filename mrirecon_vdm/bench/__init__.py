"""The benchmark engine behind ``mrirecon-vdm bench``: every registered method on a data set.

============================  ==============================================================
module                        holds
============================  ==============================================================
:mod:`.registry`              ``Method``, ``METHODS``, ``register_method``, ``reconstruct``;
                              registers the classical baselines (zero-fill, bicubic, SigPy
                              and BART L1-wavelet / TV)
:mod:`.vdm_methods`           registers the VDM samplers (``vdm-paper``, ``vdm-fast-N``,
                              ``vdm-meanK``); the prior they share (``set_prior``)
:mod:`.runner`                the data (``load_data``), the simulated measurements
                              (``simulate``), one method (``bench_method``), all of them
                              (``benchmark``), the plugins (``PLUGINS``, ``load_plugins``)
:mod:`.journal`               ``BenchJournal``: finished slices on disk, so that a killed run
                              can go on; what it must match (``fingerprint``,
                              ``method_settings``, ``prior_fingerprint``)
:mod:`.tables`                ``bench.md``, ``bench.csv``, ``bench.json``,
                              ``bench_slices.csv`` (``markdown_table``, ``write_outputs``)
============================  ==============================================================

The command line (options only) is :mod:`mrirecon_vdm._cli.bench`; user documentation:
``docs/benchmarks.md``. The names below are importable from here; the modules load on first
use, so importing this package is fast (no torch, no SigPy).

Example:
    >>> from mrirecon_vdm.bench import METHODS, reconstruct, register_method
    >>> register_method("my-method", my_recon, description="what it does")
"""
import importlib

_LAZY = {
    "Method": "registry",
    "METHODS": "registry",
    "register_method": "registry",
    "reconstruct": "registry",
    "BenchJournal": "journal",
    "JOURNAL": "journal",
    "JOURNAL_FORMAT": "journal",
    "fingerprint": "journal",
    "method_settings": "journal",
    "prior_fingerprint": "journal",
    "PLUGINS": "runner",
    "LEARNED_WARMUP": "runner",
    "load_plugins": "runner",
    "load_data": "runner",
    "lr_shape_for": "runner",
    "simulate": "runner",
    "bench_method": "runner",
    "benchmark": "runner",
    "check_run": "runner",
    "COLUMNS": "tables",
    "SLICE_COLUMNS": "tables",
    "markdown_table": "tables",
    "write_outputs": "tables",
}
_SUBMODULES = ("registry", "vdm_methods", "runner", "journal", "tables")

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__ + list(_SUBMODULES))
