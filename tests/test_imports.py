"""The import rule (docs/architecture.md): imports point down, and there are no import loops.

Every import in dlx/ is walked with ``ast`` — function-level (lazy) ones too, since they run as surely as
module-level ones — with import-linter's meaning of ``from pkg import sub`` (a dependency on ``pkg.sub``).
A loop is a strongly connected set of modules; the platform (everything but the CLI, the catalog, the
paper packages and what runs them) never imports a paper, a generic kind or the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import dlx

ROOT = Path(dlx.__file__).parent
# the layers above the platform: only they may import papers and kinds by name (the platform, dlx/launch.py
# and the sweep included, reaches them through the registry)
ABOVE = ("dlx.cli", "dlx.catalog", "dlx.papers", "dlx.kinds", "dlx.__main__")
TOP = ("dlx.papers", "dlx.kinds", "dlx.cli", "dlx.catalog")


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = list(p.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rpartition(".")[0]
        for node in ast.walk(ast.parse(p.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for n in names:
                target = resolve(n) if n.startswith("dlx") else None
                if target and target != m:
                    graph[m].add(target)
    return graph


def _loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


GRAPH = _graph(_modules())


def _under(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_no_import_loops():
    assert _loops(GRAPH) == []


def test_the_platform_never_imports_a_paper_a_kind_or_the_cli():
    bad = [(m, t) for m, targets in GRAPH.items() if not _under(m, ABOVE)
           for t in targets if _under(t, TOP)]
    assert bad == []


def test_kinds_never_import_a_paper():
    bad = [(m, t) for m, targets in GRAPH.items() if _under(m, ("dlx.kinds",))
           for t in targets if _under(t, ("dlx.papers",))]
    assert bad == []


def test_a_paper_imports_no_other_paper():
    def paper(m):
        return m.split(".")[2] if m.startswith("dlx.papers.") else None

    bad = [(m, t) for m, targets in GRAPH.items() if paper(m)
           for t in targets if paper(t) and paper(t) != paper(m)]
    assert bad == []


def test_the_checker_sees_a_loop_and_a_lazy_import(tmp_path):
    """The walk must be able to fail: a function-level import closing a loop is found."""
    mods = {"dlx.a": tmp_path / "a.py", "dlx.b": tmp_path / "b.py"}
    mods["dlx.a"].write_text("from dlx.b import f\n")
    mods["dlx.b"].write_text("def f():\n    from dlx.a import g\n")
    assert _loops(_graph(mods)) == [["dlx.a", "dlx.b"]]


def test_the_architecture_doc_names_only_paths_that_exist():
    """docs/architecture.md is the newcomer's map: every file or folder it names (``dlx/...``,
    ``conf/...``, ``tests/...``) exists, and every paper package and generic kind is on it."""
    import re

    repo = ROOT.parent
    text = (repo / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"(?<![\w/.])((?:dlx|conf|tests)/[\w./<>]*[\w/>])", text))
    assert len(named) > 30, "the checker found too few paths: its pattern is broken"
    missing = [p for p in sorted(named) if "<" not in p and not (repo / p).exists()]
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"
    for layer in ("papers", "kinds"):
        for pkg in sorted(p.name for p in (ROOT / layer).iterdir() if (p / "__init__.py").is_file()):
            assert pkg in text, f"docs/architecture.md does not mention dlx/{layer}/{pkg}"
