"""Open-vocabulary detection: class names (or an example box) -> boxes with class names and scores.

    det = Detector.load("grounding-dino-tiny")
    res = det.detect("photo.jpg", "cat, remote control")     # Instances, boxes only
    res.class_names, res.class_ids, res.scores, res.xyxy       # ids index the parsed class list
    more = det.detect_exemplar("shelf.jpg", "shelf.jpg", (10, 20, 60, 90))   # OWL families

Models: Grounding DINO (``grounding-dino-tiny``/``-base``), MM-Grounding-DINO (``mm-grounding-dino-tiny``/
``-base``/``-large``), OWLv2 (``owlv2-base``/``-large``) and
OWL-ViT (``owlvit-base-32``/``-16``), hub ids and local directories.

Scores and class mapping
  * Grounding DINO: a box's score is its highest token probability (transformers'
    ``post_process_grounded_object_detection``); boxes scoring <= ``box_threshold`` are dropped. The
    box's class is the class whose tokens hold the highest probability, found by token position (so
    duplicate or overlapping words cannot confuse it); boxes whose class tokens stay <=
    ``text_threshold`` are dropped (transformers would give them an empty phrase). Defaults 0.35 / 0.25,
    as in Grounded-SAM.
  * OWLv2 / OWL-ViT: score = sigmoid of the best query's logit, class = that query (transformers'
    ``post_process_object_detection``); default threshold 0.1. ``text_threshold`` is not used.

Boxes are XYXY in original-image pixels, clipped to the image; boxes left with no area (OWLv2's
predictions inside its square padding) are dropped.

Long class lists are never truncated. Grounding DINO reads 256 tokens per prompt (with [CLS], [SEP]
and the '.' after each class): the list is split into prompts that fit, each is run (the image
backbone once), and the results are merged with per-class NMS (IoU ``CHUNK_NMS_IOU``). OWL queries
are independent, so they are embedded in chunks of ``OWL_QUERY_CHUNK`` and the merged logits equal
a single call with every query.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch
from torchvision.ops import batched_nms, box_iou, nms

from vfm.errors import DependencyError, ModelError, PromptError
from vfm.io.image import ImageSource, LoadedImage, load_image
from vfm.results.instances import Instances
from vfm.tasks.ontology import Ontology
from vfm.tasks.thresholds import check_threshold  # noqa: F401 - re-exported: vfm.tasks.detect.check_threshold

GDINO_FAMILIES = ("grounding-dino", "mm-grounding-dino")  # the same prompt, token scores and post-processing
GDINO_BOX_THRESHOLD = 0.35
GDINO_TEXT_THRESHOLD = 0.25
OWL_THRESHOLD = 0.1
OWL_EXEMPLAR_THRESHOLD = 0.5
EXEMPLAR_NMS_IOU = 0.3
CHUNK_NMS_IOU = 0.5
OWL_QUERY_CHUNK = 64


def _pixels(image: ImageSource | LoadedImage | np.ndarray) -> np.ndarray:
    if isinstance(image, LoadedImage):
        return image.pixels
    if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
        return image
    return load_image(image).pixels


class Detector:
    """An open-vocabulary detector (Grounding DINO, OWLv2 or OWL-ViT)."""

    def __init__(self, adapter):
        self.adapter = adapter

    @property
    def family(self) -> str:
        return self.adapter.family

    @property
    def name(self) -> str:
        return self.adapter.name

    @classmethod
    def load(cls, model: str = "grounding-dino-tiny", device: str | None = None, precision: str = "auto") -> "Detector":
        """Load by alias, hub id or local directory (a checkpoint saved with save_pretrained + processor).

        A closed-set checkpoint (DETR, RT-DETR, D-FINE, ...) gives a
        :class:`vfm.tasks.closed_detect.ClosedSetDetector`, which has the same ``detect`` call.
        """
        from transformers import AutoProcessor

        from vfm.models.processors import load_processor
        from vfm.models.registry import load_pretrained, resolve
        from vfm.runtime import resolve_device, resolve_precision, tune_allocator

        resolved = resolve(model, task="detect")
        from vfm.tasks.closed_detect import CLOSED_SET_FAMILIES, ClosedSetDetector

        if resolved.family in CLOSED_SET_FAMILIES:
            return ClosedSetDetector.load(model, device=device, precision="fp32" if precision == "auto" else precision)
        dev = resolve_device(device)
        # "auto": bf16 autocast only on CUDA or CPUs with native bf16; on a CPU without it, forcing bf16
        # made Grounding DINO 3.5x and OWLv2 4-6x slower than fp32 (bench/RESULTS.md).
        dtype = resolve_precision(precision, dev)
        if dev.type == "cpu":
            tune_allocator()
        if resolved.family == "grounding-dino":
            from transformers import GroundingDinoForObjectDetection as Model
        elif resolved.family == "mm-grounding-dino":
            from transformers import MMGroundingDinoForObjectDetection as Model
        elif resolved.family == "omdet-turbo":
            from transformers import OmDetTurboForObjectDetection as Model
        elif resolved.family == "owlv2":
            from transformers import Owlv2ForObjectDetection as Model
        else:
            from transformers import OwlViTForObjectDetection as Model
        try:
            net = load_pretrained(Model.from_pretrained, resolved)
        except ImportError as exc:  # OmDet-Turbo's released checkpoints build their Swin through timm
            raise DependencyError(f"model {resolved.describe()} needs a package that is not installed ({exc}); "
                                  "pip install timm") from None
        processor = load_processor(AutoProcessor, resolved)
        if resolved.family == "omdet-turbo":
            from vfm.models.omdet import OmDetAdapter

            adapter = OmDetAdapter(net, processor, dev, dtype)
        elif resolved.family in GDINO_FAMILIES:
            from vfm.models.grounding_dino import GroundingDinoAdapter

            adapter = GroundingDinoAdapter(net, processor, dev, dtype, family=resolved.family)
        else:
            from vfm.models.owl import OwlAdapter

            adapter = OwlAdapter(net, processor, resolved.family, dev, dtype)
        adapter.name = resolved.name
        return cls(adapter)

    # ------------------------------------------------------------------ text queries
    def detect(
        self,
        image: ImageSource | LoadedImage | np.ndarray,
        classes: str | Iterable[str],
        box_threshold: float | None = None,
        text_threshold: float | None = None,
        max_detections: int | None = None,
    ) -> Instances:
        """Boxes (XYXY, original-image pixels) of every class in ``classes``.

        ``classes`` is a comma-separated string or a list (see :func:`vfm.tasks.classes.parse_classes`:
        duplicates are dropped case-insensitively); an entry ``prompt: class`` asks the model for
        ``prompt`` and names the boxes ``class`` (:mod:`vfm.tasks.ontology`). ``class_ids`` index the
        class list (``Ontology.parse(classes).classes``).
        ``max_detections`` keeps only the best-scoring boxes (then sorted by score, highest first);
        without it boxes come in the model's query order.
        """
        if max_detections is not None and (not isinstance(max_detections, (int, np.integer)) or max_detections < 1):
            raise PromptError(f"max_detections {max_detections!r} must be a whole number >= 1")
        onto = Ontology.parse(classes)
        names = list(onto.prompts)
        box_threshold = check_threshold(box_threshold, "box threshold")
        text_threshold = check_threshold(text_threshold, "text threshold")
        pixels = _pixels(image)
        if self.family in GDINO_FAMILIES:
            res = self._detect_gdino(pixels, names, box_threshold, text_threshold)
        elif self.family == "omdet-turbo":
            res = self._detect_omdet(pixels, names, box_threshold)
        else:
            res = self._detect_owl(pixels, names, box_threshold)
        if max_detections is not None:
            res = res[np.argsort(-res.scores, kind="stable")[: int(max_detections)]]
        return onto.relabel(res)

    def _detect_gdino(self, pixels, names, box_threshold, text_threshold) -> Instances:
        a = self.adapter
        bt = GDINO_BOX_THRESHOLD if box_threshold is None else box_threshold
        tt = GDINO_TEXT_THRESHOLD if text_threshold is None else text_threshold
        h, w = pixels.shape[:2]
        chunks = a.chunk_classes(a.class_tokens(names))
        image_inputs = a.preprocess(pixels)
        all_boxes, all_scores, all_ids = [], [], []
        with a.reuse_backbone():
            for chunk in chunks:
                probs, boxes = a.forward(image_inputs, chunk)
                scores = probs.max(dim=-1).values
                class_scores = torch.stack([probs[:, s:e].max(dim=-1).values for s, e in chunk.spans], dim=-1)
                best_score, best = class_scores.max(dim=-1)
                keep = (scores > bt) & (best_score > tt)
                corners = _center_to_corners(boxes[keep]) * torch.tensor([w, h, w, h], dtype=torch.float32)
                all_boxes.append(corners)
                all_scores.append(scores[keep])
                all_ids.append(torch.tensor(chunk.class_indices, dtype=torch.long)[best[keep]])
        boxes, scores, ids = torch.cat(all_boxes), torch.cat(all_scores), torch.cat(all_ids)
        if len(chunks) > 1:
            keep = batched_nms(boxes, scores, ids, CHUNK_NMS_IOU)
            keep = keep[torch.argsort(scores[keep], descending=True, stable=True)]
            boxes, scores, ids = boxes[keep], scores[keep], ids[keep]
        return self._instances((h, w), boxes, scores, ids, names, chunks=len(chunks))

    def _detect_omdet(self, pixels, names, threshold) -> Instances:
        from vfm.models.omdet import THRESHOLD

        boxes, scores, ids = self.adapter.detect(pixels, names, THRESHOLD if threshold is None else threshold)
        return self._instances(pixels.shape[:2], boxes, scores, ids, names)

    def _detect_owl(self, pixels, names, threshold) -> Instances:
        a = self.adapter
        th = OWL_THRESHOLD if threshold is None else threshold
        h, w = pixels.shape[:2]
        feats, boxes, _ = a.embed_image(pixels)
        logits = []
        for start in range(0, len(names), OWL_QUERY_CHUNK):
            queries = a.text_embeddings(names[start : start + OWL_QUERY_CHUNK])
            logits.append(a.query_logits(feats, queries))
        logits = torch.cat(logits, dim=-1)  # P x N
        best_logit, ids = logits.max(dim=-1)
        scores = torch.sigmoid(best_logit)
        keep = scores > th
        corners = _center_to_corners(boxes[0].float().cpu()[keep]) * a.box_scale(h, w)
        n_chunks = (len(names) + OWL_QUERY_CHUNK - 1) // OWL_QUERY_CHUNK
        return self._instances((h, w), corners, scores[keep], ids[keep], names, chunks=n_chunks)

    def _instances(self, size, boxes, scores, ids, names, **_) -> Instances:
        boxes = clip_boxes(boxes, size)
        inside = _nonempty(boxes)
        boxes, scores, ids = boxes[inside], scores[inside], ids[inside]
        ids_np = ids.numpy().astype(np.int64)
        return Instances(
            image_size=size,
            xyxy=boxes.numpy().astype(np.float32).reshape(-1, 4),
            scores=scores.numpy().astype(np.float32),
            class_ids=ids_np,
            class_names=[names[i] for i in ids_np],
        )

    # ------------------------------------------------------------------ example box
    def detect_exemplar(
        self,
        image: ImageSource | LoadedImage | np.ndarray,
        query_image: ImageSource | LoadedImage | np.ndarray | None,
        query_box: Sequence[float],
        threshold: float | None = None,
        nms_iou: float = EXEMPLAR_NMS_IOU,
    ) -> Instances:
        """Objects in ``image`` that look like the one inside ``query_box`` (XYXY pixels of ``query_image``;
        ``None`` = the same image). OWL families only.

        The query is the class embedding of the model's own box on ``query_image`` that best overlaps
        ``query_box`` (highest IoU); target boxes are scored by sigmoid(logit) against it, kept above
        ``threshold`` (default 0.5) and deduplicated by NMS (IoU ``nms_iou``, as transformers'
        image-guided post-processing). On the same image the example itself is found too.
        """
        if self.family not in ("owlv2", "owlvit"):
            raise ModelError(
                "exemplar detection (find more like this box) needs an OWL model; use --model owlv2-base or owlvit-base-32"
            )
        th = OWL_EXEMPLAR_THRESHOLD if threshold is None else check_threshold(threshold, "threshold")
        a = self.adapter
        pixels = _pixels(image)
        qpixels = pixels if query_image is None else _pixels(query_image)
        qbox = _check_box(query_box, qpixels.shape[:2])
        qh, qw = qpixels.shape[:2]
        q_feats, q_boxes, _ = a.embed_image(qpixels)
        q_corners = _center_to_corners(q_boxes[0].float().cpu()) * a.box_scale(qh, qw)
        ious = box_iou(q_corners, torch.tensor([qbox], dtype=torch.float32))[:, 0]
        best = int(torch.argmax(ious))
        query = a.class_embeddings(q_feats)[0, best][None]
        if query_image is None:
            feats, boxes = q_feats, q_boxes
        else:
            feats, boxes, _ = a.embed_image(pixels)
        h, w = pixels.shape[:2]
        scores = torch.sigmoid(a.query_logits(feats, query)[:, 0])
        corners = _center_to_corners(boxes[0].float().cpu()) * a.box_scale(h, w)
        corners = clip_boxes(corners, (h, w))
        keep = torch.nonzero((scores > th) & _nonempty(corners)).flatten()
        keep = keep[nms(corners[keep], scores[keep], nms_iou)]
        return Instances(
            image_size=(h, w),
            xyxy=corners[keep].numpy(),
            scores=scores[keep].numpy(),
            data={"query_iou": np.full(len(keep), float(ious[best]), dtype=np.float32)},
        )


def clip_boxes(boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Clip N x 4 XYXY pixel boxes to a (height, width) image (detectors may reach past the edges)."""
    h, w = size
    limit = torch.tensor([w, h, w, h], dtype=boxes.dtype)
    return torch.minimum(boxes.clamp(min=0), limit)


