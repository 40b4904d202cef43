"""`vfm mcp [--transport stdio|http] [--root DIR ...] [--host H] [--port P] [--segmenter M ...] [--db PATH]`.

An MCP (Model Context Protocol) server: every vfm task as a tool an LLM agent can call (segment,
everything, detect, ground, classify, tag, search, track). Over stdio (default; what desktop MCP
clients launch) or streamable HTTP at http://HOST:PORT/mcp. Tools read images and videos only
under the --root folders (default: the current directory); images may also come as base64.
Models load on first use and stay loaded. Each model option may be repeated: the first is the
default, all of them are offered to the agent as the tools' "model" choices. See docs/agents.md.
"""

from __future__ import annotations

import argparse

from vfm.errors import PromptError


def add_parser(sub) -> None:
    from vfm.mcp.models import ROLES

    p = sub.add_parser("mcp", help="MCP server: vfm's tasks as tools for LLM agents (stdio or HTTP)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--transport", choices=("stdio", "http"), default="stdio",
                   help="stdio (default: the client starts vfm mcp) or http (streamable HTTP at /mcp)")
    p.add_argument("--root", action="append", default=None, metavar="DIR",
                   help="a folder the tools may read images and videos from; repeatable (default: the current directory)")
    p.add_argument("--host", default="127.0.0.1", help="--transport http: address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="--transport http: port (default 8765)")
    m = p.add_argument_group("models (each repeatable: the first is the default, all are offered to the agent)")
    for role in ROLES.values():
        m.add_argument(f"--{role.name}", action="append", default=None, metavar="M",
                       help=f"{role.help} (default {role.default})")
    m.add_argument("--db", default=None, metavar="PATH", help="an index made by vfm index, for the search tool")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA when available)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"], help="model precision")
    from vfm.cli.common import add_backend_options

    add_backend_options(p)  # the segmenter's image encoder engine
    p.add_argument("--max-pixels", type=int, default=None, help="refuse images with more pixels (default 100M)")
    p.set_defaults(func=run)


def run(args) -> int:
    import ipaddress
    import os
    import sys

    from vfm.errors import require

    require("mcp", "mcp")  # one line naming the extra when the SDK is missing
    from vfm.mcp.models import ROLES
    from vfm.mcp.server import Settings, run as serve

    from vfm.models.backends import check_backend

    check_backend(args.backend, args.precision)
    if not 0 < args.port < 65536:
        raise PromptError(f"--port {args.port} is not a port number (1-65535)")
    if args.db is not None and not os.path.isdir(args.db):
        raise PromptError(f"--db '{args.db}' is not an index folder; build one with vfm index FOLDER --db {args.db}")
    choices = {}
    for role in ROLES.values():
        names = [n.strip() for n in (getattr(args, role.name) or [role.default]) if n.strip()]
        if not names:
            raise PromptError(f"--{role.name} is empty; give a model alias, hub id or directory")
        choices[role.name] = list(dict.fromkeys(names))
    settings = Settings(roots=args.root or [os.getcwd()], choices=choices, db=args.db, device=args.device,
                        precision=args.precision, max_pixels=args.max_pixels, backend=args.backend)
    if args.transport == "http":
        try:
            loopback = ipaddress.ip_address(args.host).is_loopback
        except ValueError:
            loopback = args.host == "localhost"
        if not loopback:
            sys.stderr.write(f"vfm mcp: warning: --host {args.host} is reachable from other machines and the MCP "
                             "endpoint has no authentication; put it behind a proxy that checks who calls\n")
    serve(settings, transport=args.transport, host=args.host, port=args.port)
    return 0
