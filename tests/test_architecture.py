"""The service layer must stay free of Textual, so it can be used and tested without a UI."""

import ast
import subprocess
import sys
from pathlib import Path

import dockerscope.service

SERVICE_DIR = Path(dockerscope.service.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_service_module_imports_textual() -> None:
    offenders = {
        path.name: sorted(name for name in _imported_modules(path) if name.split(".")[0] in {"textual", "rich"})
        for path in SERVICE_DIR.rglob("*.py")
    }
    assert {name: found for name, found in offenders.items() if found} == {}
    assert len(offenders) >= 5


def test_importing_the_service_loads_no_textual() -> None:
    code = "import sys, dockerscope.service; print(any(m.split('.')[0] == 'textual' for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


PACKAGE_DIR = SERVICE_DIR.parent
# What depends on a source only through the `ImageSource` protocol.
SOURCE_USERS = [*sorted((PACKAGE_DIR / "ui").glob("*.py")), PACKAGE_DIR / "analyze.py"]
CONCRETE_SOURCES = {"DockerService", "RecordedSource", "demo_source"}


def _names_used(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.alias):
            names.add(node.name)
    return names


def test_the_ui_and_analyze_import_the_service_package_only() -> None:
    offenders = {
        path.name: sorted(name for name in _imported_modules(path) if name.startswith("dockerscope.service."))
        for path in SOURCE_USERS
    }
    assert {name: found for name, found in offenders.items() if found} == {}
    assert len(offenders) >= 20


def test_the_ui_and_analyze_never_name_a_concrete_source() -> None:
    offenders = {path.name: sorted(_names_used(path) & CONCRETE_SOURCES) for path in SOURCE_USERS}
    assert {name: found for name, found in offenders.items() if found} == {}
