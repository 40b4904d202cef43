"""The on-disk index: one folder holding ``index.sqlite`` (the truth) and a FAISS file built from it.

Schema of ``index.sqlite``::

    meta(key PRIMARY KEY, value)           -- embedder (model, family, dim, pooling, identity), source,
                                              deletions counter, the FAISS file and what it holds
    files(id INTEGER PRIMARY KEY,          -- one row per image seen in SOURCE
          name UNIQUE, path,               -- name relative to SOURCE, absolute path
          size, mtime_ns, sha256,          -- what says a file changed (size/mtime first, then content)
          width, height, status, error,    -- status 'done' | 'error' (unreadable: listed, never fatal)
          seen)                            -- the scan generation that last saw the file
    entries(id INTEGER PRIMARY KEY,        -- the FAISS id of the vector
            file_id, kind,                 -- 'image' (the whole image) or 'object' (a mask or box)
            bbox, rle, category, score,    -- objects: COCO xywh, COCO RLE (JSON), class, detector score
            vector BLOB)                   -- float32 x dim, L2-normalised

Every change is one SQLite transaction (WAL): an image's file row and all its entries go in
together, a changed image's old entries go out in the same transaction its new ones go in, and
deletions are one transaction at the end of a scan. A SIGKILL at any moment leaves the previous
or the next state, never half of one. The FAISS file is derived: written under a fresh name, then
named in ``meta`` in one transaction (vfm.search.vectors), so it is never half-written either.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from vfm.errors import VfmError

DB_FILE = "index.sqlite"
SCHEMA_VERSION = "1"


class IndexError_(VfmError):
    """The index folder is missing, corrupt, or was built with another model."""


class IndexDB:
    """An index folder. ``IndexDB(path, create=True)`` makes one; without ``create`` it must exist."""

    def __init__(self, path: str | os.PathLike, *, create: bool = False):
        self.dir = Path(path)
        self.file = self.dir / DB_FILE
        if not create and not self.file.is_file():
            what = "is not an index folder (no index.sqlite)" if self.dir.exists() else "does not exist"
            raise IndexError_(f"--db '{path}' {what}; build one with: vfm index SOURCE --model M --db {path}")
        if create:
            if self.dir.exists() and not self.dir.is_dir():
                raise IndexError_(f"--db '{path}' exists and is not a folder; give a folder for the index")
            if self.dir.is_dir() and not self.file.exists() and any(self.dir.iterdir()):
                raise IndexError_(f"--db '{path}' is a folder with other files and no index.sqlite; "
                                  "give an empty or new folder so nothing of yours is overwritten")
            self.dir.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.file, timeout=60, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(
                """
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
                CREATE TABLE IF NOT EXISTS files (
                    id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, path TEXT NOT NULL,
                    size INTEGER, mtime_ns INTEGER, sha256 TEXT, width INTEGER, height INTEGER,
                    status TEXT NOT NULL, error TEXT, seen INTEGER NOT NULL DEFAULT 0);
                CREATE INDEX IF NOT EXISTS files_sha ON files(sha256);
                CREATE TABLE IF NOT EXISTS entries (
                    id INTEGER PRIMARY KEY, file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
                    kind TEXT NOT NULL, bbox TEXT, rle TEXT, category TEXT, score REAL, vector BLOB NOT NULL);
                CREATE INDEX IF NOT EXISTS entries_file ON entries(file_id);
                """
            )
            version = self.get("schema")
        except sqlite3.DatabaseError as exc:
            raise IndexError_(f"--db '{path}' is corrupt ({exc}); delete the folder and run vfm index again") from None
        if version is None:
            self.set("schema", SCHEMA_VERSION)
        elif version != SCHEMA_VERSION:
            raise IndexError_(f"--db '{path}' has index schema {version}; this vfm reads {SCHEMA_VERSION}: rebuild it")

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ meta
    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def set(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, str(value)))

    @property
    def embedder(self) -> dict[str, Any] | None:
        text = self.get("embedder")
        return None if text is None else json.loads(text)

    @property
    def dim(self) -> int:
        info = self.embedder
        if info is None:
            raise IndexError_(f"--db '{self.dir}' holds no vectors yet; run vfm index SOURCE --model M --db {self.dir}")
        return int(info["dim"])

    def check_embedder(self, info: dict[str, Any]) -> None:
        """Record the embedder of a new index; refuse a different one for an existing index."""
        stored = self.embedder
        if stored is None:
            self.set("embedder", json.dumps(info))
            return
        for key in ("family", "dim", "pooling", "identity"):
            if stored.get(key) != info.get(key):
                raise IndexError_(
                    f"--db '{self.dir}' was built with model '{stored['model']}' ({stored['family']}, {stored['dim']}-d, "
                    f"{stored['pooling']} pooling); '{info['model']}' gives other vectors ({key} differs): use that "
                    "model, or a new --db for this one")

    # ------------------------------------------------------------------ files
    def counts(self) -> dict[str, int]:
        files = dict(self.db.execute("SELECT status, COUNT(*) FROM files GROUP BY status").fetchall())
        kinds = dict(self.db.execute("SELECT kind, COUNT(*) FROM entries GROUP BY kind").fetchall())
        return {"images": int(files.get("done", 0)), "errors": int(files.get("error", 0)),
                "image_vectors": int(kinds.get("image", 0)), "object_vectors": int(kinds.get("object", 0))}

    def lookup(self, names: list[str]) -> dict[str, tuple]:
        """name -> (id, size, mtime_ns, sha256, status) for the names already in the index."""
        out = {}
        for i in range(0, len(names), 500):
            chunk = names[i:i + 500]
            q = ",".join("?" * len(chunk))
            for row in self.db.execute(f"SELECT name, id, size, mtime_ns, sha256, status FROM files WHERE name IN ({q})", chunk):
                out[row[0]] = tuple(row[1:])
        return out

    def mark_seen(self, ids: Iterable[int], generation: int) -> None:
        ids = list(ids)
        if ids:
            self.db.execute("BEGIN")
            self.db.executemany("UPDATE files SET seen=? WHERE id=?", [(generation, i) for i in ids])
            self.db.execute("COMMIT")

    def touch(self, file_id: int, size: int, mtime_ns: int, generation: int) -> None:
        """A file whose size/mtime changed but whose content did not: keep its vectors."""
        self.db.execute("UPDATE files SET size=?, mtime_ns=?, seen=? WHERE id=?", (size, mtime_ns, generation, file_id))

    def put(self, record: dict[str, Any], generation: int) -> int:
        """Insert or replace one image and its entries in one transaction; returns the number of vectors."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT id FROM files WHERE name=?", (record["name"],)).fetchone()
            if row is not None:
                removed = db.execute("DELETE FROM entries WHERE file_id=?", (row[0],)).rowcount
                if removed:
                    self._bump_deletions(removed)
                db.execute("DELETE FROM files WHERE id=?", (row[0],))
            cur = db.execute(
                "INSERT INTO files(id, name, path, size, mtime_ns, sha256, width, height, status, error, seen) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (None if row is None else row[0], record["name"], record["path"], record.get("size"),
                 record.get("mtime_ns"), record.get("sha256"), record.get("width"), record.get("height"),
                 record["status"], record.get("error"), generation))
            file_id = cur.lastrowid
            n = 0
            for entry in record.get("entries", ()):
                vec = np.asarray(entry["vector"], dtype=np.float32)
                db.execute("INSERT INTO entries(file_id, kind, bbox, rle, category, score, vector) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (file_id, entry["kind"], _j(entry.get("bbox")), _j(entry.get("rle")), entry.get("category"),
                            entry.get("score"), vec.tobytes()))
                n += 1
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return n

    def put_vectors(self, names: list[str], vectors: np.ndarray, *, generation: int = 0) -> None:
        """Bulk-load whole-image vectors (one file row per vector) in one transaction: synthetic
        indexes for benchmarks and tests of the FAISS side, without images."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            for name, vec in zip(names, np.asarray(vectors, dtype=np.float32)):
                cur = db.execute("INSERT INTO files(name, path, status, seen) VALUES (?, ?, 'done', ?)", (name, name, generation))
                db.execute("INSERT INTO entries(file_id, kind, vector) VALUES (?, 'image', ?)", (cur.lastrowid, vec.tobytes()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def drop_unseen(self, generation: int) -> int:
        """Forget files the last complete scan did not see (deleted from SOURCE); one transaction."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            removed = db.execute("DELETE FROM entries WHERE file_id IN (SELECT id FROM files WHERE seen<>?)",
                                 (generation,)).rowcount
            files = db.execute("DELETE FROM files WHERE seen<>?", (generation,)).rowcount
            if removed:
                self._bump_deletions(removed)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return files

    def _bump_deletions(self, n: int) -> None:
        self.set("deletions", int(self.get("deletions") or 0) + n)

    def next_generation(self) -> int:
        generation = int(self.get("generation") or 0) + 1
        self.set("generation", generation)
        return generation

    def errors(self) -> list[tuple[str, str]]:
        return [tuple(r) for r in self.db.execute("SELECT name, error FROM files WHERE status='error' ORDER BY id")]

    # ------------------------------------------------------------------ entries
    def entry_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    def max_entry_id(self) -> int:
        return int(self.db.execute("SELECT COALESCE(MAX(id), 0) FROM entries").fetchone()[0])

    def iter_vectors(self, *, after: int = 0, chunk: int = 65536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids int64, vectors float32 N x dim) in id order, ``chunk`` rows at a time (memory stays flat)."""
        dim = self.dim
        last = after
        while True:
            rows = self.db.execute("SELECT id, vector FROM entries WHERE id>? ORDER BY id LIMIT ?", (last, chunk)).fetchall()
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
            last = int(ids[-1])
            yield ids, vecs

    def vectors_of(self, ids: Iterable[int]) -> dict[int, np.ndarray]:
        ids = [int(i) for i in ids]
        out = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            q = ",".join("?" * len(chunk))
            for eid, blob in self.db.execute(f"SELECT id, vector FROM entries WHERE id IN ({q})", chunk):
                out[int(eid)] = np.frombuffer(blob, dtype=np.float32)
        return out

    def describe(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Entry id -> what a hit shows: file name and path, image size, kind, box, RLE, class."""
        ids = [int(i) for i in ids]
        out = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            q = ",".join("?" * len(chunk))
            sql = (f"SELECT e.id, e.kind, e.bbox, e.rle, e.category, e.score, f.id, f.name, f.path, f.width, f.height, f.sha256 "
                   f"FROM entries e JOIN files f ON f.id=e.file_id WHERE e.id IN ({q})")
            for row in self.db.execute(sql, chunk):
                hit = {"id": int(row[0]), "kind": row[1], "image_id": int(row[6]), "file_name": row[7], "path": row[8],
                       "width": row[9], "height": row[10], "sha256": row[11]}
                if row[1] == "object":
                    hit.update(bbox=json.loads(row[2]) if row[2] else None, category=row[4], detection_score=row[5])
                    if row[3]:
                        hit["segmentation"] = json.loads(row[3])
                out[hit["id"]] = hit
        return out


def _j(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))
