"""Class lists given by users: "cat, remote control" → ["cat", "remote control"].

Documented behaviour: entries are split on commas and newlines, surrounding whitespace is stripped,
empty entries are ignored, and duplicates (case-insensitive) are dropped keeping the first spelling.
An empty list is an error. Order is preserved: class ids are positions in the returned list.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

from vfm.errors import PromptError

MAX_CLASS_CHARS = 200


def parse_classes(classes: str | Iterable[str], *, what: str = "class list") -> list[str]:
    """Normalize a class list given as one string or an iterable of strings."""
    if classes is None:
        raise PromptError(f"no {what} given; pass names separated by commas, e.g. \"person, forklift\"")
    items = re.split(r"[,\n]", classes) if isinstance(classes, str) else [str(c) for c in classes]
    out: list[str] = []
    seen: set[str] = set()
    for raw in items:
        name = " ".join(raw.split())
        if not name:
            continue
        if len(name) > MAX_CLASS_CHARS:
            raise PromptError(f"class name '{name[:40]}...' is {len(name)} characters long; keep names under {MAX_CLASS_CHARS}")
        key = name.lower()
        if key in seen:
            continue
        seen.add(key)
        out.append(name)
    if not out:
        raise PromptError(f"the {what} is empty; pass names separated by commas, e.g. \"person, forklift\"")
    return out


def read_vocabulary(path: str | Path) -> list[str]:
    """Read a vocabulary file: one class name per line (commas also split), '#' starts a comment."""
    p = Path(path)
    if not p.is_file():
        raise PromptError(f"vocabulary file '{path}' does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PromptError(f"vocabulary file '{path}' is not UTF-8 text") from exc
    lines = [line.split("#", 1)[0] for line in text.splitlines()]
    return parse_classes("\n".join(lines), what=f"vocabulary in '{path}'")
