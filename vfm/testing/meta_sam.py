"""Meta's reference `segment_anything` on the same weights as a transformers SamModel (tests, benches).

The reference imports torchvision for ``batched_nms``, ``box_area``, ``resize`` and ``to_pil_image``;
torchvision cannot be imported here, so a test-only stand-in is placed in ``sys.modules`` while the
reference is imported, then removed again (transformers must keep seeing no torchvision). The stand-in
behaves like torchvision for the calls the reference makes: greedy NMS (per-category via coordinate
offsets), box areas, and PIL bilinear (antialiased) resizing of PIL images.

Weights are converted from transformers' key names to Meta's (the inverse of transformers' SAM
conversion), loaded strictly.
"""

from __future__ import annotations

import contextlib
import re
import sys
import types
from functools import partial
from typing import Any

import numpy as np
import torch
from PIL import Image

_STUB_MODULES = (
    "torchvision",
    "torchvision.ops",
    "torchvision.ops.boxes",
    "torchvision.transforms",
    "torchvision.transforms.functional",
)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (box_area(a)[:, None] + box_area(b)[None, :] - inter)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS like torchvision.ops.nms: keep indices sorted by decreasing score."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64)
    boxes = boxes.float()
    order = torch.argsort(scores, descending=True, stable=True)
    iou = box_iou(boxes[order], boxes[order])
    n = len(order)
    suppressed = torch.zeros(n, dtype=torch.bool)
    keep = []
    for i in range(n):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return order[torch.tensor(keep, dtype=torch.int64)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Per-category NMS with torchvision's coordinate-offset trick."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64)
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def to_pil_image(image: Any) -> Image.Image:
    if isinstance(image, torch.Tensor):
        image = image.permute(1, 2, 0).numpy() if image.ndim == 3 else image.numpy()
    return Image.fromarray(np.asarray(image))


def resize(image: Any, size: Any, *args: Any, **kwargs: Any) -> Any:
    """torchvision's resize for PIL images: size (h, w), bilinear with PIL's antialiasing."""
    if not isinstance(image, Image.Image):
        raise TypeError("the test stand-in only resizes PIL images (as segment_anything does)")
    h, w = size if isinstance(size, (list, tuple)) else (size, size)
    return image.resize((int(w), int(h)), Image.BILINEAR)


@contextlib.contextmanager
def torchvision_stand_in():
    """The stand-in in ``sys.modules`` for the duration of the block, then the previous state again."""
    previous = {name: sys.modules.get(name) for name in _STUB_MODULES}
    try:
        mods = {name: types.ModuleType(name) for name in _STUB_MODULES}
        mods["torchvision"].ops, mods["torchvision"].transforms = mods["torchvision.ops"], mods["torchvision.transforms"]
        mods["torchvision.ops"].boxes = mods["torchvision.ops.boxes"]
        mods["torchvision.transforms"].functional = mods["torchvision.transforms.functional"]
        boxes = mods["torchvision.ops.boxes"]
        boxes.batched_nms, boxes.box_area, boxes.nms = batched_nms, box_area, nms
        fn = mods["torchvision.transforms.functional"]
        fn.resize, fn.to_pil_image = resize, to_pil_image
        sys.modules.update(mods)
        yield
    finally:
        for name, module in previous.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _import_reference():
    """Import segment_anything with the stand-in present, then take the stand-in out again."""
    with torchvision_stand_in():
        import segment_anything  # noqa: F401
        import segment_anything.automatic_mask_generator  # noqa: F401
        import segment_anything.utils.transforms  # noqa: F401
    return sys.modules["segment_anything"]


def install_torchvision_stub():
    """Make ``segment_anything`` importable (idempotent); returns the module."""
    if "segment_anything.automatic_mask_generator" in sys.modules:
        return sys.modules["segment_anything"]
    return _import_reference()


_RULES = [
    (r"^vision_encoder\.", "image_encoder."),
    (r"^image_encoder\.layers\.", "image_encoder.blocks."),
    (r"^(image_encoder\.blocks\.\d+)\.layer_norm(\d)", r"\1.norm\2"),
    (r"^image_encoder\.patch_embed\.projection", "image_encoder.patch_embed.proj"),
    (r"^image_encoder\.neck\.conv1", "image_encoder.neck.0"),
    (r"^image_encoder\.neck\.layer_norm1", "image_encoder.neck.1"),
    (r"^image_encoder\.neck\.conv2", "image_encoder.neck.2"),
    (r"^image_encoder\.neck\.layer_norm2", "image_encoder.neck.3"),
    (r"(iou_prediction_head|output_hypernetworks_mlps\.\d+)\.layers\.(\d+)", lambda m: f"{m[1]}.layers.{int(m[2]) + 1}"),
    (r"(iou_prediction_head|output_hypernetworks_mlps\.\d+)\.proj_in", r"\1.layers.0"),
    (r"(iou_prediction_head|output_hypernetworks_mlps\.\d+)\.proj_out", r"\1.layers.__LAST__"),
    (r"(transformer\.layers\.\d+)\.layer_norm(\d)", r"\1.norm\2"),
    (r"transformer\.layer_norm_final_attn", "transformer.norm_final_attn"),
    (r"mask_decoder\.upscale_conv1", "mask_decoder.output_upscaling.0"),
    (r"mask_decoder\.upscale_layer_norm", "mask_decoder.output_upscaling.1"),
    (r"mask_decoder\.upscale_conv2", "mask_decoder.output_upscaling.3"),
    (r"prompt_encoder\.mask_embed\.conv1", "prompt_encoder.mask_downscaling.0"),
    (r"prompt_encoder\.mask_embed\.layer_norm1", "prompt_encoder.mask_downscaling.1"),
    (r"prompt_encoder\.mask_embed\.conv2", "prompt_encoder.mask_downscaling.3"),
    (r"prompt_encoder\.mask_embed\.layer_norm2", "prompt_encoder.mask_downscaling.4"),
    (r"prompt_encoder\.mask_embed\.conv3", "prompt_encoder.mask_downscaling.6"),
    (r"prompt_encoder\.point_embed\.", "prompt_encoder.point_embeddings."),
    (r"prompt_encoder\.shared_embedding\.positional_embedding", "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"),
]


def hf_to_meta_state_dict(hf_state: dict[str, torch.Tensor], mlp_depth: dict[str, int]) -> dict[str, torch.Tensor]:
    """Rename a transformers SamModel state dict to Meta's names (drops the duplicate image PE)."""
    out = {}
    for key, value in hf_state.items():
        if key == "shared_image_embedding.positional_embedding":
            continue
        new = key
        for pattern, repl in _RULES:
            new = re.sub(pattern, repl, new)
        if "__LAST__" in new:
            prefix = new.split(".layers.__LAST__")[0]
            new = new.replace("__LAST__", str(mlp_depth[prefix.split("mask_decoder.")[-1]] - 1))
        out[new] = value
    return out


def meta_sam_from_hf(hf_model) -> Any:
    """Meta's ``Sam`` with the architecture of ``hf_model.config`` and its weights (strict load)."""
    install_torchvision_stub()
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    cfg = hf_model.config
    v, p, d = cfg.vision_config, cfg.prompt_encoder_config, cfg.mask_decoder_config
    encoder = ImageEncoderViT(
        depth=v.num_hidden_layers, embed_dim=v.hidden_size, img_size=v.image_size, mlp_ratio=v.mlp_dim / v.hidden_size,
        norm_layer=partial(torch.nn.LayerNorm, eps=v.layer_norm_eps), num_heads=v.num_attention_heads,
        patch_size=v.patch_size, qkv_bias=v.qkv_bias, use_rel_pos=v.use_rel_pos, global_attn_indexes=v.global_attn_indexes,
        window_size=v.window_size, out_chans=v.output_channels,
    )
    prompt = PromptEncoder(
        embed_dim=p.hidden_size, image_embedding_size=(p.image_embedding_size, p.image_embedding_size),
        input_image_size=(p.image_size, p.image_size), mask_in_chans=p.mask_input_channels,
    )
    decoder = MaskDecoder(
        num_multimask_outputs=d.num_multimask_outputs,
        transformer=TwoWayTransformer(depth=d.num_hidden_layers, embedding_dim=d.hidden_size, mlp_dim=d.mlp_dim,
                                      num_heads=d.num_attention_heads, attention_downsample_rate=d.attention_downsample_rate),
        transformer_dim=d.hidden_size, iou_head_depth=d.iou_head_depth, iou_head_hidden_dim=d.iou_head_hidden_dim,
    )
    sam = Sam(image_encoder=encoder, prompt_encoder=prompt, mask_decoder=decoder,
              pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])
    depth = {"iou_prediction_head": d.iou_head_depth}
    depth.update({f"output_hypernetworks_mlps.{i}": 3 for i in range(d.num_multimask_outputs + 1)})
    hf_state = hf_model.state_dict()
    image_pe = hf_state["shared_image_embedding.positional_embedding"]
    point_pe = hf_state["prompt_encoder.shared_embedding.positional_embedding"]
    if not torch.equal(image_pe, point_pe):
        raise ValueError("the transformers model's image and prompt positional embeddings differ; Meta's SAM shares one")
    state = hf_to_meta_state_dict(hf_state, depth)
    sam.load_state_dict(state, strict=True)
    return sam.eval()


def meta_predictor(hf_model):
    """A reference ``SamPredictor`` on ``hf_model``'s weights."""
    install_torchvision_stub()
    from segment_anything import SamPredictor

    return SamPredictor(meta_sam_from_hf(hf_model))


def meta_generator(hf_model, **kwargs):
    """A reference ``SamAutomaticMaskGenerator`` on ``hf_model``'s weights."""
    install_torchvision_stub()
    from segment_anything import SamAutomaticMaskGenerator

    return SamAutomaticMaskGenerator(meta_sam_from_hf(hf_model), **kwargs)
