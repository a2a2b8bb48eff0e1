"""No comprehension in the kiosk names its variable after a module-level name it also calls.

Since Python 3.12 (PEP 709) a comprehension's variable shares its function's scope: the claim check's
``{stem for pair in offered for stem in pair}`` made the later ``stem(n)`` an unbound local there, and
every sentence of the LLM failed its check on the GPU machine's Python 3.12. Debian 13 ships 3.13.
"""

from __future__ import annotations

import ast
from pathlib import Path

KIOSK = Path(__file__).resolve().parent.parent / "kiosk"


def _module_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
    return names


def _comprehension_variables(function: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(function):
        if isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
            for generator in node.generators:
                found |= {t.id for t in ast.walk(generator.target) if isinstance(t, ast.Name)}
    return found


def test_no_comprehension_variable_shadows_a_module_name() -> None:
    shadowing = []
    for path in sorted(KIOSK.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module = _module_names(tree)
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                for name in sorted(_comprehension_variables(function) & module):
                    shadowing.append(f"{path.relative_to(KIOSK.parent)}:{function.lineno} {function.name}: {name}")
    assert not shadowing, shadowing
