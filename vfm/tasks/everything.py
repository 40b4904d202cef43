"""Segment everything: SAM's automatic mask generator, same masks as Meta's reference, faster and lean.

    from vfm.tasks.everything import MaskGenerator
    gen = MaskGenerator(Segmenter.load("sam-vit-base"), points_per_side=32)
    inst = gen.generate("photo.jpg")   # Instances with COCO RLEs, scores = predicted IoU

Same parameters, names, defaults and semantics as ``SamAutomaticMaskGenerator``: a point grid per
crop, three masks per point, predicted-IoU filter, stability score on the upscaled logits (with
offset), boxes in the reference's inclusive convention, crop-edge filter, box NMS per crop, crop
NMS preferring smaller crops, optional removal of small holes and islands.

Exact reorderings that skip work whose result the reference throws away:
- points whose three masks all fail ``pred_iou_thresh`` never run the decoder's upscaling;
- logits are upscaled in small chunks; the stability score and the box come from the chunk and the
  candidate is kept as a bit-packed mask (1 bit/pixel) — never a dense stack of all candidates;
- masks are RLE-encoded only after NMS, so suppressed masks are never encoded;
- small-region removal works one mask at a time (the reference decodes all masks into one stack).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import masks_to_boxes, nms

from vfm.errors import PromptError
from vfm.io.image import ImageSource, LoadedImage, load_image
from vfm.results.instances import Instances
from vfm.results.rle import decode_rle, encode_rles
from vfm.tasks import amg_utils as U
from vfm.tasks.amg_decode import PointDecoder

Progress = Callable[[int, int, str], None]

#: Upper bound on the number of logit pixels upscaled at once (64 MB of float32).
CHUNK_PIXELS = 16 * 1024 * 1024


class MaskGenerator:
    """Automatic mask generation on a :class:`vfm.tasks.segment.Segmenter` (SAM, SAM-HQ, SAM 2)."""

    def __init__(
        self,
        segmenter,
        points_per_side: int | None = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.88,
        stability_score_thresh: float = 0.95,
        stability_score_offset: float = 1.0,
        box_nms_thresh: float = 0.7,
        crop_n_layers: int = 0,
        crop_nms_thresh: float = 0.7,
        crop_overlap_ratio: float = 512 / 1500,
        crop_n_points_downscale_factor: int = 1,
        point_grids: Sequence[np.ndarray] | None = None,
        min_mask_region_area: int = 0,
        progress: Progress | None = None,
    ):
        if (points_per_side is None) == (point_grids is None):
            raise PromptError("give exactly one of points_per_side and point_grids")
        if points_per_side is not None and int(points_per_side) < 1:
            raise PromptError(f"points_per_side must be at least 1, got {points_per_side}")
        if int(points_per_batch) < 1:
            raise PromptError(f"points_per_batch must be at least 1, got {points_per_batch}")
        if int(crop_n_layers) < 0:
            raise PromptError(f"crop_n_layers must be 0 or more, got {crop_n_layers}")
        if int(crop_n_points_downscale_factor) < 1:
            raise PromptError(f"crop_n_points_downscale_factor must be at least 1, got {crop_n_points_downscale_factor}")
        if not 0 <= float(crop_overlap_ratio) < 1:
            raise PromptError(f"crop_overlap_ratio must be in [0, 1), got {crop_overlap_ratio}")
        if min_mask_region_area < 0:
            raise PromptError(f"min_mask_region_area must be 0 or more, got {min_mask_region_area}")
        if points_per_side is not None:
            sides = [int(int(points_per_side) / (int(crop_n_points_downscale_factor) ** i)) for i in range(int(crop_n_layers) + 1)]
            if min(sides) < 1:
                raise PromptError(
                    f"points_per_side {points_per_side} leaves no points in crop layer {crop_n_layers}; "
                    "use more points or a smaller crop_n_points_downscale_factor"
                )
            grids = U.build_all_layer_point_grids(int(points_per_side), int(crop_n_layers), int(crop_n_points_downscale_factor))
        else:
            grids = [np.asarray(g, dtype=np.float64).reshape(-1, 2) for g in point_grids]
            if len(grids) != int(crop_n_layers) + 1:
                raise PromptError(f"point_grids needs crop_n_layers + 1 = {int(crop_n_layers) + 1} grids, got {len(grids)}")
            for g in grids:
                if len(g) == 0 or g.min() < 0 or g.max() > 1:
                    raise PromptError("each point grid must hold points in [0, 1]x[0, 1] (fractions of the crop)")
        self.segmenter = segmenter
        self.points_per_side = points_per_side
        self.point_grids = grids
        self.points_per_batch = int(points_per_batch)
        self.pred_iou_thresh = float(pred_iou_thresh)
        self.stability_score_thresh = float(stability_score_thresh)
        self.stability_score_offset = float(stability_score_offset)
        self.box_nms_thresh = float(box_nms_thresh)
        self.crop_n_layers = int(crop_n_layers)
        self.crop_nms_thresh = float(crop_nms_thresh)
        self.crop_overlap_ratio = float(crop_overlap_ratio)
        self.crop_n_points_downscale_factor = int(crop_n_points_downscale_factor)
        self.min_mask_region_area = int(min_mask_region_area)
        self.progress = progress
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------ public
    def generate(self, image: ImageSource | LoadedImage, *, max_pixels: int | None = None) -> Instances:
        """All masks of ``image`` as :class:`Instances` (RLEs; scores = predicted IoU)."""
        loaded = image if isinstance(image, LoadedImage) else load_image(image, max_pixels=max_pixels)
        pixels = loaded.pixels
        orig_h, orig_w = pixels.shape[:2]
        self.timings = {"encode": 0.0, "decode": 0.0, "post": 0.0}
        crop_boxes, layer_idxs = U.generate_crop_boxes((orig_h, orig_w), self.crop_n_layers, self.crop_overlap_ratio)
        # On images of a few pixels the reference's crop grid has crops that start past the edge: no pixels, skipped.
        kept = [(b, layer) for b, layer in zip(crop_boxes, layer_idxs) if b[2] > b[0] and b[3] > b[1]]
        crop_boxes, layer_idxs = [b for b, _ in kept], [layer for _, layer in kept]
        n_batches = [-(-len(self.point_grids[layer]) // self.points_per_batch) for layer in layer_idxs]
        total = sum(n_batches)
        self._done = 0
        parts = []
        for ci, (crop_box, layer) in enumerate(zip(crop_boxes, layer_idxs)):
            stage = f"crop {ci + 1}/{len(crop_boxes)}" if len(crop_boxes) > 1 else "points"
            parts.append(self._process_crop(pixels, crop_box, layer, (orig_h, orig_w), total, stage))
        data = _cat(parts)
        if len(crop_boxes) > 1 and len(data["iou"]):
            t0 = time.perf_counter()
            cb = data["crop_boxes"].double()
            scores = 1 / ((cb[:, 2] - cb[:, 0]) * (cb[:, 3] - cb[:, 1]))
            keep = nms(data["boxes"].float(), scores.float(), self.crop_nms_thresh)
            data = _filter(data, keep)
            self.timings["post"] += time.perf_counter() - t0
        if self.min_mask_region_area > 0 and len(data["iou"]):
            t0 = time.perf_counter()
            data = self._remove_small_regions(data, max(self.box_nms_thresh, self.crop_nms_thresh))
            self.timings["post"] += time.perf_counter() - t0
        return self._to_instances(data, (orig_h, orig_w))

    # ------------------------------------------------------------------ crops
    def _process_crop(self, pixels, crop_box, layer, orig_size, total, stage) -> dict[str, Any]:
        x0, y0, x1, y1 = crop_box
        crop = np.ascontiguousarray(pixels[y0:y1, x0:x1])
        crop_h, crop_w = crop.shape[:2]
        self._report(total, f"{stage}: embedding")
        t0 = time.perf_counter()
        _, emb = self.segmenter.embed(crop)
        self.timings["encode"] += time.perf_counter() - t0
        model = self.segmenter.model
        decoder = PointDecoder(model, emb)
        points = self.point_grids[layer] * np.array([[crop_w, crop_h]], dtype=np.float64)
        cands: list[dict[str, Any]] = []
        for start in range(0, len(points), self.points_per_batch):
            batch = points[start:start + self.points_per_batch]
            cands.append(self._process_batch(decoder, batch, crop_box, orig_size, (crop_h, crop_w)))
            self._done += 1
            self._report(total, f"{stage}: points")
        t0 = time.perf_counter()
        data = _cat(cands)
        keep = nms(data["boxes"].float(), data["iou"], self.box_nms_thresh)
        data = _filter(data, keep)
        # Back to the original frame; only now are the surviving masks RLE-encoded.
        offset = torch.tensor([[x0, y0, x0, y0]], dtype=data["boxes"].dtype)
        data["boxes"] = data["boxes"] + offset
        data["points"] = data["points"] + np.array([[x0, y0]], dtype=np.float64)
        data["rles"] = self._encode(data.pop("packed"), (crop_h, crop_w), crop_box, orig_size)
        data["crop_boxes"] = torch.tensor([crop_box] * len(data["iou"]), dtype=torch.int64).reshape(-1, 4)
        self.timings["post"] += time.perf_counter() - t0
        del decoder
        return data

    def _process_batch(self, decoder: PointDecoder, points, crop_box, orig_size, crop_size) -> dict[str, Any]:
        model = self.segmenter.model
        frame = decoder.embedding.frame
        thr = float(model.mask_threshold)
        t0 = time.perf_counter()
        state = decoder.run(model.coords_to_model(points, frame))
        iou = state.iou  # P x 3
        keep = iou > self.pred_iou_thresh if self.pred_iou_thresh > 0 else torch.ones_like(iou, dtype=torch.bool)
        rows = torch.nonzero(keep.any(dim=1)).flatten()
        low = decoder.masks(state, rows)  # R x 3 x L x L
        self.timings["decode"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        sel = keep[rows]  # R x 3: masks to keep among the computed points' (reference order: point-major)
        low = low[sel]  # M x L x L
        ious = iou[rows][sel]
        pts = np.repeat(points[rows.numpy()], 3, axis=0)[sel.flatten().numpy()]
        h, w = crop_size
        chunk = max(1, CHUNK_PIXELS // (h * w))
        out_iou, out_stab, out_boxes, out_pts, packed = [], [], [], [], []
        orig_h, orig_w = orig_size
        for s in range(0, len(low), chunk):
            logits = _upscale(model, low[s:s + chunk], frame)
            inter, union = U.stability_counts(logits, thr, self.stability_score_offset)
            stab = inter / union
            k = stab >= self.stability_score_thresh if self.stability_score_thresh > 0 else torch.ones_like(stab, dtype=torch.bool)
            if not bool(k.all()):
                logits = logits[k]
            masks = logits > thr
            del logits
            boxes = masks_to_boxes(masks).long()
            edge = U.is_box_near_crop_edge(boxes, crop_box, [0, 0, orig_w, orig_h])
            idx = torch.nonzero(k).flatten()
            if bool(edge.any()):
                masks, boxes, idx = masks[~edge], boxes[~edge], idx[~edge]
            g = idx + s
            out_iou.append(ious[g])
            out_stab.append(stab[idx])
            out_boxes.append(boxes)
            out_pts.append(pts[g.numpy()])
            packed.append(np.packbits(masks.reshape(len(masks), h * w).numpy(), axis=1))
        self.timings["post"] += time.perf_counter() - t0
        if not out_iou:
            return _empty(h * w)
        return {
            "iou": torch.cat(out_iou),
            "stability": torch.cat(out_stab),
            "boxes": torch.cat(out_boxes),
            "points": np.concatenate(out_pts),
            "packed": np.concatenate(packed),
        }

    def _encode(self, packed: np.ndarray, crop_size, crop_box, orig_size) -> list[dict[str, Any]]:
        h, w = crop_size
        orig_h, orig_w = orig_size
        x0, y0 = crop_box[:2]
        full = (x0, y0, x0 + w, y0 + h) == (0, 0, orig_w, orig_h)
        rles: list[dict[str, Any]] = []
        chunk = max(1, CHUNK_PIXELS // (orig_h * orig_w))
        for s in range(0, len(packed), chunk):
            m = np.unpackbits(packed[s:s + chunk], axis=1, count=h * w).reshape(-1, h, w)
            if not full:
                canvas = np.zeros((len(m), orig_h, orig_w), dtype=np.uint8)
                canvas[:, y0:y0 + h, x0:x0 + w] = m
                m = canvas
            rles += encode_rles(m)
        return rles

    # ------------------------------------------------------------------ small regions
    def _remove_small_regions(self, data: dict[str, Any], nms_thresh: float) -> dict[str, Any]:
        """The reference's postprocess_small_regions, one mask at a time."""
        new_rles, boxes, scores = [], [], []
        for rle in data["rles"]:
            mask = decode_rle(rle)
            mask, changed = U.remove_small_regions(mask, self.min_mask_region_area, mode="holes")
            unchanged = not changed
            mask, changed = U.remove_small_regions(mask, self.min_mask_region_area, mode="islands")
            unchanged = unchanged and not changed
            scores.append(float(unchanged))
            boxes.append(masks_to_boxes(torch.from_numpy(mask)[None]).long()[0])
            new_rles.append(None if unchanged else encode_rles(mask[None])[0])
        boxes_t = torch.stack(boxes)
        keep = nms(boxes_t.float(), torch.tensor(scores), nms_thresh)
        for i in keep.tolist():
            if scores[i] == 0.0:
                data["rles"][i] = new_rles[i]
                data["boxes"][i] = boxes_t[i]
        return _filter(data, keep)

    # ------------------------------------------------------------------ output
    def _to_instances(self, data: dict[str, Any], size: tuple[int, int]) -> Instances:
        n = len(data["iou"])
        extra = {
            "stability_score": data["stability"].numpy().astype(np.float32),
            "point_coords": [[[float(x), float(y)]] for x, y in data["points"]],
            "crop_box": [U.xyxy_to_xywh_list(b) for b in data["crop_boxes"].tolist()],
        }
        if n == 0:
            return Instances(image_size=size, xyxy=np.zeros((0, 4), np.float32), scores=np.zeros(0, np.float32),
                             rles=[], data=extra)
        return Instances.from_rles(data["rles"], data["iou"].numpy(), data=extra)

    def _report(self, total: int, stage: str) -> None:
        if self.progress is not None:
            self.progress(self._done, total, stage)


