"""SOURCE scanning: a folder (recursive), a text file listing paths, or a glob.

``open_source(source)`` scans for images; ``open_source(source, videos=True)`` for video files
(`vfm label --task track`), where SOURCE may also be one video file.

Images are yielded lazily in a deterministic order (sorted names, directory by directory), so a
re-scan after a crash gives every image the same id. Each item is ``(relative_name, absolute_path)``;
the relative name (POSIX separators) is what datasets record as ``file_name``.
"""

from __future__ import annotations

import glob as globlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from vfm.errors import VfmError
from vfm.io.image import is_image_path


class SourceError(VfmError):
    """SOURCE is missing or names nothing to label."""


@dataclass
class Scan:
    """A lazy scan of SOURCE. Iterate it for ``(name, path)``; ``skipped`` counts non-image files seen."""

    source: str
    kind: str  # "folder" | "list" | "glob" | "file" (one video)
    root: Path
    skipped: int = 0
    skipped_examples: list[str] = field(default_factory=list)
    accept: Callable[[str], bool] = is_image_path  # which file names are labeled

    def __iter__(self) -> Iterator[tuple[str, str]]:
        if self.kind == "folder":
            yield from self._walk(self.root)
        elif self.kind == "file":
            yield Path(self.source).name, os.path.abspath(self.source)
        elif self.kind == "list":
            yield from self._list()
        else:
            yield from self._glob()

    def _skip(self, name: str) -> None:
        self.skipped += 1
        if len(self.skipped_examples) < 5:
            self.skipped_examples.append(name)

    def _walk(self, directory: Path) -> Iterator[tuple[str, str]]:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                yield from self._walk(Path(entry.path))
            elif entry.is_file():
                rel = Path(entry.path).relative_to(self.root).as_posix()
                if self.accept(entry.name):
                    yield rel, entry.path
                else:
                    self._skip(rel)

    def _list(self) -> Iterator[tuple[str, str]]:
        base = self.root
        with open(self.source, encoding="utf-8") as fh:
            for line in fh:
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                path = Path(text)
                if not path.is_absolute():
                    path = base / path
                if not self.accept(path):
                    self._skip(text)
                    continue
                yield _relative(path, base), str(path)

    def _glob(self) -> Iterator[tuple[str, str]]:
        for match in sorted(globlib.iglob(self.source, recursive=True)):
            path = Path(match)
            if not path.is_file():
                continue
            if not self.accept(path):
                self._skip(match)
                continue
            yield _relative(path.absolute(), self.root), str(path.absolute())


def _relative(path: Path, base: Path) -> str:
    try:
        return Path(os.path.abspath(path)).relative_to(base).as_posix()
    except ValueError:
        return Path(os.path.abspath(path)).as_posix()


def is_video_path(path: str | os.PathLike) -> bool:
    """True when the file name has a video extension (mp4, mov, mkv, webm, avi, ...)."""
    from vfm.video.reader import VIDEO_EXTENSIONS

    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def open_source(source: str, *, videos: bool = False) -> Scan:
    """Classify SOURCE as a folder, a list file (.txt/.lst/.list, or any non-image file) or a glob;
    with ``videos`` the files looked for are videos, and SOURCE may be a single video file."""
    accept = is_video_path if videos else is_image_path
    what = "video" if videos else "image"
    if any(ch in source for ch in "*?["):
        prefix = source
        for i, ch in enumerate(source):
            if ch in "*?[":
                prefix = source[:i]
                break
        root = Path(os.path.abspath(prefix if prefix.endswith(os.sep) else os.path.dirname(prefix) or "."))
        return Scan(source, "glob", root, accept=accept)
    path = Path(source)
    if path.is_dir():
        return Scan(source, "folder", Path(os.path.abspath(path)), accept=accept)
    if path.is_file():
        if videos and is_video_path(path):
            return Scan(source, "file", Path(os.path.abspath(path.parent)), accept=accept)
        if is_image_path(path):
            raise SourceError(f"SOURCE '{source}' is a single image; give a folder, a text file listing {what}s, or a glob")
        return Scan(source, "list", Path(os.path.abspath(path.parent)), accept=accept)
    example = "videos/**/*.mp4" if videos else "data/**/*.jpg"
    raise SourceError(f"SOURCE '{source}' does not exist; give a folder, a text file listing {what} paths, or a glob like '{example}'")
