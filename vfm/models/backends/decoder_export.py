"""SAM's prompt decoder as an ONNX model for in-browser clicks (GET /v1/models/{name}/decoder.onnx).

Inputs (batch 1, N points):

* ``image_embeddings`` float32 1x256x64x64 — the server's embedding of the image;
* ``point_coords`` float32 1xNx2 — clicks in the model frame: ``x * input_w / width``,
  ``y * input_h / height`` (the resized, unpadded image inside the SxS input);
* ``point_labels`` float32 1xN — 1 positive, 0 negative;
* ``mask_input`` float32 1x1x256x256 and ``has_mask_input`` float32 [1] — the previous answer's
  ``low_res_masks`` to refine it (as the server's ``mask_input``), or zeros and [0];
* ``input_size`` int64 [input_h, input_w] and ``orig_size`` int64 [height, width].

Outputs: ``masks`` float32 1x1xHxW logits at the original size (> 0 is the mask), ``iou`` 1x1, and
``low_res_masks`` 1x1x256x256. The graph is transformers' SamModel prompt encoder + mask decoder
(single mask, as the server decodes with multimask off) followed by vfm's upscaling: bilinear to
SxS, crop to the input size, bilinear to the original size — the same arithmetic as
``PromptableModel.upscale``, so a click decoded in the browser gives the server's mask.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

DECODER_VERSION = 1


class PromptDecoder(torch.nn.Module):
    def __init__(self, sam: torch.nn.Module, image_size: int):
        super().__init__()
        self.sam = sam
        self.image_size = image_size

    def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input, input_size, orig_size):
        sam = self.sam
        sparse, no_mask = sam.prompt_encoder(input_points=point_coords[:, None],
                                             input_labels=point_labels[:, None].to(torch.int64), input_boxes=None,
                                             input_masks=None)
        # both dense prompts, blended: no control flow in the graph
        dense = has_mask_input * sam.prompt_encoder.mask_embed(mask_input) + (1 - has_mask_input) * no_mask
        positional = sam.get_image_wide_positional_embeddings()
        low, iou = sam.mask_decoder(image_embeddings=image_embeddings, image_positional_embeddings=positional,
                                    sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                    multimask_output=False)[:2]
        low = low[:, 0]  # 1 x 1 x 256 x 256
        s = self.image_size
        x = F.interpolate(low, (s, s), mode="bilinear", align_corners=False)
        x = x[..., : input_size[0], : input_size[1]]
        x = F.interpolate(x, size=(orig_size[0], orig_size[1]), mode="bilinear", align_corners=False)
        return x, iou[:, 0], low


def export_decoder(sam: torch.nn.Module, image_size: int, path: Path) -> Path:
    """Write ``path`` (atomically) unless it exists; N (points), H and W are dynamic axes."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    module = PromptDecoder(sam, image_size).eval().float()
    side = image_size // 16
    args = (torch.zeros(1, sam.config.vision_config.output_channels, side, side),
            torch.tensor([[[image_size / 2, image_size / 3], [10.0, 20.0]]]), torch.tensor([[1.0, 0.0]]),
            torch.zeros(1, 1, 4 * side, 4 * side), torch.zeros(1),
            torch.tensor([image_size * 3 // 4, image_size], dtype=torch.int64),
            torch.tensor([480, 640], dtype=torch.int64))
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, args, tmp, dynamo=False, opset_version=17, do_constant_folding=True,
                              input_names=["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input",
                                           "input_size", "orig_size"],
                              output_names=["masks", "iou", "low_res_masks"],
                              dynamic_axes={"point_coords": {1: "points"}, "point_labels": {1: "points"},
                                            "masks": {2: "height", 3: "width"}})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
