"""``vfm dedupe``: exact duplicates (same bytes) and near-duplicate clusters (cosine >= T) of an index.

* Exact: files with the same SHA-256, grouped.
* Near: every pair of image vectors with cosine similarity >= ``threshold`` is an edge (FAISS range
  search, 1,024 queries at a time); clusters are the connected components with two or more images.
  A group of exact duplicates is also one near cluster (cosine 1) and is listed in both.
* ``keep``: which file of each cluster a user would keep: ``first`` (first in scan order) or
  ``largest`` (most pixels, then most bytes, then first). The others are listed as removable;
  nothing is ever deleted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vfm.errors import PromptError
from vfm.search.db import IndexDB

DEFAULT_THRESHOLD = 0.95
KEEPS = ("first", "largest")


class _UnionFind:
    def __init__(self):
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def find_duplicates(db: IndexDB, *, threshold: float = DEFAULT_THRESHOLD, keep: str = "first") -> dict[str, Any]:
    if not (-1.0 <= threshold <= 1.0):
        raise PromptError(f"--threshold {threshold} is not a cosine similarity; give a number in [-1, 1], e.g. 0.95")
    if keep not in KEEPS:
        raise PromptError(f"--keep '{keep}' is not one of {', '.join(KEEPS)}")
    files = {}
    for fid, name, path, w, h, size, sha in db.db.execute(
            "SELECT id, name, path, width, height, size, sha256 FROM files WHERE status='done' ORDER BY id"):
        files[int(fid)] = {"image_id": int(fid), "file_name": name, "path": path, "width": w, "height": h,
                           "size": size, "sha256": sha}
    by_sha: dict[str, list[int]] = {}
    for fid, f in files.items():
        by_sha.setdefault(f["sha256"], []).append(fid)
    exact = [ids for ids in by_sha.values() if len(ids) > 1]

    near_edges = _near_pairs(db, threshold)
    uf = _UnionFind()
    best: dict[tuple[int, int], float] = {}
    for a, b, s in near_edges:
        uf.union(a, b)
        best[(min(a, b), max(a, b))] = max(s, best.get((min(a, b), max(a, b)), -2.0))
    groups: dict[int, list[int]] = {}
    for fid in list(uf.parent):
        groups.setdefault(uf.find(fid), []).append(fid)
    near = []
    for ids in sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: g[0]):
        scores = [s for (a, b), s in best.items() if a in ids]
        near.append({"ids": ids, "min_score": round(min(scores), 6), "max_score": round(max(scores), 6)})

    def cluster(ids: list[int], extra: dict[str, Any]) -> dict[str, Any]:
        members = [files[i] for i in ids if i in files]
        kept = _keep(members, keep)
        return {**extra, "keep": kept["file_name"], "remove": [m["file_name"] for m in members if m is not kept],
                "files": [{k: m[k] for k in ("image_id", "file_name", "width", "height", "size")} for m in members]}

    exact_out = [cluster(sorted(ids), {"sha256": files[ids[0]]["sha256"]}) for ids in sorted(exact, key=min)]
    near_out = [cluster(c["ids"], {"min_score": c["min_score"], "max_score": c["max_score"]}) for c in near]
    removable = sorted({n for c in exact_out + near_out for n in c["remove"]})
    return {"threshold": threshold, "keep": keep, "images": len(files), "exact": exact_out, "near": near_out,
            "removable": removable}


def _keep(members: list[dict[str, Any]], keep: str) -> dict[str, Any]:
    if keep == "first":
        return members[0]
    return max(members, key=lambda m: ((m["width"] or 0) * (m["height"] or 0), m["size"] or 0, -m["image_id"]))


def _near_pairs(db: IndexDB, threshold: float) -> list[tuple[int, int, float]]:
    """(file a, file b, cosine) for image vectors at cosine >= threshold, a < b."""
    from vfm.search.vectors import _faiss

    faiss = _faiss()
    rows = db.db.execute("SELECT e.id, e.file_id FROM entries e WHERE e.kind='image' ORDER BY e.id").fetchall()
    if len(rows) < 2:
        return []
    entry_file = {int(e): int(f) for e, f in rows}
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(db.dim))
    for ids, vecs in db.iter_vectors():
        keep = np.array([int(i) in entry_file for i in ids], bool)
        if keep.any():
            index.add_with_ids(np.ascontiguousarray(vecs[keep]), ids[keep])
    # FAISS keeps inner products strictly above the radius: nudge it so "cosine >= T" holds.
    radius = float(np.nextafter(np.float32(threshold), np.float32(-2)))
    pairs = []
    for ids, vecs in db.iter_vectors(chunk=1024):
        keep = np.array([int(i) in entry_file for i in ids], bool)
        if not keep.any():
            continue
        qids, q = ids[keep], np.ascontiguousarray(vecs[keep])
        lims, dist, labels = index.range_search(q, radius)
        for j, qid in enumerate(qids):
            a = entry_file[int(qid)]
            for s, lab in zip(dist[lims[j]:lims[j + 1]], labels[lims[j]:lims[j + 1]]):
                b = entry_file[int(lab)]
                if b > a and s >= threshold - 1e-6:
                    pairs.append((a, b, float(s)))
    return pairs
