"""No daemon text reaches the terminal unsanitised or as markup: a static check of every place
the UI, `analyze` and the CLI put text on screen.

Each sink (a notification, a Static, a Rich Text, a table row, a tree label, a border title, a key
description, a print or write) must get a *safe* expression:

- a literal, or an f-string whose parts are safe or numbers;
- a call of `plain`/`sanitize` or of a short allow-list of helpers that only format numbers;
- a Rich Text: every way the checked code makes one (`Text(...)`, `Text.assemble(...)`, `.append`
  on it, `plain(...)`) is a sink checked here, and markup parsers (`from_markup`…) are banned;
  so a call of a function annotated to return Text, or a name annotated as Text, is safe;
- a local name every value assigned to which is safe; an element of a literal table.

A number is a numeric literal, `len(...)`, a field the service's models annotate as a number or a
time, or a value formatted with a spec a string would refuse (`:d`, `:.1f`, `:%H:%M`). Every
`notify` must also pass `markup=False`: Textual parses a notification's message as markup by
default, and a daemon's `[/]` then ends the app."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from source_scan import dotted_name

PACKAGE = Path(__file__).parent.parent / "tui" / "dockerscope"
MODULES = [*sorted((PACKAGE / "ui").glob("*.py")), *(PACKAGE / name for name in ("analyze.py", "cli.py", "connect.py"))]
MODELS = sorted((PACKAGE / "service").glob("*.py"))

# Helpers whose result is safe whatever their arguments, and why.
SAFE_HELPERS = {
    "plain": "sanitises and returns Rich Text that is never parsed as markup",
    "sanitize": "the sanitiser: control characters become visible escapes",
    "human_size": "formats a byte count",
    "signed_size": "formats a signed byte count",
    "relative_time": "formats a datetime",
    "changes_summary": "layer_table: three counts of a writable layer's changes",
    "details": "file_tree: an entry's size, mode and uid:gid, all numbers",
    "mode_and_owner": "file_tree: an entry's mode bits and uid:gid, numbers",
    "hex_line": "file_view_screen: an offset, hex digits and printable ASCII (0x20-0x7e) only",
    "line_number": "file_view_screen: a right-aligned line number",
    "mib": "file_view_screen: formats a byte count",
    "json.dumps": "ensure_ascii (checked to be on) escapes every control and non-ASCII character",
}
# Helpers that format a number with a word the caller passes: that word must be safe itself.
SAFE_WITH_SAFE_ARGUMENTS = {"counted"}
NUMBER_CALLS = {"len", "round", "int", "min", "max", "sum", "abs"}
# Rich and Textual parsers of markup or ANSI: nothing in the checked code may call them.
MARKUP_PARSERS = {"from_markup", "from_ansi", "render_markup"}
# Sites the rules cannot follow, each with why it is safe. Keep this short.
EXEMPT = {
    ("ui/help_screen.py", "where"): "section names: literals app.py passes to HelpScreen",
    ("ui/help_screen.py", "key_label(binding.key)"): "key names of the literal Binding(...) calls",
    ("ui/help_screen.py", "binding.description"): "every Binding description is a literal (checked below)",
    ("ui/file_tree.py", "icon"): "Textual's own expand/collapse icons, or spaces",
    ("ui/layer_table.py", "cells"): "rows of _history_cells/_boundary_cells/_writable_cells: -> tuple[Text, ...]",
    ("ui/layer_info_screen.py", "f'{name:<14}'"): "names from the literal `fields` (`name` is reused for sharers)",
}
TEXT_TYPES = {"Text", "tuple[Text, ...]", "list[Text]"}


@dataclass(frozen=True)
class Site:
    module: str
    line: int
    sink: str
    problem: str  # "" when the site is safe

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: {self.sink}: {self.problem}"


@dataclass(frozen=True)
class _Element:
    """A name bound by unpacking `source` (a table lookup, or a loop over a literal list): the
    `index`-th element of each of its rows."""

    source: ast.expr
    index: int


def _call_name(call: ast.Call) -> str:
    """`plain` for plain(...), `Text.assemble`, `json.dumps`, `_title` for self._title(...)."""
    return dotted_name(call.func).removeprefix("self.")


def _last(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a function's body (or of a module and its class bodies), not those of the
    functions defined inside it: each function is checked with its own names."""
    skipped: tuple[type[ast.AST], ...] = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
    if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef):
        skipped += (ast.ClassDef,)
    pending = list(ast.iter_child_nodes(scope))
    while pending:
        node = pending.pop()
        yield node
        if not isinstance(node, skipped):
            pending.extend(ast.iter_child_nodes(node))


