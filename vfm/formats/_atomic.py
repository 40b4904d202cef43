"""Atomic finalization: a file via temp file + os.replace, a folder via a temp folder swapped in."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Write ``path`` through ``path.tmp``; the final name appears only complete (os.replace)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, mode, encoding=None if "b" in mode else "utf-8") as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Fill a fresh temp folder, then swap it in for ``path`` (old one renamed aside, then removed)."""
    path = Path(path)
    tmp = path.with_name("." + path.name + ".tmp")
    old = path.with_name("." + path.name + ".old")
    for p in (tmp, old):
        if p.exists():
            shutil.rmtree(p)
    tmp.mkdir(parents=True)
    yield tmp
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    if old.exists():
        shutil.rmtree(old)


def stem_path(name: str, suffix: str) -> str:
    """'a/b/img.jpg' -> 'a/b/img' + suffix (the file next to an image in a dataset's label tree)."""
    base, _ext = os.path.splitext(name)
    return base + suffix
