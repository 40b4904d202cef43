"""The FAISS side of an index: which index, how it is kept in step with SQLite, how it is searched.

Which index (``kind``; ``auto`` picks by the number of vectors N):

* ``flat`` (N <= ``EXACT_MAX`` = 200,000): ``IndexIDMap2(IndexFlatIP)``, exact cosine ranking.
* ``ivf`` (above): ``IndexIVFFlat`` with inner product, ``nlist = 4 * sqrt(N)`` lists, k-means trained
  on a sample of ``40 * nlist`` vectors read from SQLite. ``nprobe`` (lists visited per query) is
  tuned when the index is built: the smallest power of two whose recall@10 against the exact ranking
  reaches ``TUNE_RECALL`` (0.97) on 200 stored vectors used as queries (their own entry left out), a
  margin so that queries not in the index get at least ``TARGET_RECALL`` (0.95).
  On clustered data (real embeddings) that is a few lists; on structure-less random vectors it is
  most of them, and the approximate index is then no faster than the exact one (bench/RESULTS.md).

Keeping step: SQLite is the truth. The FAISS file records the largest entry id it holds and the
deletions counter it was built at; when vectors were only added since, the new ones are appended,
when any were deleted (or ``kind`` changes) it is rebuilt, streaming vectors from SQLite. The file is
written under a fresh name and then named in ``meta`` in one transaction, the old one removed.
"""

from __future__ import annotations

import math
import os
import uuid
from dataclasses import dataclass

import numpy as np

from vfm.errors import PromptError, require
from vfm.search.db import IndexDB

EXACT_MAX = 200_000
TARGET_RECALL = 0.95
TUNE_RECALL = 0.97
KINDS = ("auto", "flat", "ivf")
TUNE_QUERIES = 200


def _faiss():
    return require("faiss", "search")


