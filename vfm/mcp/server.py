"""The MCP server: vfm's tools over stdio or streamable HTTP, on the SDK's low-level ``Server``.

Tools are listed with the JSON Schemas of :mod:`vfm.mcp.tools`; a call's arguments are checked
against that same schema, then the tool runs. Whatever goes wrong in a call comes back as a tool
error (``isError: true``) with one sentence; the server keeps serving. Unexpected exceptions are
also logged with their traceback on stderr for the operator, never sent to the agent.
"""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass, field

import mcp_types as types
from mcp.server.lowlevel import Server

from vfm.errors import VfmError
from vfm.mcp import content
from vfm.mcp.arguments import check_arguments
from vfm.mcp.models import LoadOptions, ModelPool
from vfm.mcp.roots import Roots
from vfm.mcp.tools import all_tools
from vfm.mcp.tools.base import Context, Tool


@dataclass
class Settings:
    """What `vfm mcp` flags set."""

    roots: list[str]
    choices: dict[str, list[str]]  # role -> model names offered, the default first
    db: str | None = None
    device: str | None = None
    precision: str = "auto"
    max_pixels: int | None = None
    backend: str = "torch"  # the segmenter's image encoder engine (vfm.models.backends)
    tools: list[Tool] = field(default_factory=all_tools)


def instructions(roots: Roots) -> str:
    return ("vfm: vision foundation models as tools (segment, detect, ground, classify, tag, search, track). "
            f"Give images as file paths under {roots.describe()}, or as base64 (a data: URL or raw). Coordinates "
            "are image pixels, origin top-left; boxes are [x0, y0, x1, y1]. Results are COCO-style JSON plus an "
            "overlay image.")


def build_server(settings: Settings, log=None) -> tuple[Server, Context]:
    from vfm import __version__

    log = log or sys.stderr
    roots = Roots(settings.roots)
    ctx = Context(roots=roots, models=ModelPool(LoadOptions(settings.device, settings.precision, settings.backend), log=log),
                  choices=settings.choices, max_pixels=settings.max_pixels, db=settings.db)
    tools = {t.name: t for t in settings.tools}
    schemas = {t.name: t.input_schema(settings.choices) for t in settings.tools}
    listing = [types.Tool(name=t.name, description=t.description, input_schema=schemas[t.name]) for t in settings.tools]

    async def list_tools(_ctx, _params) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listing)

    async def call_tool(_ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        tool = tools.get(params.name)
        if tool is None:
            return content.error(f"unknown tool '{params.name}'; this server has {', '.join(tools)}")
        try:
            args = check_arguments(tool.name, schemas[tool.name], params.arguments)
            return content.result(await tool.run(args, ctx))
        except VfmError as exc:
            return content.error(_prefixed(tool.name, str(exc)))
        except OSError as exc:
            where = f" '{exc.filename}'" if getattr(exc, "filename", None) else ""
            return content.error(f"{tool.name}: cannot use{where}: {exc.strerror or exc}; check the path and its permissions")
        except Exception as exc:  # noqa: BLE001 - the agent gets one line, the operator the traceback
            log.write(f"vfm mcp: {tool.name} failed:\n{traceback.format_exc()}")
            log.flush()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return content.error(f"{tool.name}: internal error: {type(exc).__name__}: {first} (the server's log has "
                                 "the details)")

    server = Server("vfm", version=__version__, instructions=instructions(roots),
                    on_list_tools=list_tools, on_call_tool=call_tool)
    return server, ctx


def _prefixed(tool: str, message: str) -> str:
    return message if message.startswith(f"{tool}:") else f"{tool}: {message}"


async def serve_stdio(server: Server) -> None:
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


async def serve_http(server: Server, host: str, port: int, log=None) -> None:
    import uvicorn

    log = log or sys.stderr
    app = server.streamable_http_app(host=host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning")
    log.write(f"vfm mcp: serving MCP (streamable HTTP) on http://{_url_host(host)}:{port}/mcp\n")
    log.flush()
    await uvicorn.Server(config).serve()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def run(settings: Settings, *, transport: str = "stdio", host: str = "127.0.0.1", port: int = 8765) -> None:
    import anyio

    server, ctx = build_server(settings)
    try:
        if transport == "stdio":
            anyio.run(serve_stdio, server)
        else:
            anyio.run(serve_http, server, host, port)
    finally:
        ctx.models.close()


__all__ = ["Settings", "build_server", "run", "serve_http", "serve_stdio"]
