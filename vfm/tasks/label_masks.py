"""A label for every mask (Semantic Segment Anything): class names for masks from CLIP/SigLIP.

    labeler = MaskLabeler(Classifier.load("clip-vit-base-32"))
    labeled = labeler.label(image, masks, "person, dog, grass, sky")   # Instances
    labeled.class_names, labeled.class_ids, labeled.data["label_score"]

How a mask is scored
  1. Its box (from ``instances.xyxy``) is grown by ``margin`` (default 10% of the box's longer side
     on each side, for context) and clipped to the image; inside that crop every pixel outside the
     mask is filled with gray (``FILL``, CLIP's mean color), so the classifier sees the object and
     nothing else. The crop is padded to a square with the same gray (no center-crop can cut the
     object off) and resized to the classifier's input size.
  2. All crops of the image go through the image encoder in ONE batched forward pass (split in
     chunks of ``chunk`` crops only to bound memory), and are compared with the class prompts
     (template ``"a photo of a {}."``): CLIP gives a softmax over the classes, SigLIP a sigmoid
     per class (see :mod:`vfm.tasks.classify`).
  3. Optional voting with a closed-set semantic segmentation model (Mask2Former / OneFormer):
     the image is segmented once; for each mask and class, ``vote`` is the share of the mask's
     pixels whose semantic label names that class (a semantic label matches when one of its
     comma-separated synonyms equals the class name, case-insensitive, e.g. ADE20K's
     "building, edifice" matches "building"). The final score is
     ``(1 - semantic_weight) * classifier_score + semantic_weight * vote`` (default weight 0.5);
     classes the semantic model does not know get no votes.
  4. With ``prompt: class`` entries (:mod:`vfm.tasks.ontology`) crops are scored against the
     prompts and a class gets its prompts' total (CLIP softmax) or best score (SigLIP sigmoid).
     Each mask gets the class with the highest final score: ``class_names``, ``class_ids`` (index
     into the class list) and ``data["label_score"]``. ``scores`` (the mask quality from
     the segmenter) are kept. With voting, ``data["semantic_label"]`` holds the semantic model's
     majority label of the mask.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch
from PIL import Image

from vfm.errors import PromptError
from vfm.io.image import ImageSource, LoadedImage
from vfm.results.instances import Instances
from vfm.tasks.ontology import Ontology
from vfm.tasks.classify import DEFAULT_TEMPLATE, Classifier, as_pixels, check_template

#: Gray that fills the background of a crop (CLIP's normalization mean, 0..255).
FILL = (122, 116, 104)
DEFAULT_MARGIN = 0.1
DEFAULT_CHUNK = 256
DEFAULT_SEMANTIC_WEIGHT = 0.5


def crop_box(xyxy: Sequence[float], margin: float, height: int, width: int) -> tuple[int, int, int, int]:
    """Integer crop window (x0, y0, x1, y1) around an XYXY box grown by ``margin`` x its longer side."""
    x0, y0, x1, y1 = (float(v) for v in xyxy)
    pad = margin * max(x1 - x0, y1 - y0, 1.0)
    cx0 = int(np.clip(np.floor(x0 - pad), 0, width - 1))
    cy0 = int(np.clip(np.floor(y0 - pad), 0, height - 1))
    cx1 = int(np.clip(np.ceil(x1 + pad), cx0 + 1, width))
    cy1 = int(np.clip(np.ceil(y1 + pad), cy0 + 1, height))
    return cx0, cy0, cx1, cy1


def masked_crop(pixels: np.ndarray, mask: np.ndarray, window: tuple[int, int, int, int], size: int,
                fill: tuple[int, int, int] = FILL) -> np.ndarray:
    """The window of ``pixels`` with non-mask pixels set to ``fill``, padded square, resized to size x size."""
    x0, y0, x1, y1 = window
    crop = pixels[y0:y1, x0:x1].copy()
    crop[~mask[y0:y1, x0:x1]] = fill
    h, w = crop.shape[:2]
    side = max(h, w)
    square = np.empty((side, side, 3), dtype=np.uint8)
    square[:] = fill
    oy, ox = (side - h) // 2, (side - w) // 2
    square[oy : oy + h, ox : ox + w] = crop
    return np.asarray(Image.fromarray(square).resize((size, size), Image.BICUBIC))


def synonym_matrix(semantic_names: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """S x C bool: semantic label s names class c (one of its comma-separated synonyms equals it)."""
    wanted = [c.strip().lower() for c in classes]
    out = np.zeros((len(semantic_names), len(classes)), dtype=bool)
    for s, name in enumerate(semantic_names):
        synonyms = {part.strip().lower() for part in str(name).split(",") if part.strip()}
        for c, cls in enumerate(wanted):
            out[s, c] = cls in synonyms
    return out


def vote_shares(semantic_map: np.ndarray, semantic_names: Sequence[str], instances: Instances,
                classes: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """(N x C share of each mask's pixels whose semantic label names class c, N majority semantic labels)."""
    match = synonym_matrix(semantic_names, classes).astype(np.float64)
    n_sem = len(semantic_names)
    shares = np.zeros((len(instances), len(classes)), dtype=np.float64)
    majority: list[str] = []
    for i in range(len(instances)):
        m = instances.mask(i)
        counts = np.bincount(semantic_map[m].ravel(), minlength=n_sem)[:n_sem].astype(np.float64)
        area = counts.sum()
        if area > 0:
            shares[i] = counts @ match / area
            majority.append(str(semantic_names[int(counts.argmax())]).split(",")[0].strip())
        else:
            majority.append("")
    return shares, majority


class MaskLabeler:
    """Names every mask of an image with one of the given classes (see the module docstring)."""

    def __init__(self, classifier: Classifier, semantic=None, *, template: str = DEFAULT_TEMPLATE,
                 margin: float = DEFAULT_MARGIN, chunk: int = DEFAULT_CHUNK,
                 semantic_weight: float = DEFAULT_SEMANTIC_WEIGHT, fill: tuple[int, int, int] = FILL):
        if not 0.0 <= float(semantic_weight) <= 1.0:
            raise PromptError(f"semantic_weight {semantic_weight} must be between 0 and 1")
        if margin < 0:
            raise PromptError(f"margin {margin} must be >= 0")
        self.classifier = classifier
        self.semantic = semantic
        self.template = check_template(template)
        self.margin = float(margin)
        self.chunk = max(1, int(chunk))
        self.semantic_weight = float(semantic_weight)
        self.fill = tuple(int(v) for v in fill)
        self._text_cache: dict[tuple[str, ...], torch.Tensor] = {}

    @classmethod
    def load(cls, classifier: str = "clip-vit-base-32", semantic: str | None = None, device: str | None = None,
             precision: str = "fp32", **kwargs) -> "MaskLabeler":
        from vfm.models.semantic import SemanticSegmenter

        clf = Classifier.load(classifier, device=device, precision=precision)
        sem = SemanticSegmenter.load(semantic, device=device) if semantic else None
        return cls(clf, sem, **kwargs)

    def text_embeddings(self, classes: list[str]) -> torch.Tensor:
        key = (self.template, *classes)
        if key not in self._text_cache:
            self._text_cache.clear()
            self._text_cache[key] = self.classifier.adapter.embed_texts(self.classifier.prompts(classes, self.template))
        return self._text_cache[key]

    def crops(self, pixels: np.ndarray, instances: Instances, indices: Iterable[int] | None = None) -> list[np.ndarray]:
        """One masked, square, classifier-sized crop per instance (HxWx3 uint8), for ``indices`` or all."""
        h, w = pixels.shape[:2]
        size = self.classifier.adapter.image_size
        out = []
        for i in range(len(instances)) if indices is None else indices:
            window = crop_box(instances.xyxy[i], self.margin, h, w)
            out.append(masked_crop(pixels, instances.mask(i), window, size, self.fill))
        return out

    def classifier_scores(self, pixels: np.ndarray, instances: Instances, classes: list[str]) -> np.ndarray:
        """N x C classifier probabilities of the masked crops.

        All crops go through the image encoder in one batched pass; only beyond ``chunk`` crops is
        the batch split (and the crops made chunk by chunk), which bounds memory for huge mask sets.
        """
        adapter = self.classifier.adapter
        text = self.text_embeddings(classes)
        n = len(instances)
        parts = []
        for start in range(0, n, self.chunk):
            crops = self.crops(pixels, instances, range(start, min(n, start + self.chunk)))
            parts.append(adapter.embed_images(crops, chunk=self.chunk))
        image = torch.cat(parts)
        return adapter.probabilities(adapter.logits(image, text)).numpy().astype(np.float64)

    def label(self, image: ImageSource | LoadedImage, instances: Instances, classes: str | Iterable[str]) -> Instances:
        """``instances`` with class_names, class_ids and data["label_score"] set (scores unchanged)."""
        onto = Ontology.parse(classes)
        names = list(onto.prompts)
        if not instances.has_masks:
            raise PromptError("label needs instances with masks; box-only results have nothing to crop")
        pixels = as_pixels(image)
        if tuple(pixels.shape[:2]) != tuple(instances.image_size):
            raise PromptError(
                f"the image is {pixels.shape[1]}x{pixels.shape[0]} but the masks are for "
                f"{instances.image_size[1]}x{instances.image_size[0]}; pass the image the masks were made from"
            )
        data = dict(instances.data)
        if len(instances) == 0:
            data["label_score"] = np.zeros((0,), np.float32)
            if self.semantic is not None:
                data["semantic_label"] = []
            return _with(instances, [], np.zeros((0,), np.int64), data)
        scores = self.classifier_scores(pixels, instances, names)
        if self.semantic is not None:
            sem_map = self.semantic.segment(pixels)
            shares, majority = vote_shares(sem_map, self.semantic.class_names, instances, names)
            scores = (1.0 - self.semantic_weight) * scores + self.semantic_weight * shares
            data["semantic_label"] = majority
        scores = onto.merge_scores(scores, how="sum" if self.classifier.activation == "softmax" else "max")
        ids = scores.argmax(axis=1)
        data["label_score"] = scores[np.arange(len(ids)), ids].astype(np.float32)
        return _with(instances, [onto.classes[i] for i in ids], ids.astype(np.int64), data)


def _with(instances: Instances, class_names: list[str], class_ids: np.ndarray, data: dict) -> Instances:
    return Instances(
        image_size=instances.image_size, xyxy=instances.xyxy, scores=instances.scores, masks=instances.masks,
        rles=instances.rles, class_ids=class_ids, class_names=class_names, prompts=instances.prompts, data=data,
    )
