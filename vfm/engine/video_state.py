"""The videos of a `vfm label --task track` run, in the same ``OUT/state.sqlite`` as images.

Tables beside ``images`` (whose rows are then the videos' frames, named ``VIDEO/NNNNN.jpg``)::

    videos(id INTEGER PRIMARY KEY,    -- position in the deterministic scan order (1-based)
           name UNIQUE,               -- the video's path relative to SOURCE
           path,                      -- absolute path read by the tracker
           folder,                    -- VIDEO: the folder its frames are named under
           status,                    -- 'pending' | 'done' | 'error'
           frames, error, attempts)   -- error: why it failed, or what did not decode of a done video
    staged(id INTEGER PRIMARY KEY, video, name, path, width, height, result)

A video is tracked from its first frame to its last in one go (the tracker's memory cannot be
saved), so its frames are *staged* as they finish and become ``images`` rows in the same
transaction that marks the video done. A kill mid-video leaves staged rows that the next run drops
before tracking that video again: what is in ``images`` is always whole videos, and a rerun gives
the frame ids and results an uninterrupted run gives.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any, Iterable, Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS videos (
    id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, path TEXT NOT NULL, folder TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending', frames INTEGER, error TEXT, attempts INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS staged (
    id INTEGER PRIMARY KEY, video INTEGER NOT NULL, name TEXT NOT NULL, path TEXT NOT NULL,
    width INTEGER, height INTEGER, result TEXT);
"""


class VideoStore:
    """The video tables of a :class:`vfm.engine.state.Store`."""

    def __init__(self, store):
        self.store = store
        self.db = store.db
        self.db.executescript(SCHEMA)

    # ------------------------------------------------------------------ scan
    def ingest(self, scan: Iterable[tuple[str, str]]) -> int:
        """Insert the scanned videos (ids in scan order); a no-op once a scan has completed."""
        if self.store.get_meta("scanned") == "1":
            return self.count()
        rows = list(scan)  # video lists are short; the frames are what is many
        folders = frame_folders([name for name, _ in rows])
        self.db.execute("BEGIN")
        self.db.executemany("INSERT OR IGNORE INTO videos(id, name, path, folder) VALUES (?, ?, ?, ?)",
                            [(i + 1, name, path, folders[name]) for i, (name, path) in enumerate(rows)])
        self.store.set_meta("skipped", str(getattr(scan, "skipped", 0)))
        self.store.set_meta("skipped_examples", json.dumps(getattr(scan, "skipped_examples", [])))
        self.store.set_meta("kind", "video")
        self.store.set_meta("scanned", "1")
        self.db.execute("COMMIT")
        return len(rows)

    def count(self, status: str | None = None) -> int:
        if status is None:
            return self.db.execute("SELECT COUNT(*) FROM videos").fetchone()[0]
        return self.db.execute("SELECT COUNT(*) FROM videos WHERE status=?", (status,)).fetchone()[0]

    def pending(self) -> list[tuple[int, str, str, str]]:
        """``(id, name, path, folder)`` of the videos still to do, by id."""
        return self.db.execute("SELECT id, name, path, folder FROM videos WHERE status='pending' ORDER BY id").fetchall()

    def rows(self, status: str | None = None) -> Iterator[tuple[int, str, str, int | None, str | None]]:
        """``(id, name, status, frames, error)`` by id."""
        if status is None:
            yield from self.db.execute("SELECT id, name, status, frames, error FROM videos ORDER BY id").fetchall()
        else:
            yield from self.db.execute("SELECT id, name, status, frames, error FROM videos WHERE status=? ORDER BY id",
                                       (status,)).fetchall()

    # ------------------------------------------------------------------ work
    def begin(self, video_id: int) -> int:
        """Drop what an interrupted run staged for this video; returns the id its first frame gets."""
        self.db.execute("BEGIN")
        self.db.execute("DELETE FROM staged WHERE video=?", (video_id,))
        self.db.execute("COMMIT")
        top = self.db.execute("SELECT MAX(m) FROM (SELECT MAX(id) AS m FROM images UNION ALL SELECT MAX(id) FROM staged)")
        return (top.fetchone()[0] or 0) + 1

    def stage(self, video_id: int, rows: list[dict[str, Any]]) -> None:
        """Keep finished frames (``id, name, path, width, height, result``) until the video is done."""
        if not rows:
            return
        self.db.execute("BEGIN")
        self.db.executemany("INSERT INTO staged(id, video, name, path, width, height, result) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            [(r["id"], video_id, r["name"], r["path"], r["width"], r["height"], r["result"]) for r in rows])
        self.db.execute("COMMIT")

    def finish(self, video_id: int, frames: int, problem: str | None = None) -> None:
        """The video's staged frames become labeled images, and the video is done: one transaction."""
        self.db.execute("BEGIN")
        self.db.execute("INSERT INTO images(id, name, path, status, width, height, result, attempts) "
                        "SELECT id, name, path, 'done', width, height, result, 1 FROM staged WHERE video=? ORDER BY id",
                        (video_id,))
        self.db.execute("DELETE FROM staged WHERE video=?", (video_id,))
        self.db.execute("UPDATE videos SET status='done', frames=?, error=?, attempts=attempts+1 WHERE id=?",
                        (frames, problem, video_id))
        self.db.execute("COMMIT")

    def fail(self, video_id: int, error: str) -> None:
        self.db.execute("BEGIN")
        self.db.execute("DELETE FROM staged WHERE video=?", (video_id,))
        self.db.execute("UPDATE videos SET status='error', error=?, attempts=attempts+1 WHERE id=?", (error, video_id))
        self.db.execute("COMMIT")


def frame_folders(names: list[str]) -> dict[str, str]:
    """VIDEO for each video: its relative path without the extension (``clips/a.mp4`` -> ``clips/a``),
    or with the extension as ``_mp4`` where two videos would share a folder (``a.mp4``, ``a.mov``)."""
    stems = [str(PurePosixPath(n).with_suffix("")) for n in names]
    taken = {s for s in stems if stems.count(s) > 1}
    out = {}
    for name, stem in zip(names, stems):
        suffix = PurePosixPath(name).suffix
        out[name] = f"{stem}_{suffix[1:]}" if stem in taken and suffix else stem
    return out


def is_video_store(store) -> bool:
    return store.get_meta("kind") == "video"
