"""What a tool call answers: the task's JSON document (as ``vfm <task> --json`` prints it) as text and
as structured content, plus an overlay PNG where the task has something to draw; or a tool error
(``isError: true``) whose text is one sentence."""

from __future__ import annotations

import base64
import io
import json

import mcp_types as types

from vfm.mcp.tools.base import Answer

def png_base64(image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def result(answer: Answer) -> types.CallToolResult:
    content: list = [types.TextContent(type="text", text=json.dumps(answer.doc))]
    overlays = answer.overlay if isinstance(answer.overlay, list) else [answer.overlay]
    for image in overlays:
        if image is not None:
            content.append(types.ImageContent(type="image", data=png_base64(image), mime_type="image/png"))
    return types.CallToolResult(content=content, structured_content=answer.doc, is_error=False)


def error(message: str) -> types.CallToolResult:
    line = " ".join(str(message).split()) or "the tool failed without a message"
    return types.CallToolResult(content=[types.TextContent(type="text", text=line)], is_error=True)