@dataclass
class Vectors:
    """A loaded FAISS index and what it holds."""

    index: object
    kind: str
    count: int
    nprobe: int
    file: str

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine scores and entry ids (N x k; id -1 where fewer than k vectors exist)."""
        if k <= 0:
            raise PromptError(f"--k must be a positive number of results, got {k}")
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if self.count == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        if self.kind == "ivf":
            _faiss().extract_index_ivf(self.index).nprobe = self.nprobe
        scores, ids = self.index.search(queries, min(k, self.count))
        return scores, ids


def choose_kind(n: int, kind: str = "auto") -> str:
    if kind not in KINDS:
        raise PromptError(f"--index-kind '{kind}' is not one of {', '.join(KINDS)}")
    if kind != "auto":
        return kind
    return "flat" if n <= EXACT_MAX else "ivf"


def sync(db: IndexDB, *, kind: str | None = None) -> Vectors:
    """Bring the FAISS file up to date with SQLite (append or rebuild) and return it loaded."""
    faiss = _faiss()
    n = db.entry_count()
    wanted = choose_kind(n, kind or db.get("index_kind") or "auto")
    current = db.get("faiss_file")
    deletions = int(db.get("deletions") or 0)
    max_id = db.max_entry_id()
    path = db.dir / current if current else None
    if path is not None and path.is_file() and db.get("faiss_kind") == wanted \
            and int(db.get("faiss_deletions") or -1) == deletions:
        built_max = int(db.get("faiss_max_id") or 0)
        index = faiss.read_index(str(path))
        trained_on = int(db.get("faiss_trained_on") or 0)
        if built_max == max_id:
            return Vectors(index, wanted, int(index.ntotal), int(db.get("faiss_nprobe") or 1), current)
        if wanted == "flat" or n <= 2 * max(trained_on, 1):
            for ids, vecs in db.iter_vectors(after=built_max):
                index.add_with_ids(vecs, ids)
            nprobe = int(db.get("faiss_nprobe") or 1)
            if wanted == "ivf":
                nprobe = _tune(db, index)
            return _publish(db, index, wanted, max_id, deletions, trained_on, nprobe)
    return rebuild(db, wanted, max_id, deletions)


def rebuild(db: IndexDB, kind: str, max_id: int, deletions: int) -> Vectors:
    faiss = _faiss()
    dim = db.dim
    n = db.entry_count()
    trained_on = 0
    if kind == "flat" or n == 0:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        kind = "flat" if n == 0 else kind
    else:
        nlist = max(1, min(int(4 * math.sqrt(n)), n // 39 or 1))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = _sample(db, min(n, 40 * nlist))
        index.train(sample)
        trained_on = len(sample)
        del sample
    for ids, vecs in db.iter_vectors():
        index.add_with_ids(vecs, ids)
    nprobe = _tune(db, index) if kind == "ivf" else 1
    return _publish(db, index, kind, max_id, deletions, trained_on, nprobe)


def _publish(db: IndexDB, index, kind: str, max_id: int, deletions: int, trained_on: int, nprobe: int) -> Vectors:
    faiss = _faiss()
    name = f"vectors-{uuid.uuid4().hex[:12]}.faiss"
    tmp = db.dir / (name + ".tmp")
    faiss.write_index(index, str(tmp))
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, db.dir / name)
    old = db.get("faiss_file")
    db.db.execute("BEGIN IMMEDIATE")
    for key, value in (("faiss_file", name), ("faiss_kind", kind), ("faiss_max_id", max_id),
                       ("faiss_deletions", deletions), ("faiss_trained_on", trained_on), ("faiss_nprobe", nprobe)):
        db.set(key, value)
    db.db.execute("COMMIT")
    for f in db.dir.glob("vectors-*.faiss*"):
        if f.name != name:
            try:
                f.unlink()
            except OSError:
                pass
    del old
    return Vectors(index, kind, int(index.ntotal), nprobe, name)


def load(db: IndexDB) -> Vectors:
    """The index as last published, brought up to date first if SQLite moved on (a killed run)."""
    return sync(db)


def _sample(db: IndexDB, m: int) -> np.ndarray:
    """``m`` vectors spread evenly over the id range (deterministic), read in chunks."""
    n = db.entry_count()
    step = max(1, n // max(m, 1))
    out = []
    for i, (_ids, vecs) in enumerate(db.iter_vectors(chunk=65536)):
        start = (-(i * 65536)) % step
        out.append(vecs[start::step].copy())
    sample = np.concatenate(out) if out else np.zeros((0, db.dim), np.float32)
    return np.ascontiguousarray(sample[:m])


def exact_topk(db: IndexDB, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force cosine top-k over all vectors in SQLite, streamed (the ground truth of tuning and tests)."""
    best_s = np.full((len(queries), 0), -np.inf, np.float32)
    best_i = np.zeros((len(queries), 0), np.int64)
    for ids, vecs in db.iter_vectors():
        s = queries @ vecs.T
        all_s = np.concatenate([best_s, s], axis=1)
        all_i = np.concatenate([best_i, np.broadcast_to(ids, s.shape)], axis=1)
        order = np.argsort(-all_s, axis=1, kind="stable")[:, :k]
        best_s = np.take_along_axis(all_s, order, axis=1)
        best_i = np.take_along_axis(all_i, order, axis=1)
    return best_s, best_i


def _tune(db: IndexDB, index, k: int = 10) -> int:
    """Smallest power-of-two nprobe reaching TUNE_RECALL@k on stored vectors used as queries."""
    faiss = _faiss()
    ivf = faiss.extract_index_ivf(index)
    n = int(index.ntotal)
    if n <= k + 1:
        return ivf.nlist
    sample_ids = np.linspace(1, db.max_entry_id(), num=min(TUNE_QUERIES, n), dtype=np.int64)
    found = db.vectors_of(sample_ids.tolist())
    qids = np.array(sorted(found), dtype=np.int64)
    queries = np.stack([found[int(i)] for i in qids])
    _, truth = exact_topk(db, queries, k + 1)
    truth_sets = [set(row.tolist()) - {int(q)} for row, q in zip(truth, qids)]
    nprobe = 1
    while True:
        ivf.nprobe = nprobe
        _, got = index.search(queries, k + 1)
        recall = np.mean([len((set(row.tolist()) - {int(q)}) & t) / max(len(t), 1)
                          for row, q, t in zip(got, qids, truth_sets)])
        if recall >= TUNE_RECALL or nprobe >= ivf.nlist:
            return min(nprobe, ivf.nlist)
        nprobe *= 2
