"""The SQLite state store in OUT (``OUT/state.sqlite``): one row per image, committed as results come.

Schema::

    meta(key PRIMARY KEY, value)      -- config (JSON of the result-affecting options), scanned, skipped
    images(id INTEGER PRIMARY KEY,    -- stable image id: position in the deterministic scan order (1-based)
           name UNIQUE,               -- file name relative to SOURCE (what datasets record)
           path,                      -- absolute path read by the workers
           status,                    -- 'pending' | 'done' | 'error'
           width, height, result,     -- result: JSON {"annotations": [...]} or {"tags": [...]}
           error, attempts)

The database runs in WAL mode; every commit is one transaction, so a SIGKILL at any moment leaves
either the old or the new row, never half of one. Reads for the final files stream rows by id.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any, Iterable, Iterator

from vfm.errors import VfmError

DB_NAME = "state.sqlite"
SCAN_BATCH = 5000


class ConfigMismatchError(VfmError):
    """OUT holds a run made with different options."""


class Store:
    def __init__(self, out_dir: str | os.PathLike):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.out_dir / DB_NAME
        self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
            CREATE TABLE IF NOT EXISTS images (
                id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, path TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'pending', width INTEGER, height INTEGER,
                result TEXT, error TEXT, attempts INTEGER NOT NULL DEFAULT 0);
            CREATE INDEX IF NOT EXISTS images_status ON images(status, id);
            """
        )

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ meta / config
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def check_config(self, config: dict[str, Any]) -> None:
        """Record ``config`` on the first run; refuse a different one later (naming the first difference).

        Options are locked only once an image has been committed: a run that failed before labeling
        anything (a model that would not load, say) is replaced by the next one, whatever its options
        (with another SOURCE, the old scan is dropped too).
        """
        stored = self.get_meta("config")
        if stored is not None and json.loads(stored) != config and not self.committed():
            old = json.loads(stored)
            if old.get("source") != config.get("source") or (old.get("task") == "track") != (config.get("task") == "track"):
                self.db.execute("BEGIN")  # another SOURCE, or videos instead of images (or back): scan again
                for table in ("images", *(t for t in ("videos", "staged") if self._has_table(t))):
                    self.db.execute(f"DELETE FROM {table}")
                self.db.execute("DELETE FROM meta WHERE key IN ('scanned', 'skipped', 'skipped_examples', 'kind')")
                self.db.execute("COMMIT")
            stored = None
        if stored is None:
            self.set_meta("config", json.dumps(config, sort_keys=True))
            return
        old = json.loads(stored)
        for key in sorted(set(old) | set(config)):
            if old.get(key) != config.get(key):
                raise ConfigMismatchError(
                    f"OUT '{self.out_dir}' was made with {_option(key)} {_show(old.get(key))}, not {_show(config.get(key))}; "
                    "rerun with the same options to resume, or add --overwrite to start over"
                )

    # ------------------------------------------------------------------ scan
    def ingest(self, scan: Iterable[tuple[str, str]]) -> int:
        """Insert the scanned images (ids in scan order); a no-op once a scan has completed."""
        if self.get_meta("scanned") == "1":
            return self.count()
        next_id = 1
        batch: list[tuple[int, str, str]] = []
        for name, path in scan:
            batch.append((next_id, name, path))
            next_id += 1
            if len(batch) >= SCAN_BATCH:
                self._insert(batch)
                batch = []
        self._insert(batch)
        skipped = getattr(scan, "skipped", 0)
        self.db.execute("BEGIN")
        self.set_meta("skipped", str(skipped))
        self.set_meta("skipped_examples", json.dumps(getattr(scan, "skipped_examples", [])))
        self.set_meta("scanned", "1")
        self.db.execute("COMMIT")
        return next_id - 1

    def _insert(self, rows: list[tuple[int, str, str]]) -> None:
        if rows:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR IGNORE INTO images(id, name, path) VALUES (?, ?, ?)", rows)
            self.db.execute("COMMIT")

    # ------------------------------------------------------------------ work
    def pending(self, page: int = 1000) -> Iterator[tuple[int, str]]:
        """``(id, path)`` of images still to do, by id, paged so memory stays constant."""
        last = 0
        while True:
            rows = self.db.execute(
                "SELECT id, path FROM images WHERE status='pending' AND id>? ORDER BY id LIMIT ?", (last, page)
            ).fetchall()
            if not rows:
                return
            yield from rows
            last = rows[-1][0]

    def commit(self, records: Iterable[dict[str, Any]]) -> None:
        """Store finished images in one transaction. Each record: id, status, width, height, result, error."""
        rows = [
            (r["status"], r.get("width"), r.get("height"), r.get("result"), r.get("error"), r["id"]) for r in records
        ]
        if not rows:
            return
        self.db.execute("BEGIN")
        self.db.executemany(
            "UPDATE images SET status=?, width=?, height=?, result=?, error=?, attempts=attempts+1 WHERE id=?", rows
        )
        self.db.execute("COMMIT")

    def committed(self) -> bool:
        """True once any image (or video) has a committed result (done or error)."""
        if self.db.execute("SELECT 1 FROM images WHERE attempts > 0 LIMIT 1").fetchone() is not None:
            return True
        return self._has_table("videos") and self.db.execute(
            "SELECT 1 FROM videos WHERE attempts > 0 LIMIT 1").fetchone() is not None

    def _has_table(self, name: str) -> bool:
        return self.db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None

    def count(self, status: str | None = None) -> int:
        if status is None:
            return self.db.execute("SELECT COUNT(*) FROM images").fetchone()[0]
        return self.db.execute("SELECT COUNT(*) FROM images WHERE status=?", (status,)).fetchone()[0]

    def rows(self, status: str | None = "done") -> Iterator[tuple[int, str, str, int, int, str | None, str | None]]:
        """``(id, name, status, width, height, result, error)`` by id, streamed from a cursor."""
        conn = sqlite3.connect(self.path, timeout=60)  # own connection: a cursor stays open while we write files
        try:
            if status is None:
                cur = conn.execute("SELECT id, name, status, width, height, result, error FROM images ORDER BY id")
            else:
                cur = conn.execute(
                    "SELECT id, name, status, width, height, result, error FROM images WHERE status=? ORDER BY id",
                    (status,),
                )
            yield from cur
        finally:
            conn.close()


def reset(out_dir: str | os.PathLike) -> None:
    """Delete the store (for --overwrite)."""
    for suffix in ("", "-wal", "-shm"):
        p = Path(out_dir) / (DB_NAME + suffix)
        if p.exists():
            p.unlink()


def _option(key: str) -> str:
    return "SOURCE" if key == "source" else "--" + key.replace("_", "-")


def _show(value: Any) -> str:
    return "(none)" if value is None else repr(value) if isinstance(value, str) else json.dumps(value)
