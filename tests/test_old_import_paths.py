"""Names that moved keep working from their old homes (user plugins and scripts use them):
the registry in mrirecon_vdm.baselines, mrirecon_vdm.vdm_methods, the engine in
mrirecon_vdm._cli.bench, reconstruct_volume in mrirecon_vdm.app; and the new package
mrirecon_vdm.bench imports without torch."""
import subprocess
import sys


def test_registry_names_in_baselines():
    from mrirecon_vdm import baselines as B
    from mrirecon_vdm.bench import registry

    assert B.METHODS is registry.METHODS
    assert B.register_method is registry.register_method
    assert B.reconstruct is registry.reconstruct
    assert B.Method is registry.Method
    from mrirecon_vdm.baselines import METHODS, register_method  # noqa: F401
    assert METHODS is registry.METHODS and "zero-fill" in METHODS


def test_vdm_methods_is_one_module():
    import mrirecon_vdm.bench.vdm_methods as new
    import mrirecon_vdm.vdm_methods as old
    from mrirecon_vdm.bench.registry import METHODS

    assert old is new                                   # not a copy: one prior cache
    assert old.set_prior is new.set_prior and old._cache is new._cache
    assert "vdm-fast-25" in METHODS


def test_old_plugin_name(capsys):
    from mrirecon_vdm._cli import bench

    assert bench.main(["--plugin", "mrirecon_vdm.vdm_methods", "--list"]) == 0
    assert "vdm-mean4" in capsys.readouterr().out


def test_engine_names_in_the_command_module():
    from mrirecon_vdm._cli import bench
    from mrirecon_vdm.bench import journal, runner, tables

    for name in ("simulate", "load_data", "benchmark", "bench_method", "load_plugins",
                 "lr_shape_for", "PLUGINS", "LEARNED_WARMUP"):
        assert getattr(bench, name) is getattr(runner, name), name
    for name in ("BenchJournal", "JOURNAL", "JOURNAL_FORMAT", "fingerprint",
                 "method_settings", "prior_fingerprint"):
        assert getattr(bench, name) is getattr(journal, name), name
    for name in ("write_outputs", "markdown_table", "COLUMNS", "SLICE_COLUMNS"):
        assert getattr(bench, name) is getattr(tables, name), name
    assert callable(bench.main)


def test_package_reexports():
    import mrirecon_vdm
    import mrirecon_vdm.bench as package
    from mrirecon_vdm.bench import journal, registry, runner, tables

    homes = {"registry": registry, "journal": journal, "runner": runner, "tables": tables}
    for name, module in package._LAZY.items():
        assert getattr(package, name) is getattr(homes[module], name), name
    assert set(package.__all__) == set(package._LAZY)
    assert mrirecon_vdm.bench is package


def test_reconstruct_volume_in_app():
    import mrirecon_vdm
    from mrirecon_vdm import app, volume
    from mrirecon_vdm.app import reconstruct_volume

    assert app.reconstruct_volume is volume.reconstruct_volume is reconstruct_volume
    assert mrirecon_vdm.reconstruct_volume is volume.reconstruct_volume
    assert "reconstruct_volume" not in app.__all__


def test_bench_package_is_light():
    code = ("import sys, mrirecon_vdm.bench, mrirecon_vdm._cli.bench; "
            "print([m for m in ('torch', 'sigpy', 'mrirecon_vdm.baselines') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
