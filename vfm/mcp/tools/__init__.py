"""The tools `vfm mcp` offers, one module per tool, in the order tools/list shows them.

A tool module defines ``TOOL = Tool(name, description, arguments, run, required)`` (see
:mod:`vfm.mcp.tools.base`); adding a tool is adding its module name here. A model it needs is a
:class:`~vfm.mcp.tools.base.ModelArg` of a role in :data:`vfm.mcp.models.ROLES`.
"""

from __future__ import annotations

import importlib

from vfm.mcp.tools.base import Tool

#: Tool modules under vfm.mcp.tools, in listing order.
TOOL_MODULES = ["segment", "everything", "detect", "ground", "classify", "tag", "caption", "ask", "read", "search", "track"]


def all_tools() -> list[Tool]:
    return [importlib.import_module(f"vfm.mcp.tools.{name}").TOOL for name in TOOL_MODULES]
