"""Names that moved keep working from their old homes where the old home imports them
downward (user plugins and scripts use them): mrirecon_vdm.vdm_methods, the engine in
mrirecon_vdm._cli.bench; the package mrirecon_vdm.bench imports without torch; and the
package's import graph has no circle."""
import subprocess
import sys


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


def test_bench_package_is_light():
    code = ("import sys, mrirecon_vdm.bench, mrirecon_vdm._cli.bench; "
            "print([m for m in ('torch', 'sigpy', 'mrirecon_vdm.baselines') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_import_circle():
    """No module imports one that imports it back (at any depth, function-level imports
    included), and no private name is imported from another module."""
    import ast
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1] / "mrirecon_vdm"
    mods = {}
    for p in root.rglob("*.py"):
        parts = p.relative_to(root.parent).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    graph, private = {m: set() for m in mods}, []
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(p.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target not in mods:
                continue
            graph[m].add(target)
            for a in node.names:
                if f"{target}.{a.name}" in mods:
                    graph[m].add(f"{target}.{a.name}")
                elif a.name.startswith("_"):
                    private.append(f"{m} imports {target}.{a.name}")
    for m in graph:
        graph[m].discard(m)
    # a circle is a module reachable from itself
    circles = []
    for start in graph:
        seen, todo = set(), list(graph[start])
        while todo:
            v = todo.pop()
            if v == start:
                circles.append(start)
                break
            if v not in seen:
                seen.add(v)
                todo.extend(graph[v])
    assert circles == [], circles
    assert private == [], private
