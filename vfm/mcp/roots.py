"""The folders an MCP client may read from (``vfm mcp --root DIR``, repeatable; default: the
current directory).

A path is resolved the way the operating system would open it (``..`` and every symlink followed)
and must land inside one of the roots; anything else is refused before it is opened. A relative
path is looked up under each root in turn (the first that holds it wins).
"""

from __future__ import annotations

import os
from pathlib import Path

from vfm.errors import VfmError


class OutsideRootsError(VfmError):
    """A path that resolves outside every allowed root (``..``, an absolute path, a symlink out)."""

    http_status = 403


class Roots:
    """Allowed folders, resolved once at start."""

    def __init__(self, folders: list[str | os.PathLike]):
        self.folders: list[Path] = []
        for folder in folders:
            path = Path(folder).expanduser()
            if not path.is_dir():
                raise VfmError(f"--root '{folder}' is not a folder; give a folder the tools may read from")
            self.folders.append(path.resolve())

    def describe(self) -> str:
        return ", ".join(str(f) for f in self.folders)

    def _inside(self, path: Path) -> bool:
        return any(path == root or path.is_relative_to(root) for root in self.folders)

    def resolve(self, text: str, what: str = "path") -> Path:
        """The real path of ``text`` (it must exist and lie inside a root).

        Raises:
            OutsideRootsError: it resolves outside every root.
            VfmError: it exists under no root.
        """
        if not text.strip():
            raise VfmError(f"{what} is empty; give a file under the allowed roots ({self.describe()})")
        if "\x00" in text:
            raise VfmError(f"{what} holds a NUL character; give a plain file path")
        given = Path(text).expanduser()
        candidates = [given] if given.is_absolute() else [root / given for root in self.folders]
        outside = None
        for candidate in candidates:
            try:
                real = candidate.resolve()
                exists = real.exists()
            except (OSError, RuntimeError):  # a name too long, a symlink loop: not a file to open
                continue
            if not self._inside(real):
                outside = outside or real
                continue
            if exists:
                return real
        if outside is not None:
            raise OutsideRootsError(f"{what} '{text}' is outside the folders this server may read ({self.describe()}); "
                                    "copy the file under one of them, or start vfm mcp with --root for its folder")
        raise VfmError(f"{what} '{text}' does not exist under the allowed roots ({self.describe()}); "
                       "give a path relative to a root, or an absolute path inside one")

    def check_tree(self, folder: Path, what: str = "path") -> None:
        """Every file under ``folder`` (a folder of video frames) resolves inside a root."""
        for dirpath, _, files in os.walk(folder, followlinks=False):
            for name in files:
                real = (Path(dirpath) / name).resolve()
                if not self._inside(real):
                    raise OutsideRootsError(f"{what} '{folder}' holds '{name}', a link to a file outside the folders "
                                            f"this server may read ({self.describe()})")
