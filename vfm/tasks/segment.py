"""Promptable segmentation: embed an image once, answer many prompts.

    seg = Segmenter.load("sam-vit-base")
    seg.set_image("photo.jpg")
    res = seg.predict(points=[(420, 310)], labels=[1])          # one mask
    res = seg.predict(box=(10, 20, 300, 400), multimask=True)    # three masks with IoU scores
    better = seg.predict(points=[(420, 310), (500, 330)], labels=[1, 0],
                         mask_input=res.data["low_res_logits"][0])  # iterative refinement

Embeddings are cached by image content (a hash of the pixels) in an LRU bounded by bytes, so
re-setting the same image, or another request for it, costs nothing. The class is thread-safe:
model calls are serialized by a lock.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any, Sequence

import numpy as np
import torch

from vfm.errors import PromptError
from vfm.io.image import ImageSource, LoadedImage, load_image
from vfm.models.promptable import Embedding, PromptableModel
from vfm.results.instances import Instances
from vfm.tasks.prompts import Prompt

DEFAULT_CACHE_BYTES = 1 << 30  # 1 GiB of embeddings (~250 SAM ViT images)


def image_key(pixels: np.ndarray) -> str:
    """Content key of an RGB image: identical pixels give the same embedding."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(pixels.shape).encode())
    h.update(np.ascontiguousarray(pixels).data)
    return h.hexdigest()