def _nonempty(boxes: torch.Tensor) -> torch.Tensor:
    """Boxes with positive area (after clipping; OWLv2 predicts boxes in its padding, outside the image)."""
    return (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])


def _center_to_corners(boxes: torch.Tensor) -> torch.Tensor:
    cx, cy, bw, bh = boxes.unbind(-1)
    return torch.stack([cx - 0.5 * bw, cy - 0.5 * bh, cx + 0.5 * bw, cy + 0.5 * bh], dim=-1)


def _check_box(box: Sequence[float], size: tuple[int, int]) -> list[float]:
    try:
        b = [float(v) for v in box]
    except (TypeError, ValueError):
        raise PromptError(f"exemplar box {box!r} is not 4 numbers X0,Y0,X1,Y1") from None
    h, w = size
    if len(b) != 4 or not all(np.isfinite(b)):
        raise PromptError(f"exemplar box {box!r} must be 4 numbers X0,Y0,X1,Y1 in pixels")
    if b[2] <= b[0] or b[3] <= b[1]:
        raise PromptError(f"exemplar box {b} is empty; give X0,Y0,X1,Y1 with X1 > X0 and Y1 > Y0")
    if b[0] >= w or b[1] >= h or b[2] <= 0 or b[3] <= 0:
        raise PromptError(f"exemplar box {b} lies outside the {w}x{h} query image")
    return b
