"""The run report: ``OUT/errors.jsonl`` (one line per unreadable image) and ``OUT/summary.json``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vfm.formats._atomic import atomic_file


def write_errors(store, out_dir: str | os.PathLike) -> int:
    n = 0
    with atomic_file(Path(out_dir) / "errors.jsonl") as fh:
        for image_id, name, _s, _w, _h, _r, error in store.rows("error"):
            fh.write(json.dumps({"id": image_id, "file_name": name, "error": error}) + "\n")
            n += 1
    return n


def summary(store, annotations: int | None) -> dict[str, Any]:
    return {
        "images": store.count(),
        "labeled": store.count("done"),
        "errors": store.count("error"),
        "pending": store.count("pending"),
        "skipped_files": int(store.get_meta("skipped") or 0),
        "annotations": annotations,
    }


def write_summary(doc: dict[str, Any], out_dir: str | os.PathLike) -> None:
    with atomic_file(Path(out_dir) / "summary.json") as fh:
        fh.write(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def summary_line(doc: dict[str, Any], out_dir: str) -> str:
    parts = [f"{doc['labeled']} image(s) labeled", f"{doc['annotations'] or 0} annotation(s)",
             f"{doc['errors']} unreadable (see {os.path.join(out_dir, 'errors.jsonl')})" if doc["errors"] else "0 errors",
             f"{doc['skipped_files']} non-image file(s) skipped"]
    return "; ".join(parts) + f" -> {out_dir}"