class EmbeddingCache:
    """LRU of image embeddings bounded by total bytes (thread-safe)."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES):
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[str, Embedding] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Embedding | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item

    def put(self, key: str, emb: Embedding) -> None:
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key).nbytes
            size = emb.nbytes
            if size > self.max_bytes:
                return
            self._items[key] = emb
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes


class Segmenter:
    """Promptable segmentation over a SAM-family model (SAM, SlimSAM, SAM-HQ, SAM 2)."""

    def __init__(self, model: PromptableModel, *, cache_bytes: int = DEFAULT_CACHE_BYTES):
        self.model = model
        self.cache = EmbeddingCache(cache_bytes)
        self._lock = threading.RLock()
        self._current: tuple[str, tuple[int, int]] | None = None

    @classmethod
    def load(
        cls, model: str, *, device: str | None = None, precision: str = "auto", cache_bytes: int = DEFAULT_CACHE_BYTES,
        backend: str | None = None,
    ) -> "Segmenter":
        """Load by alias (``sam-vit-base``...), hub id or local directory; ``backend``: the image encoder's
        engine (torch, onnxruntime, openvino, auto) and ``precision="int8"`` its int8 export."""
        from vfm.models.loading import load_promptable

        return cls(load_promptable(model, device=device, precision=precision, backend=backend), cache_bytes=cache_bytes)

    @property
    def family(self) -> str:
        return self.model.family

    # ------------------------------------------------------------------ images
    def embed(self, image: ImageSource | LoadedImage, *, max_pixels: int | None = None) -> tuple[str, Embedding]:
        """Embed an image (or fetch its cached embedding); returns (content key, embedding)."""
        loaded = image if isinstance(image, LoadedImage) else load_image(image, max_pixels=max_pixels)
        key = image_key(loaded.pixels)
        emb = self.cache.get(key)
        if emb is None:
            with self._lock:
                emb = self.cache.get(key)
                if emb is None:
                    emb = self.model.encode(loaded.pixels)
                    self.cache.put(key, emb)
        return key, emb

    def set_image(self, image: ImageSource | LoadedImage, *, max_pixels: int | None = None) -> str:
        """Make ``image`` the current image for :meth:`predict`; returns its content key."""
        key, emb = self.embed(image, max_pixels=max_pixels)
        self._current = (key, emb.frame.original_size)
        self._current_emb = emb
        return key

    def _embedding_for(self, image: ImageSource | LoadedImage | Embedding | None) -> Embedding:
        if image is None:
            if self._current is None:
                raise PromptError("no image set; call set_image(image) or pass image=")
            key = self._current[0]
            emb = self.cache.get(key)
            return emb if emb is not None else self._current_emb
        if isinstance(image, Embedding):
            return image
        return self.embed(image)[1]

    # ------------------------------------------------------------------ prompts
    def predict(
        self,
        *,
        points: Sequence[Sequence[float]] | np.ndarray | None = None,
        labels: Sequence[int] | np.ndarray | None = None,
        box: Sequence[float] | np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask: bool = False,
        image: ImageSource | LoadedImage | None = None,
    ) -> Instances:
        """One prompt on the current image (or ``image``). See :meth:`predict_batch`."""
        prompt = Prompt(points=points, labels=labels, box=box, mask_input=mask_input)
        return self.predict_batch([prompt], multimask=multimask, image=image)

    def predict_batch(
        self,
        prompts: Sequence[Prompt],
        *,
        multimask: bool = False,
        image: ImageSource | LoadedImage | Embedding | None = None,
        return_logits: bool = True,
    ) -> Instances:
        """Several prompts on one image in batched decoder calls.

        Prompts of the same shape (number of points, box or not, mask or not) run in one batch;
        the result is identical to running each alone. Returns one mask per prompt (three with
        ``multimask``, in SAM's order), scores = predicted IoU, ``prompts`` = each mask's prompt,
        ``data["prompt_index"]``, ``data["mask_index"]`` and, with ``return_logits``,
        ``data["low_res_logits"]`` (LxL float32, feed back as ``mask_input`` to refine).
        """
        if not prompts:
            raise PromptError("no prompts given; pass at least one point, box or mask")
        emb = self._embedding_for(image)
        h, w = emb.frame.original_size
        for p in prompts:
            p.check_inside(h, w)
        groups: dict[tuple, list[int]] = {}
        for i, p in enumerate(prompts):
            groups.setdefault(p.shape_key, []).append(i)
        m = 3 if multimask else 1
        L = self.model.low_res_size
        low_res = torch.zeros((len(prompts), m, L, L))
        ious = torch.zeros((len(prompts), m))
        from vfm.runtime import small_work_threads

        with self._lock, small_work_threads(self.model.device, len(prompts)):
            for idx in groups.values():
                lr, iou = self._decode_group(emb, [prompts[i] for i in idx], multimask)
                low_res[idx] = lr.cpu()
                ious[idx] = iou.cpu()
            # thresholded in column-major order (P x M x W x H), handed on as the H x W view: the RLE
            # encoder reads it without a transposing copy
            masks = self.model.upscale(low_res, emb.frame, transposed=True) > self.model.mask_threshold
        masks_np = masks.reshape(-1, w, h).numpy().transpose(0, 2, 1)
        n = masks_np.shape[0]
        data: dict[str, Any] = {
            "prompt_index": np.repeat(np.arange(len(prompts)), m),
            "mask_index": np.tile(np.arange(m), len(prompts)),
        }
        if return_logits:
            data["low_res_logits"] = low_res.reshape(n, L, L).numpy().astype(np.float32)
        return Instances.from_masks(
            masks_np,
            ious.reshape(-1).numpy(),
            prompts=[prompts[i].to_json() for i in data["prompt_index"]],
            data=data,
        )

    def _decode_group(self, emb: Embedding, group: list[Prompt], multimask: bool):
        first = group[0]
        points = labels = boxes = masks = None
        if first.points is not None:
            points = torch.from_numpy(np.stack([self.model.coords_to_model(p.points, emb.frame) for p in group]))
            labels = torch.from_numpy(np.stack([p.labels for p in group]))
        if first.box is not None:
            corners = np.stack([p.box.reshape(2, 2) for p in group])
            boxes = torch.from_numpy(self.model.coords_to_model(corners, emb.frame).reshape(-1, 4))
        if first.mask_input is not None:
            masks = torch.from_numpy(np.stack([self._low_res_mask(p.mask_input, emb) for p in group]))[:, None]
        return self.model.decode(emb, points, labels, boxes, masks, multimask)

    def _low_res_mask(self, mask: np.ndarray, emb: Embedding) -> np.ndarray:
        L = self.model.low_res_size
        if mask.shape == (L, L) and mask.dtype != bool:
            return mask.astype(np.float32)
        if mask.shape == tuple(emb.frame.original_size):
            return self.model.mask_to_low_res(mask > 0, emb.frame)
        h, w = emb.frame.original_size
        raise PromptError(
            f"mask_input of shape {mask.shape} fits neither the low-res logits ({L}x{L}) nor the image ({h}x{w})"
        )


def segment(
    image: ImageSource,
    *,
    model: str = "sam-vit-base",
    points=None,
    labels=None,
    box=None,
    multimask: bool = False,
    device: str | None = None,
) -> Instances:
    """One-shot convenience: load ``model``, embed ``image``, answer one prompt."""
    seg = Segmenter.load(model, device=device)
    return seg.predict(points=points, labels=labels, box=box, multimask=multimask, image=image)
