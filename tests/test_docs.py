"""The README's and docs/usage.md's snippets, run: every Python block is executed as written
(with the shipped prior), and every ``mrirecon-vdm`` command line of the shell blocks is
parsed by the real command line (its options exist and take those values); ``make`` targets
exist in the Makefile."""
import pathlib
import re
import shlex

import pytest

from mrirecon_vdm import cli

REPO = pathlib.Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/usage.md")


def blocks(name, lang):
    text = (REPO / name).read_text()
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def commands(block):
    """The command lines of a shell block: continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    out = []
    for line in joined.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


PYTHON = [(name, i, code) for name in DOCS for i, code in enumerate(blocks(name, "python"))]
SHELL = [(name, cmd) for name in DOCS for b in blocks(name, "bash") for cmd in commands(b)]


def test_the_docs_have_snippets():
    assert len(PYTHON) >= 2 and sum(c.startswith("mrirecon-vdm") for _, c in SHELL) >= 8


@pytest.mark.parametrize("name,i,code", PYTHON, ids=[f"{n}-python-{i}" for n, i, _ in PYTHON])
def test_python_snippet_runs(name, i, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": f"snippet_{i}"}
    exec(compile(code, f"{name} python block {i}", "exec"), namespace)


@pytest.mark.parametrize("name,cmd", [(n, c) for n, c in SHELL if c.startswith("mrirecon-vdm")],
                         ids=[c[:60] for n, c in SHELL if c.startswith("mrirecon-vdm")])
def test_command_line_snippet_parses(name, cmd):
    argv = shlex.split(cmd.replace("$s", "test").replace("$", ""))[1:]
    try:
        args = cli.build_parser().parse_args(argv)
    except SystemExit as e:
        pytest.fail(f"{name}: `{cmd}` is not a valid command line (exit {e.code})")
    assert callable(args.func)


def test_make_targets_exist():
    targets = set(re.findall(r"^([a-z]+):", (REPO / "Makefile").read_text(), flags=re.M))
    for name, cmd in SHELL:
        if cmd.startswith("make "):
            assert cmd.split()[1] in targets, (name, cmd)


def test_scripts_named_in_the_docs_exist():
    for name, cmd in SHELL:
        for word in cmd.split():
            if word.startswith("benchmarks/") and word.endswith((".py", ".sh")):
                assert (REPO / word).exists(), (name, word)


def test_benchmarks_readme_lists_every_script():
    listed = (REPO / "benchmarks" / "README.md").read_text()
    for path in sorted((REPO / "benchmarks").iterdir()):
        if path.suffix in (".py", ".sh"):
            assert f"`{path.name}`" in listed, path.name


BENCH_DOCS = ("README.md", "benchmarks/README.md",
              *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md")))


def test_bench_summaries_named_in_the_docs_exist():
    """Every ``docs/bench/...`` path a doc names is in the tree (``$s``-style variables end
    the path at the folder, which must exist)."""
    seen = 0
    for name in BENCH_DOCS:
        for path in re.findall(r"docs/bench/[\w./-]*", (REPO / name).read_text()):
            path = path.rstrip(".")
            assert (REPO / path).exists(), (name, path)
            seen += 1
    assert seen >= 20


def test_docs_bench_holds_summaries_not_runs():
    """docs/bench keeps the small summaries the docs quote; the runs' per-slice CSVs and
    bench.csv / bench.json stay in the run folders (results/)."""
    bench = REPO / "docs" / "bench"
    files = [p for p in bench.rglob("*") if p.is_file()]
    assert files
    for p in files:
        assert not p.name.endswith("slices.csv") and p.name not in ("bench.csv", "bench.json"), p
        assert p.suffix in (".md", ".json"), p
        assert p.stat().st_size < 64_000, p
        assert not re.search(r"_s\d+(_|\.|$)", p.name), p


HISTORY = re.compile(r"session \d+|/work/|/tmp/", flags=re.I)


def test_docs_carry_no_development_history():
    """The docs and the summaries they quote describe the product as it is: no session
    numbers and no scratch paths (`/work/...`, `/tmp/...`); history stays in git log."""
    paths = [p for p in (REPO / "docs" / "bench").rglob("*") if p.is_file()]
    paths += list((REPO / "docs").rglob("*.md")) + [REPO / "README.md"]
    assert len(paths) > 20
    found = []
    for p in sorted(set(paths)):
        for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1):
            m = HISTORY.search(line)
            if m:
                found.append(f"{p.relative_to(REPO)}:{n}: {m.group(0)!r}")
    assert not found, "\n".join(found)
