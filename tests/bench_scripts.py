"""Import the scripts of ``benchmarks/`` (a script folder, not a package) in tests."""
import importlib.util
import pathlib

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name):
    """``benchmarks/<name>.py`` imported as a module."""
    spec = importlib.util.spec_from_file_location(f"mrirecon_vdm_bench_{name}",
                                                  BENCHMARKS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
