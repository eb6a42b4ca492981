"""Every reviewed SVG snapshot belongs to a snapshot test. syrupy fails a run that leaves a snapshot
unused, but not when pytest-xdist spreads the tests over workers, as scripts/test.sh does."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent
SNAPSHOTS = TESTS / "__snapshots__"


def _snapshot_tests(module: Path) -> set[str]:
    """The names of the test functions of `module` that take the `snap_compare` fixture."""
    tree = ast.parse(module.read_text(encoding="utf-8"))
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
        and any(argument.arg == "snap_compare" for argument in node.args.args)
    }


def test_every_snapshot_file_belongs_to_a_snapshot_test() -> None:
    directories = sorted(path for path in SNAPSHOTS.iterdir() if path.is_dir())
    assert directories, f"no snapshots under {SNAPSHOTS}"
    for directory in directories:
        module = TESTS / f"{directory.name}.py"
        tests = _snapshot_tests(module) if module.is_file() else set()
        # A parametrized test's snapshot is named `test_name[parameters].svg`.
        stale = sorted(path.name for path in directory.iterdir() if path.stem.split("[")[0] not in tests)
        assert not stale, f"snapshots that no test of {module.name} takes (delete them): {stale}"
