"""Uploaded images and refinement logits, kept in memory in LRUs bounded by bytes / items.

An image id is the content hash of the decoded pixels (the Segmenter's embedding key), so uploading
the same picture twice gives the same id and reuses its embedding. Embeddings themselves live in
the Segmenter's :class:`~vfm.tasks.segment.EmbeddingCache`.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from vfm.errors import PromptError, VfmError
from vfm.io.image import LoadedImage


class UnknownImageError(VfmError):
    """No uploaded image has this id (never uploaded, or evicted from the LRU)."""

    http_status = 404


@dataclass
class StoredImage:
    image_id: str
    image: LoadedImage
    file_name: str | None

    @property
    def nbytes(self) -> int:
        return int(self.image.pixels.nbytes)


class _LRU:
    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[str, tuple[object, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str):
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: str, value: object, size: int) -> None:
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key)[1]
            if size > self.max_bytes:
                return
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, old) = self._items.popitem(last=False)
                self._bytes -= old

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes


class ImageStore:
    """Decoded uploads by id, and low-res mask logits by ``mask_input_id``."""

    def __init__(self, max_bytes: int, max_logits: int):
        self._images = _LRU(max_bytes)
        self._logits = _LRU(max(1, max_logits) * 256 * 256 * 4)

    def add(self, image: LoadedImage, file_name: str | None = None) -> StoredImage:
        from vfm.tasks.segment import image_key

        stored = StoredImage(image_key(image.pixels), image, file_name)
        self._images.put(stored.image_id, stored, stored.nbytes)
        return stored

    def get(self, image_id: str) -> StoredImage:
        stored = self._images.get(image_id)
        if stored is None:
            raise UnknownImageError(f"no image with id '{image_id}'; upload it first with POST /v1/images")
        return stored

    def put_logits(self, image_id: str, logits: np.ndarray) -> str:
        token = secrets.token_urlsafe(12)
        arr = np.ascontiguousarray(logits, dtype=np.float32)
        self._logits.put(token, (image_id, arr), arr.nbytes)
        return token

    def get_logits(self, image_id: str, token: str) -> np.ndarray:
        item = self._logits.get(token)
        if item is None or item[0] != image_id:
            raise PromptError(
                f"mask_input_id '{token}' is unknown or expired for this image; send the mask as COCO RLE instead"
            )
        return item[1]

    def stats(self) -> dict[str, int]:
        return {"images": len(self._images), "image_bytes": self._images.nbytes,
                "logits": len(self._logits), "logits_bytes": self._logits.nbytes}