Binding_ = ast.expr | _Element | None


class _Scope:
    """The values bound to each name in one function or module (None: a binding that cannot be
    followed, such as a parameter or a loop over something unknown)."""

    def __init__(self, scope: ast.AST) -> None:
        self.values: dict[str, list[Binding_]] = {}
        self.text_typed: set[str] = set()
        if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = scope.args
            for argument in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
                self.values.setdefault(argument.arg, []).append(None)
                if argument.annotation is not None and _text_typed(argument.annotation):
                    self.text_typed.add(argument.arg)
        for node in _own_nodes(scope):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    self._bind(target, node.value)
            elif isinstance(node, ast.AnnAssign | ast.AugAssign | ast.NamedExpr) and node.value is not None:
                self._bind(node.target, node.value)
                if (
                    isinstance(node, ast.AnnAssign)
                    and isinstance(node.target, ast.Name)
                    and _text_typed(node.annotation)
                ):
                    self.text_typed.add(node.target.id)
            elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
                self._bind(node.target, None, loop_over=node.iter)
            elif isinstance(node, ast.With | ast.AsyncWith):
                for item in node.items:
                    if item.optional_vars is not None:
                        self._bind(item.optional_vars, None)

    def _bind(self, target: ast.expr, value: ast.expr | None, loop_over: ast.expr | None = None) -> None:
        if isinstance(target, ast.Name):
            self.values.setdefault(target.id, []).append(value)
        elif isinstance(target, ast.Tuple | ast.List):
            source = loop_over if loop_over is not None else value
            for index, element in enumerate(target.elts):
                if isinstance(element, ast.Name):
                    bound = _Element(source, index) if source is not None else None
                    self.values.setdefault(element.id, []).append(bound)


def _text_typed(annotation: ast.expr) -> bool:
    """An annotation whose values can only be Rich Texts (`Text`, `dict[str, tuple[Text, ...]]`)."""
    words = set(re.findall(r"[A-Za-z_]+", ast.unparse(annotation)))
    return "Text" in words and words <= {"Text", "tuple", "list", "dict", "str", "Sequence", "Mapping"}


