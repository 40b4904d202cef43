"""``vfm search``: rank the entries of an index by cosine similarity to a text, an image or an entry.

The query is embedded with the index's own model (and pooling); a checkpoint that changed since the
index was built is refused rather than compared in another vector space. Hits are
``{"rank", "score", "id", "kind", "image_id", "file_name", "path", "width", "height"}`` plus, for
objects, ``bbox`` (COCO xywh), ``segmentation`` (COCO RLE), ``category`` and ``detection_score`` (the labeler's). Latency is reported
split in embedding the query and searching the vectors.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from vfm.errors import PromptError
from vfm.search import vectors as vectors_mod
from vfm.search.db import IndexDB, IndexError_


class Searcher:
    """An open index; the query model is loaded on the first text or image query."""

    def __init__(self, db_path: str, *, device: str | None = None, precision: str | None = None):
        self.db = IndexDB(db_path)
        self.info = self.db.embedder
        if self.info is None:
            raise IndexError_(f"--db '{db_path}' holds no vectors yet; run vfm index SOURCE --model M --db {db_path}")
        self.vectors = vectors_mod.load(self.db)
        self.device = device
        self.precision = precision or self.db.get("precision") or "fp32"  # as the index was embedded
        self._embedder = None
        self._published = self.db.get("faiss_file")

    def close(self) -> None:
        self.db.close()

    def refresh(self) -> None:
        """Reload the FAISS file if a `vfm index` run published a new one (a long-running server)."""
        current = self.db.get("faiss_file")
        if current != self._published or self.db.max_entry_id() != int(self.db.get("faiss_max_id") or 0):
            self.vectors = vectors_mod.load(self.db)
            self._published = self.db.get("faiss_file")

    @property
    def embedder(self):
        if self._embedder is None:
            from vfm.tasks.embed import Embedder

            info = self.info
            pooling = "cls" if info["pooling"] == "projection" else info["pooling"]
            emb = Embedder.load(info["model"], device=self.device, precision=self.precision, pooling=pooling)
            if emb.info.identity != info["identity"] or emb.dim != info["dim"]:
                raise IndexError_(f"the model '{info['model']}' on this machine is not the checkpoint the index was "
                                  "built with (its config or weights changed); rebuild the index with vfm index")
            self._embedder = emb
        return self._embedder

    # ------------------------------------------------------------------ queries
    def text_vector(self, text: str) -> np.ndarray:
        if not self.info.get("text"):
            raise PromptError(f"the index was built with '{self.info['model']}', an image-only model "
                              f"({self.info['family']}): it cannot embed text; search by --image or --id instead")
        return self.embedder.embed_texts([text])[0]

    def image_vector(self, pixels: np.ndarray) -> np.ndarray:
        return self.embedder.embed_images([pixels])[0]

    def id_vector(self, entry_id: int) -> np.ndarray:
        found = self.db.vectors_of([entry_id])
        if entry_id not in found:
            raise PromptError(f"--id {entry_id} is not an entry of this index (ids are the 'id' of search hits; "
                              f"1..{self.db.max_entry_id()})")
        return found[entry_id]

    def search(self, vector: np.ndarray, k: int = 20, *, kind: str | None = None,
               exclude: int | None = None) -> list[dict[str, Any]]:
        """Top-k hits (``kind``: only 'image' or only 'object' entries)."""
        if not isinstance(k, int) or k <= 0:
            raise PromptError(f"--k must be a positive number of results, got {k}")
        if kind not in (None, "image", "object"):
            raise PromptError(f"kind '{kind}' is not 'image' or 'object'")
        want = k + (1 if exclude is not None else 0)
        fetch = want
        while True:
            scores, ids = self.vectors.search(vector[None, :], fetch)
            pairs = [(float(s), int(i)) for s, i in zip(scores[0], ids[0]) if i >= 0 and i != exclude]
            described = self.db.describe([i for _, i in pairs])
            hits = [(s, described[i]) for s, i in pairs if i in described and (kind is None or described[i]["kind"] == kind)]
            if len(hits) >= k or fetch >= self.vectors.count:
                break
            fetch = min(self.vectors.count, fetch * 4)
        out = []
        for rank, (score, hit) in enumerate(hits[:k], start=1):
            out.append({"rank": rank, "score": round(score, 6), **hit})
        return out

    def query(self, *, text: str | None = None, image: np.ndarray | None = None, entry_id: int | None = None,
              k: int = 20, kind: str | None = None) -> dict[str, Any]:
        """One query, timed: {"query", "k", "hits", "timing_ms": {"embed", "search"}, "index": {...}}."""
        given = [x is not None for x in (text, image, entry_id)]
        if sum(given) != 1:
            raise PromptError("give exactly one query: a text, --image FILE or --id N")
        if not isinstance(k, int) or k <= 0:
            raise PromptError(f"--k must be a positive number of results, got {k}")
        if text is not None and not self.info.get("text"):
            self.text_vector(text)  # the one-line error, before any model is loaded
        if entry_id is None:
            self.embedder  # noqa: B018 - load outside the timed part
        t0 = time.perf_counter()
        if text is not None:
            vec, query = self.text_vector(text), {"text": text}
        elif image is not None:
            vec, query = self.image_vector(image), {"image": True}
        else:
            vec, query = self.id_vector(int(entry_id)), {"id": int(entry_id)}
        t1 = time.perf_counter()
        hits = self.search(vec, k, kind=kind, exclude=int(entry_id) if entry_id is not None else None)
        t2 = time.perf_counter()
        return {"query": query, "k": k, "hits": hits,
                "timing_ms": {"embed": round((t1 - t0) * 1000, 3), "search": round((t2 - t1) * 1000, 3)},
                "index": {"model": self.info["model"], "kind": self.vectors.kind, "vectors": self.vectors.count,
                          "nprobe": self.vectors.nprobe}}
