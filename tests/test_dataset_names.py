"""No code outside the readers, the facts files and the synthetic writers tests a dataset's name (issue 9 §2).

Preprocessing, labels, reports and the CLI branch on dataset *facts*; a comparison with ``"deap"`` or
``"dreamer"`` anywhere else would make adding a dataset a code change again. The check parses every
module (so strings in docstrings and messages do not count) and flags: comparisons (``==``, ``!=``,
``in``, ``not in``) with a dataset name or a container of them, ``match``/``case`` on one, and a
``Literal[...]`` type listing one. Setting a name (the demo's config ``"name": "deap"``) is not a test.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "physiosync"
ALLOWED = ("data/readers/", "synth/")  # the readers and the synthetic writers know their formats by name
NAMES = {"deap", "dreamer"}


def _is_name(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.strip().lower() in NAMES
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_is_name(e) for e in node.elts)
    return False


def name_tests(source: str) -> list[int]:
    """Line numbers of dataset-name tests in a module's source."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and any(_is_name(x) for x in (node.left, *node.comparators)):
            lines.append(node.lineno)
        elif isinstance(node, ast.MatchValue) and _is_name(node.value):
            lines.append(node.lineno)
        elif (isinstance(node, ast.Subscript) and isinstance(node.value, (ast.Name, ast.Attribute))
              and getattr(node.value, "id", getattr(node.value, "attr", None)) == "Literal" and _is_name(node.slice)):
            lines.append(node.lineno)
    return sorted(lines)


def test_the_check_finds_each_kind_of_name_test() -> None:
    code = ('if ds.name == "deap": pass\nx = "DREAMER" != y\nz = n in ("deap", "other")\n'
            'match n:\n    case "dreamer": pass\nT = Literal["deap", "x"]\n'
            'cfg = {"name": "deap"}\nok = n == "deap-like"\n')
    assert name_tests(code) == [1, 2, 3, 5, 6]


def test_no_dataset_name_is_tested_outside_readers_and_synthetic_writers() -> None:
    found = []
    for f in sorted(SRC.rglob("*.py")):
        rel = f.relative_to(SRC).as_posix()
        if rel.startswith(ALLOWED):
            continue
        found += [f"{rel}:{line}" for line in name_tests(f.read_text())]
    assert not found, f"dataset-name tests outside readers/facts/synth: {found}"