class _Checker:
    def __init__(self, module: str, tree: ast.Module, text_functions: set[str], numeric_fields: set[str]) -> None:
        self.module = module
        self.text_functions = text_functions
        self.numeric_fields = numeric_fields
        self.module_scope = _Scope(tree)
        self.sites: list[Site] = []

    # Safe expressions.

    def safe(self, node: Binding_, scope: _Scope, seen: frozenset[str] = frozenset()) -> bool:
        if node is None:
            return False
        if isinstance(node, _Element):
            return self.safe_element(node, scope, seen)
        if isinstance(node, ast.Constant):
            return isinstance(node.value, str | int | float | bool) or node.value is None
        if isinstance(node, ast.JoinedStr):
            return all(self.safe(part, scope, seen) for part in node.values)
        if isinstance(node, ast.FormattedValue):
            return self.safe(node.value, scope, seen) or self.number(node.value, scope) or _refuses_text(node)
        if isinstance(node, ast.IfExp):
            return self.safe(node.body, scope, seen) and self.safe(node.orelse, scope, seen)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
            return self.safe(node.left, scope, seen) and self.safe(node.right, scope, seen)
        if isinstance(node, ast.Subscript):  # a piece of a safe string, or a Text out of a Text table
            return self.safe(node.value, scope, seen)
        if isinstance(node, ast.Name):
            return self.safe_name(node.id, scope, seen)
        if isinstance(node, ast.Call):
            return self.safe_call(node, scope, seen)
        return self.number(node, scope)

    def safe_name(self, name: str, scope: _Scope, seen: frozenset[str]) -> bool:
        if name in seen:
            return False
        if name in scope.text_typed:
            return True
        if name in scope.values:
            return all(self.safe(value, scope, seen | {name}) for value in scope.values[name])
        if scope is not self.module_scope and name in self.module_scope.values:
            return self.safe_name(name, self.module_scope, seen)
        return False

    def safe_element(self, element: _Element, scope: _Scope, seen: frozenset[str]) -> bool:
        """Safe when the source is a literal table (directly, by name, or looked up in one) whose
        rows all hold a safe value at the element's index."""
        source = element.source
        if isinstance(source, ast.Subscript):
            source = source.value
        tables = [source]
        if isinstance(source, ast.Name):
            owner = scope if source.id in scope.values else self.module_scope
            tables = [value for value in owner.values.get(source.id, [None]) if not isinstance(value, _Element)]
        for table in tables:
            if isinstance(table, ast.Dict):
                rows = table.values
            elif isinstance(table, ast.List | ast.Tuple):
                rows = table.elts
            else:
                return False
            for row in rows:
                if not isinstance(row, ast.Tuple) or len(row.elts) <= element.index:
                    return False
                if not self.safe(row.elts[element.index], scope, seen):
                    return False
        return True

    def safe_call(self, call: ast.Call, scope: _Scope, seen: frozenset[str]) -> bool:
        name = _call_name(call)
        if name == "json.dumps":
            return not any(
                keyword.arg == "ensure_ascii" and not _is_constant(keyword.value, True) for keyword in call.keywords
            )
        if name in SAFE_HELPERS or _last(name) in SAFE_HELPERS or name in NUMBER_CALLS:
            return True
        if name in SAFE_WITH_SAFE_ARGUMENTS:
            return all(self.safe(argument, scope, seen) for argument in call.args[1:])
        if name == "str" and len(call.args) == 1:
            return self.number(call.args[0], scope)
        # A Rich Text made here: its pieces are sinks of their own, checked where they are built.
        if name in {"Text", "Text.assemble"}:
            return True
        return _last(name) in self.text_functions

    def number(self, node: ast.expr, scope: _Scope) -> bool:
        if isinstance(node, ast.Constant):
            return isinstance(node.value, int | float) and not isinstance(node.value, bool)
        if isinstance(node, ast.BinOp):
            return self.number(node.left, scope) and self.number(node.right, scope)
        if isinstance(node, ast.UnaryOp):
            return self.number(node.operand, scope)
        if isinstance(node, ast.Call):
            return _call_name(node) in NUMBER_CALLS
        if isinstance(node, ast.Attribute):
            return node.attr in self.numeric_fields
        return False

    # Sinks.

    def record(self, node: ast.AST, sink: str, problem: str = "") -> None:
        self.sites.append(Site(self.module, getattr(node, "lineno", 0), sink, problem))

    def check_value(self, node: ast.AST, sink: str, value: ast.expr | None, scope: _Scope) -> None:
        if value is None:
            return
        if isinstance(value, ast.Tuple) and value.elts:  # (text, style) in Text.assemble
            value = value.elts[0]
        if isinstance(value, ast.Starred):
            value = value.value
        ok = self.safe(value, scope) or (self.module, ast.unparse(value)) in EXEMPT
        self.record(node, sink, "" if ok else f"unchecked text: {ast.unparse(value)}")

    def check_call(self, call: ast.Call, scope: _Scope, text_names: set[str]) -> None:
        name = _call_name(call)
        method = _last(name)
        keywords = {keyword.arg: keyword.value for keyword in call.keywords if keyword.arg}
        first = call.args[0] if call.args else None
        if method in MARKUP_PARSERS:
            self.record(call, "markup parser", f"parses text as markup: {ast.unparse(call.func)}")
        elif method == "notify":
            self.check_value(call, "notify", first or keywords.get("message"), scope)
            self.check_value(call, "notify title", keywords.get("title"), scope)
            if not _is_constant(keywords.get("markup"), False):
                self.record(call, "notify", "markup=False missing")
        elif name == "Static":
            self.check_value(call, "Static", first or keywords.get("content"), scope)
        elif name == "Text":
            self.check_value(call, "Text", first or keywords.get("text"), scope)
        elif name == "Text.assemble":
            for argument in call.args:
                self.check_value(call, "Text.assemble", argument, scope)
        elif method in {"update", "set_label"} and call.args:
            self.check_value(call, method, first, scope)
        elif name == "print":
            for argument in call.args:
                self.check_value(call, "print", argument, scope)
        elif method == "write" and call.args:
            self.check_value(call, "write", first, scope)
        elif name == "Binding":
            self.check_value(call, "Binding description", _argument(call, 2, "description"), scope)
        elif method == "add_row":
            for argument in call.args:
                self.check_value(call, "add_row", argument, scope)
        elif method in {"add", "add_leaf"} and len(call.args) + len(call.keywords) > 1:  # not set.add(x)
            self.check_value(call, "Tree.add", first or keywords.get("label"), scope)
        elif method in {"append", "append_text"} and isinstance(call.func, ast.Attribute):
            receiver = call.func.value
            if isinstance(receiver, ast.Name) and receiver.id in text_names:
                self.check_value(call, f"Text.{method}", first, scope)

    def check_scope(self, node: ast.AST) -> None:
        scope = self.module_scope if isinstance(node, ast.Module) else _Scope(node)
        text_names = set(scope.text_typed) | {
            name
            for name, values in scope.values.items()
            if any(isinstance(value, ast.Call) and self.makes_text(value) for value in values)
        }
        for child in _own_nodes(node):
            if isinstance(child, ast.Call):
                self.check_call(child, scope, text_names)
            elif isinstance(child, ast.Assign | ast.AugAssign | ast.AnnAssign):
                targets = child.targets if isinstance(child, ast.Assign) else [child.target]
                for target in targets:
                    if isinstance(target, ast.Attribute) and target.attr in {"border_title", "border_subtitle"}:
                        self.check_value(child, target.attr, child.value, scope)

    def makes_text(self, value: ast.Call) -> bool:
        name = _call_name(value)
        return name in {"Text", "Text.assemble", "plain"} or _last(name) in self.text_functions


