"""A tool call's arguments checked against the tool's own JSON Schema (the one tools/list shows),
so what the agent is told and what the server accepts cannot drift apart. Every problem is one
sentence naming the argument and what it should be."""

from __future__ import annotations

import json
from typing import Any

from vfm.errors import PromptError

_TYPES = {"string": "a string", "number": "a number", "integer": "a whole number", "boolean": "true or false",
          "array": "a list", "object": "an object", "null": "null"}


def _where(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _type_names(t) -> str:
    names = [t] if isinstance(t, str) else list(t)
    return " or ".join(_TYPES.get(n, n) for n in names)


def check_arguments(tool: str, schema: dict, arguments: dict[str, Any] | None) -> dict[str, Any]:
    """``arguments`` (``{}`` when none were sent) if they fit ``schema``; else a PromptError."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    arguments = {} if arguments is None else arguments
    error = best_match(Draft202012Validator(schema).iter_errors(arguments))
    if error is None:
        return arguments
    where = _where(error.absolute_path)
    props = schema.get("properties", {})
    if error.validator == "required":
        name = error.message.split("'")[1] if "'" in error.message else error.message
        described = props.get(name, {}).get("description", "")
        raise PromptError(f"{tool}: missing argument '{name}'" + (f" ({described})" if described else ""))
    if error.validator == "additionalProperties":
        unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        where_in = f" in '{where}'" if where else ""
        raise PromptError(f"{tool}: unknown argument(s) {', '.join(map(repr, unknown))}{where_in}; "
                          f"it takes {', '.join(sorted(error.schema.get('properties', {})))}")
    if error.validator == "type":
        raise PromptError(f"{tool}: argument '{where}' must be {_type_names(error.validator_value)}, "
                          f"got {_show(error.instance)}")
    if error.validator == "enum":
        raise PromptError(f"{tool}: argument '{where}' is {_show(error.instance)}; it must be one of "
                          f"{', '.join(json.dumps(v) for v in error.validator_value)}")
    if error.validator in ("minItems", "maxItems") and error.validator_value == error.schema.get("minItems") == error.schema.get("maxItems"):
        raise PromptError(f"{tool}: argument '{where}' must have exactly {error.validator_value} items, "
                          f"got {_show(error.instance)}")
    raise PromptError(f"{tool}: argument '{where or 'arguments'}': {error.message}")
