"""`vfm mcp`: vfm's tasks as tools for LLM agents over the Model Context Protocol.

    server.py     the MCP server: tools/list and tools/call over stdio or streamable HTTP
    tools/        one module per tool (its JSON Schema and what it runs); tools/__init__.py lists them
    arguments.py  tool arguments checked against the tool's JSON Schema, one sentence per problem
    roots.py      the folders a tool may read (--root), paths outside them refused
    inputs.py     an ``image`` argument (a path under a root, a data: URL or raw base64) -> pixels
    models.py     models loaded on first use, kept warm, one call at a time per model
    content.py    a tool's answer: the JSON document and an overlay PNG, or a one-line tool error

Nothing here is imported by the rest of vfm; ``mcp`` (the SDK, extra ``vfm[mcp]``) is imported only
by server.py and content.py.
"""