# ---------------------------------------------------------------------------------- helpers
def _upscale(model, low: torch.Tensor, frame) -> torch.Tensor:
    """The reference's upscaling (bilinear to the model input, crop the padding, bilinear to the image)."""
    x = low[:, None].float()
    if model.prep.keep_aspect:
        s = model.prep.image_size
        x = F.interpolate(x, (s, s), mode="bilinear", align_corners=False)
        ih, iw = frame.input_size
        x = x[..., :ih, :iw]
    if tuple(x.shape[-2:]) != tuple(frame.original_size):  # same size: interpolation is the identity
        x = F.interpolate(x, frame.original_size, mode="bilinear", align_corners=False)
    return x[:, 0]


def _empty(hw: int) -> dict[str, Any]:
    return {
        "iou": torch.zeros(0),
        "stability": torch.zeros(0),
        "boxes": torch.zeros((0, 4), dtype=torch.int64),
        "points": np.zeros((0, 2)),
        "packed": np.zeros((0, (hw + 7) // 8), dtype=np.uint8),
    }


def _cat(parts: list[dict[str, Any]]) -> dict[str, Any]:
    if not parts:
        return {"iou": torch.zeros(0), "stability": torch.zeros(0), "boxes": torch.zeros((0, 4), dtype=torch.int64),
                "points": np.zeros((0, 2)), "rles": [], "crop_boxes": torch.zeros((0, 4), dtype=torch.int64)}
    out: dict[str, Any] = {}
    for key in parts[0]:
        vals = [p[key] for p in parts]
        if isinstance(vals[0], torch.Tensor):
            out[key] = torch.cat(vals)
        elif isinstance(vals[0], np.ndarray):
            out[key] = np.concatenate(vals)
        else:
            out[key] = [v for vs in vals for v in vs]
    return out


def _filter(data: dict[str, Any], keep: torch.Tensor) -> dict[str, Any]:
    idx = keep.numpy() if isinstance(keep, torch.Tensor) else np.asarray(keep)
    out: dict[str, Any] = {}
    for key, v in data.items():
        if isinstance(v, torch.Tensor):
            out[key] = v[torch.as_tensor(idx, dtype=torch.int64)]
        elif isinstance(v, np.ndarray):
            out[key] = v[idx]
        else:
            out[key] = [v[i] for i in idx.tolist()]
    return out
