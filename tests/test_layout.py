"""The package's layout rules (issue 15), checked on the source: no import cycles among
hhjax modules (function-level imports included), no module over 400 lines, at most 8
modules directly in ``hhjax/``, and imports inside functions only for optional heavy
dependencies."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "hhjax"
MODULES = sorted(p for p in ROOT.rglob("*.py"))
# Optional or heavy dependencies a function may import lazily (each marked where it is).
LAZY_OK = {"pyabf", "pynwb", "h5py", "igor2", "neo", "scipy", "matplotlib", "IPython", "tqdm", "jax.experimental",
           "torch", "sbi", "neuron", "neuroml", "pyneuroml", "dask", "distributed", "dask_jobqueue", "efel"}


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """``(target module, lineno, inside_function)`` for every hhjax import in ``path``."""
    tree = ast.parse(path.read_text())
    here = _name(path)
    pkg = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out = []

    def visit(node, in_func):
        for child in ast.iter_child_nodes(node):
            nested = in_func or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = pkg.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    mod = ".".join(base + ([child.module] if child.module else []))
                else:
                    mod = child.module or ""
                targets = [mod] if child.module else [f"{mod}.{a.name}" for a in child.names]
                for t in targets:
                    out.append((t, child.lineno, in_func))
            elif isinstance(child, ast.Import):
                for a in child.names:
                    out.append((a.name, child.lineno, in_func))
            visit(child, nested)

    visit(tree, False)
    return out


def _resolve(target: str, known: set) -> str | None:
    while target and target not in known:
        target = target.rpartition(".")[0]
    return target or None


def test_no_import_cycles():
    known = {_name(p) for p in MODULES}
    graph = {m: set() for m in known}
    for p in MODULES:
        src = _name(p)
        for target, _, _ in _imports(p):
            if target.startswith("hhjax"):
                t = _resolve(target, known)
                # importing a package runs its __init__; a module importing its own package's
                # submodule through "from . import x" is an edge to x, resolved above.
                if t and t != src and not src.startswith(t + "."):
                    graph[src].add(t)
    # Tarjan-free cycle search: depth-first with colours.
    colour, stack, cycles = {}, [], []

    def dfs(node):
        colour[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if colour.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif not colour.get(nxt):
                dfs(nxt)
        stack.pop()
        colour[node] = 2

    for m in sorted(graph):
        if not colour.get(m):
            dfs(m)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_function_level_imports_are_only_optional_dependencies():
    bad = []
    for p in MODULES:
        for target, line, in_func in _imports(p):
            if in_func and not any(target == ok or target.startswith(ok + ".") for ok in LAZY_OK):
                bad.append(f"{p.relative_to(ROOT.parent)}:{line} imports {target}")
    assert not bad, bad


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(ROOT)) for p in MODULES])
def test_module_is_at_most_400_lines(path):
    assert len(path.read_text().splitlines()) <= 400


def test_at_most_8_modules_directly_in_the_package():
    top = sorted(p.name for p in ROOT.glob("*.py"))
    assert len(top) <= 8, top


def test_public_callables_are_fully_annotated():
    import inspect

    import hhjax

    missing = []
    for name in hhjax.__all__:
        obj = getattr(hhjax, name)
        if not inspect.isfunction(obj):
            continue
        sig = inspect.signature(obj)
        bare = [p for p, v in sig.parameters.items() if v.annotation is inspect.Parameter.empty]
        if bare or sig.return_annotation is inspect.Signature.empty:
            missing.append(f"{name}: {bare or ''}{' return' if sig.return_annotation is inspect.Signature.empty else ''}")
    assert not missing, missing
