"""What every tool is made of: a name, a description, a JSON Schema for its arguments and an async
``run(args, ctx)`` that returns an :class:`Answer`. Shared schema pieces live here so every tool
spells an image, a point or a class list the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import anyio

from vfm.errors import PromptError


@dataclass
class Answer:
    """A tool's result: ``doc``, the task's JSON document, and an optional ``overlay`` (a PIL image, or a
    list of them)."""

    doc: dict[str, Any]
    overlay: Any = None


@dataclass(frozen=True)
class ModelArg:
    """An argument choosing a model of ``role``: in the schema, a string enum of the models the server
    was started with for that role (``vfm mcp --segmenter A --segmenter B``), the first the default."""

    role: str
    description: str


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    #: argument name -> JSON Schema (or a :class:`ModelArg`), in the order the agent reads them
    arguments: dict[str, Any]
    run: Callable[[dict[str, Any], "Context"], Awaitable[Answer]]
    required: tuple[str, ...] = ()

    def input_schema(self, choices: dict[str, list[str]]) -> dict[str, Any]:
        props = {}
        for name, spec in self.arguments.items():
            if isinstance(spec, ModelArg):
                names = choices[spec.role]
                spec = {"type": "string", "enum": list(names),
                        "description": f"{spec.description} (default {names[0]})"}
            props[name] = spec
        schema = {"type": "object", "properties": props, "additionalProperties": False}
        if self.required:
            schema["required"] = list(self.required)
        return schema


@dataclass
class Context:
    """What a tool call can use: the allowed roots, the model pool and the server's settings."""

    roots: Any  # vfm.mcp.roots.Roots
    models: Any  # vfm.mcp.models.ModelPool
    choices: dict[str, list[str]]  # role -> model names offered, the default first
    max_pixels: int | None = None
    db: str | None = None

    def model(self, args: dict[str, Any], role: str, key: str = "model") -> tuple[str, str]:
        """(role, name) of the model a call asked for, or the role's default."""
        return role, args.get(key) or self.choices[role][0]

    async def image(self, value: str, what: str = "image"):
        """The decoded ``image`` argument (path under a root, data URL or base64), off the event loop."""
        from vfm.mcp.inputs import read_image

        return await anyio.to_thread.run_sync(lambda: read_image(value, self.roots, max_pixels=self.max_pixels, what=what))


# ------------------------------------------------------------------------------ schema pieces
IMAGE = {"type": "string", "minLength": 1,
         "description": "the image: a file path under the server's roots (relative to a root, or absolute inside "
                        "one), a data URL (data:image/png;base64,...), or the file's bytes in base64"}
POINT = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2,
         "description": "[x, y] in image pixels (origin top-left)"}
BOX = {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4,
       "description": "[x0, y0, x1, y1] in image pixels (XYXY, origin top-left)"}
CLASSES = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1, "maxItems": 1000,
           "description": 'names to look for, e.g. ["cat", "remote control"]; "prompt: name" asks the model for '
                          'prompt and reports name, e.g. "person: astronaut"'}


def probability(description: str) -> dict[str, Any]:
    return {"type": "number", "minimum": 0, "maximum": 1, "description": description}


def count(description: str, low: int = 1, high: int | None = None) -> dict[str, Any]:
    spec = {"type": "integer", "minimum": low, "description": description}
    if high is not None:
        spec["maximum"] = high
    return spec


def classes(args: dict[str, Any], key: str = "classes", what: str = "class list") -> list[str]:
    """The class names of ``args[key]`` through vfm's own parsing (blank names dropped, duplicates merged,
    ``prompt: class`` checked); an empty list is a PromptError."""
    from vfm.tasks.classes import parse_classes
    from vfm.tasks.ontology import Ontology

    names = parse_classes(args[key], what=what)
    Ontology.parse(names, what=what)
    return names


def categories_of(names: list[str]) -> list[str]:
    """The category names of a class list: the right side of each ``prompt: name``."""
    from vfm.tasks.ontology import Ontology

    return list(Ontology.parse(names).classes)


def require_one(tool: str, args: dict[str, Any], *keys: str) -> None:
    if not any(args.get(k) not in (None, [], "") for k in keys):
        raise PromptError(f"{tool}: give at least one of {', '.join(keys)}")