def _argument(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    if len(call.args) > position:
        return call.args[position]
    return next((item.value for item in call.keywords if item.arg == keyword), None)


def _is_constant(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def _refuses_text(node: ast.FormattedValue) -> bool:
    """Whether the value's format spec is one a string refuses (`:d`, `:,`, `:.1f`, `:%H:%M`): then
    the value is a number or a time, never text."""
    spec = node.format_spec
    if not isinstance(spec, ast.JoinedStr) or not all(isinstance(part, ast.Constant) for part in spec.values):
        return False
    try:
        format("text", "".join(str(part.value) for part in spec.values if isinstance(part, ast.Constant)))
    except (ValueError, TypeError):
        return True
    return False


def _text_functions(trees: list[ast.Module]) -> set[str]:
    """Functions annotated to return Rich Text: their bodies are checked like any other code."""
    return {
        node.name
        for tree in trees
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.returns is not None
        and ast.unparse(node.returns).strip("'\"") in TEXT_TYPES
    }


def numeric_fields() -> set[str]:
    """Fields and properties the service's classes annotate as numbers or times (and never as
    anything else), e.g. `size`, `layer_count`, `created`."""
    numeric = {"int", "float", "bool", "datetime"}
    found: set[str] = set()
    other: set[str] = set()
    for path in MODELS:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                name, annotation = node.target.id, node.annotation
            elif isinstance(node, ast.FunctionDef) and node.returns is not None:
                name, annotation = node.name, node.returns
            else:
                continue
            kinds = {part.strip() for part in ast.unparse(annotation).strip("'\"").split("|")} - {"None"}
            (found if kinds and kinds <= numeric else other).add(name)
    return found - other


def check_sources(sources: dict[str, str]) -> list[Site]:
    """Every sink site in the given modules (name to source), safe or not."""
    trees = {name: ast.parse(source) for name, source in sources.items()}
    text_functions = _text_functions(list(trees.values()))
    fields = numeric_fields()
    sites: list[Site] = []
    for name, tree in trees.items():
        checker = _Checker(name, tree, text_functions, fields)
        checker.check_scope(tree)  # module level and class bodies: BINDINGS
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                checker.check_scope(function)
        sites += checker.sites
    return sites


def _project_sites() -> list[Site]:
    return check_sources({path.relative_to(PACKAGE).as_posix(): path.read_text() for path in MODULES})


def test_every_text_the_app_shows_is_sanitised_and_never_markup() -> None:
    problems = [str(site) for site in _project_sites() if site.problem]
    assert not problems, "\n".join(problems)


def test_the_check_finds_the_known_sites() -> None:
    """It cannot pass vacuously: it sees the notifications, statics, tree labels, rows and key
    descriptions the code has, and the places analyze and the CLI print."""
    sites = _project_sites()
    by_sink: dict[str, int] = {}
    for site in sites:
        by_sink[site.sink] = by_sink.get(site.sink, 0) + 1
    assert len(sites) >= 200, by_sink
    assert by_sink.get("notify", 0) >= 7, by_sink
    assert by_sink.get("Binding description", 0) >= 40, by_sink
    for sink in ["Static", "Text", "Text.assemble", "Text.append", "update", "add_row", "Tree.add", "write", "print"]:
        assert by_sink.get(sink, 0) >= 1, (sink, by_sink)
    modules = {site.module for site in sites}
    printing = {"analyze.py", "connect.py"}
    assert printing | {"ui/explorer.py", "ui/layer_contents_screen.py", "ui/inspect_tree.py"} <= modules
    assert {"size", "layer_count", "created"} <= numeric_fields()
    assert not {"id", "name", "state", "reason"} & numeric_fields()


BAD = """
from rich.text import Text
from textual.binding import Binding
from textual.widgets import Static

MARKS = {"a": ("+", "green"), "b": (name_from_elsewhere, "red")}


class Screen:
    BINDINGS = [Binding("x", "y", name_from_elsewhere)]

    def show(self, error, name, rows, item):
        self.notify(error.reason, markup=False)
        self.notify(plain(error.reason))
        self.notify(f"{name} went away", markup=False)
        self.notify(f"{item.size} bytes, {item.count:d} files, {len(rows)} rows", markup=False)
        line = Text("ok")
        line.append(name)
        label = error.reason
        self.query_one(Static).update(label)
        yield Static(name)
        self.border_title = name
        table.add_row(plain(name), name, Text(item.short_id))
        node.add(name, data=None)
        print(error.reason, file=sys.stderr)
        out.write(json.dumps(rows, ensure_ascii=False))
        mark, color = MARKS["a"]
        yield Static(Text(mark))
        self.update(Text.from_markup("[b]x[/b]"))
        for row in rows:
            self.notify(sanitize(row), markup=False)
            text = Text.assemble((row, "bold"))
"""


def test_the_check_flags_unsanitised_text_and_markup() -> None:
    problems = [(site.line, site.sink) for site in check_sources({"bad.py": BAD}) if site.problem]
    lines = BAD.splitlines()
    assert sorted((lines[line - 1].strip(), sink) for line, sink in problems) == sorted(
        [
            ('BINDINGS = [Binding("x", "y", name_from_elsewhere)]', "Binding description"),
            ("self.notify(error.reason, markup=False)", "notify"),
            ("self.notify(plain(error.reason))", "notify"),  # markup=False missing
            ('self.notify(f"{name} went away", markup=False)', "notify"),
            ("line.append(name)", "Text.append"),
            ("self.query_one(Static).update(label)", "update"),
            ("yield Static(name)", "Static"),
            ("self.border_title = name", "border_title"),
            ("table.add_row(plain(name), name, Text(item.short_id))", "add_row"),
            ("table.add_row(plain(name), name, Text(item.short_id))", "Text"),
            ("node.add(name, data=None)", "Tree.add"),
            ("print(error.reason, file=sys.stderr)", "print"),
            ("out.write(json.dumps(rows, ensure_ascii=False))", "write"),
            ("yield Static(Text(mark))", "Text"),  # MARKS has a row whose mark is not a literal
            ('self.update(Text.from_markup("[b]x[/b]"))', "markup parser"),
            ('self.update(Text.from_markup("[b]x[/b]"))', "update"),
            ('text = Text.assemble((row, "bold"))', "Text.assemble"),
        ]
    )
