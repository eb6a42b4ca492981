"""Helpers for the tests that read dockerscope's own source with `ast`."""

from __future__ import annotations

import ast


def dotted_name(node: ast.expr) -> str:
    """`a.b.c` for a name or an attribute chain; "" for anything else (a call, a subscript)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted_name(node.value)}.{node.attr}"
    return ""
