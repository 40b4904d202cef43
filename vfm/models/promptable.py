"""The contract every promptable segmentation model (SAM, SAM-HQ, SAM 2) fulfils.

Two coordinate frames: the *original* frame (pixels of the loaded image, what users give and get)
and the *model* frame (the resized, padded input the network sees). Adapters own the mapping.
Only ``encode`` and ``decode`` touch the device.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from vfm.runtime import autocast


@dataclass(frozen=True)
class Frame:
    """How an original image maps into the model input."""

    original_size: tuple[int, int]  # (H, W) of the loaded image
    input_size: tuple[int, int]  # (h, w) of the resized image inside the model input (before padding)


@dataclass
class Embedding:
    """A cached image embedding: family-specific tensors plus the frame they belong to."""

    tensors: dict[str, Any]
    frame: Frame

    @property
    def nbytes(self) -> int:
        total = 0
        for v in self.tensors.values():
            for t in v if isinstance(v, (list, tuple)) else [v]:
                total += t.element_size() * t.nelement()
        return total


@dataclass(frozen=True)
class Preprocessing:
    """Input preprocessing, read from the checkpoint's processor config or derived from its model config."""

    image_size: int  # model input side (square)
    mean: tuple[float, float, float]  # in 0..1 units
    std: tuple[float, float, float]
    keep_aspect: bool  # SAM: resize longest side + pad; SAM 2: resize to a square
    # How the image is resampled, as each family's reference does it: "pil" = PIL bilinear of the uint8
    # image (Meta's SamPredictor, via torchvision's resize of a PIL image); "torchvision" = torchvision's
    # antialiased bilinear resize of the float image in 0..1 (Meta's SAM2Transforms).
    resize: str = "pil"


class PromptableModel(ABC):
    """Adapter around a transformers SAM-family model."""

    family: str = ""
    mask_threshold: float = 0.0

    def __init__(self, model: torch.nn.Module, prep: Preprocessing, device: torch.device, encoder_dtype: torch.dtype):
        self.model = model.eval().to(device)
        self.prep = prep
        self.device = device
        self.encoder_dtype = encoder_dtype
        self.external_encoder = None  # an exported encoder (vfm.models.backends): pixel_values -> image_embeddings
        self.backend = "torch"

    # ------------------------------------------------------------------ frames
    def frame_for(self, height: int, width: int) -> Frame:
        s = self.prep.image_size
        if self.prep.keep_aspect:
            scale = s / max(height, width)
            return Frame((height, width), (int(height * scale + 0.5), int(width * scale + 0.5)))
        return Frame((height, width), (s, s))

    def coords_to_model(self, xy: np.ndarray, frame: Frame) -> np.ndarray:
        """Map (..., 2) XY original pixels into the model frame."""
        h, w = frame.original_size
        ih, iw = frame.input_size
        out = np.asarray(xy, dtype=np.float64).copy()
        out[..., 0] *= iw / w
        out[..., 1] *= ih / h
        return out.astype(np.float32)

    @property
    def low_res_size(self) -> int:
        return self.prep.image_size // 4

    # ------------------------------------------------------------------ pre-processing
    def preprocess(self, pixels: np.ndarray) -> tuple[torch.Tensor, Frame]:
        """RGB uint8 HxWx3 -> normalized 1x3xSxS float tensor (on the device) and its frame."""
        h, w = pixels.shape[:2]
        frame = self.frame_for(h, w)
        ih, iw = frame.input_size
        mean = torch.tensor(self.prep.mean, device=self.device).view(3, 1, 1)
        std = torch.tensor(self.prep.std, device=self.device).view(3, 1, 1)
        if self.prep.resize == "torchvision":
            from torchvision.transforms.functional import InterpolationMode, resize

            x = torch.from_numpy(np.ascontiguousarray(pixels)).to(self.device).permute(2, 0, 1).float() / 255.0
            if (ih, iw) != (h, w):
                x = resize(x, [ih, iw], InterpolationMode.BILINEAR, antialias=True)
            x = (x - mean) / std
        else:
            if (ih, iw) != (h, w):
                resized = np.asarray(Image.fromarray(pixels).resize((iw, ih), Image.BILINEAR))
            else:
                resized = pixels
            x = torch.from_numpy(np.array(resized, dtype=np.uint8, copy=True)).to(self.device).permute(2, 0, 1).float()
            x = (x - mean * 255.0) / (std * 255.0)
        s = self.prep.image_size
        if (ih, iw) != (s, s):
            x = torch.nn.functional.pad(x, (0, s - iw, 0, s - ih))
        return x.unsqueeze(0), frame

    # ------------------------------------------------------------------ device work
    @torch.inference_mode()
    def encode(self, pixels: np.ndarray) -> Embedding:
        pixel_values, frame = self.preprocess(pixels)
        with autocast(self.device, self.encoder_dtype):
            tensors = self._encode(pixel_values)
        return Embedding(tensors={k: _to_float(v) for k, v in tensors.items()}, frame=frame)

    @abstractmethod
    def _encode(self, pixel_values: torch.Tensor) -> dict[str, Any]:
        """Run the image encoder; returns the tensors ``_decode`` needs (batch 1)."""

    @torch.inference_mode()
    def decode(
        self,
        embedding: Embedding,
        points: torch.Tensor | None,
        labels: torch.Tensor | None,
        boxes: torch.Tensor | None,
        mask_inputs: torch.Tensor | None,
        multimask: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode P prompts of one shape.

        Args:
            points: PxNx2 model-frame XY, or None. labels: PxN (1 positive, 0 negative).
            boxes: Px4 model-frame XYXY, or None. mask_inputs: Px1xLxL low-res logits, or None.
        Returns:
            low-res mask logits PxMxLxL and predicted IoU PxM (M = 3 with ``multimask`` else 1).
        """
        return self._decode(embedding, points, labels, boxes, mask_inputs, multimask)

    @abstractmethod
    def _decode(self, embedding, points, labels, boxes, mask_inputs, multimask): ...

    def upscale(self, low_res: torch.Tensor, frame: Frame, *, transposed: bool = False) -> torch.Tensor:
        """Low-res logits (...xLxL) -> logits at the original image size (...xHxW).

        ``transposed``: return ...xWxH, the logits of the transposed image (the same values: the
        bilinear weights of each axis do not depend on the other). Thresholded and transposed back
        as a NumPy view, that is the column-major layout pycocotools encodes without a copy.
        """
        shape = low_res.shape
        x = low_res.reshape(-1, 1, *shape[-2:]).float()
        h, w = frame.original_size
        if transposed:
            x = x.transpose(-1, -2)
        if self.prep.keep_aspect:
            s = self.prep.image_size
            x = torch.nn.functional.interpolate(x, (s, s), mode="bilinear", align_corners=False)
            ih, iw = frame.input_size
            x = x[..., :iw, :ih] if transposed else x[..., :ih, :iw]
        size = (w, h) if transposed else (h, w)
        if tuple(x.shape[-2:]) != size:  # same size: bilinear is the identity
            x = torch.nn.functional.interpolate(x, size, mode="bilinear", align_corners=False)
        return x.reshape(*shape[:-2], *size)

    def mask_to_low_res(self, mask: np.ndarray, frame: Frame, logit: float = 8.0) -> np.ndarray:
        """A binary HxW mask in the original frame -> LxL low-res logits (+logit inside, -logit outside)."""
        ih, iw = frame.input_size
        s = self.prep.image_size
        img = Image.fromarray(np.asarray(mask, dtype=np.uint8) * 255).resize((iw, ih), Image.BILINEAR)
        canvas = np.zeros((s, s), dtype=np.float32)
        canvas[:ih, :iw] = np.asarray(img, dtype=np.float32) / 255.0
        low = np.asarray(Image.fromarray(canvas).resize((self.low_res_size,) * 2, Image.BILINEAR), dtype=np.float32)
        return np.where(low > 0.5, logit, -logit).astype(np.float32)


def _to_float(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return [t.float() for t in v]
    return v.float()


def _expand(t: torch.Tensor, n: int) -> torch.Tensor:
    return t.expand(n, *t.shape[1:])
