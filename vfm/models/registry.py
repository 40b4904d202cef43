"""Model registry: short alias, Hugging Face hub id or local directory -> a model family and source.

Every model vfm runs is a transformers checkpoint. ``resolve(name)`` says where it comes from and
which family adapter loads it; ``load_pretrained`` does the loading with one error policy: try the
local cache first (no network), then the hub; when neither works, the error names the model and
says how to get it onto the machine.
"""

from __future__ import annotations

import functools
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from vfm.errors import ModelError, ModelNotFoundError


@dataclass(frozen=True)
class ModelSpec:
    """One registered alias."""

    alias: str
    hub_id: str
    family: str  # adapter family, e.g. "sam", "sam-hq", "sam2", "grounding-dino", "clip"
    task: str  # "segment", "track", "detect", "classify", "embed", "semantic"
    description: str


_ALIASES: dict[str, ModelSpec] = {}


def register_alias(alias: str, hub_id: str, family: str, task: str, description: str) -> ModelSpec:
    spec = ModelSpec(alias, hub_id, family, task, description)
    _ALIASES[alias] = spec
    return spec


# Promptable segmentation ----------------------------------------------------------------------
register_alias("sam-vit-base", "facebook/sam-vit-base", "sam", "segment", "SAM ViT-B (91M), Meta, 2023")
register_alias("sam-vit-large", "facebook/sam-vit-large", "sam", "segment", "SAM ViT-L (308M), Meta, 2023")
register_alias("sam-vit-huge", "facebook/sam-vit-huge", "sam", "segment", "SAM ViT-H (636M), Meta, 2023")
register_alias("slimsam-77", "nielsr/slimsam-77-uniform", "sam", "segment", "SlimSAM, 77% pruned SAM ViT-B (9.3M)")
register_alias("slimsam-50", "nielsr/slimsam-50-uniform", "sam", "segment", "SlimSAM, 50% pruned SAM ViT-B (26.8M)")
register_alias("sam-hq-vit-base", "syscv-community/sam-hq-vit-base", "sam-hq", "segment", "SAM-HQ ViT-B: sharper mask boundaries")
register_alias("sam-hq-vit-large", "syscv-community/sam-hq-vit-large", "sam-hq", "segment", "SAM-HQ ViT-L")
register_alias("sam-hq-vit-huge", "syscv-community/sam-hq-vit-huge", "sam-hq", "segment", "SAM-HQ ViT-H")
register_alias("sam2.1-hiera-tiny", "facebook/sam2.1-hiera-tiny", "sam2", "segment", "SAM 2.1 Hiera-T (39M), images")
register_alias("sam2.1-hiera-small", "facebook/sam2.1-hiera-small", "sam2", "segment", "SAM 2.1 Hiera-S (46M), images")
register_alias("sam2.1-hiera-base-plus", "facebook/sam2.1-hiera-base-plus", "sam2", "segment", "SAM 2.1 Hiera-B+ (81M), images")
register_alias("sam2.1-hiera-large", "facebook/sam2.1-hiera-large", "sam2", "segment", "SAM 2.1 Hiera-L (224M), images")

# Concept segmentation: text and/or example boxes -> every instance (one model, no detector) --------
register_alias("sam3", "facebook/sam3", "sam3", "ground", "SAM 3 (848M with its tracker, gated on the hub), Meta, 2025: every instance of a noun phrase or exemplar")
register_alias("sam3-lite-text", "facebook/sam3_lite_text", "sam3", "ground", "SAM 3 with a small text encoder (MobileCLIP-style RepMixer)")

# Video tracking (the SAM 2.1 aliases above track too: `vfm track --model sam2.1-hiera-tiny`) ---------
register_alias("edgetam", "yonigozlan/EdgeTAM-hf", "edgetam", "track", "EdgeTAM (14M): SAM 2 made fast for on-device video tracking")

# Open-vocabulary detection -------------------------------------------------------------------
register_alias("grounding-dino-tiny", "IDEA-Research/grounding-dino-tiny", "grounding-dino", "detect", "Grounding DINO Swin-T (172M): text prompt -> boxes")
register_alias("grounding-dino-base", "IDEA-Research/grounding-dino-base", "grounding-dino", "detect", "Grounding DINO Swin-B (233M): text prompt -> boxes")
register_alias("mm-grounding-dino-tiny", "openmmlab-community/mm_grounding_dino_tiny_o365v1_goldg_v3det", "mm-grounding-dino", "detect",
               "MM-Grounding-DINO Swin-T (173M, OpenMMLab): Grounding DINO retrained openly, stronger zero-shot")
register_alias("mm-grounding-dino-base", "openmmlab-community/mm_grounding_dino_base_all", "mm-grounding-dino", "detect",
               "MM-Grounding-DINO Swin-B (233M): text prompt -> boxes")
register_alias("mm-grounding-dino-large", "openmmlab-community/mm_grounding_dino_large_all", "mm-grounding-dino", "detect",
               "MM-Grounding-DINO Swin-L (341M): text prompt -> boxes")
register_alias("omdet-turbo-tiny", "omlab/omdet-turbo-swin-tiny-hf", "omdet-turbo", "detect",
               "OmDet-Turbo Swin-T: real-time open-vocabulary detection (its backbone needs timm)")
register_alias("owlv2-base", "google/owlv2-base-patch16-ensemble", "owlv2", "detect", "OWLv2 ViT-B/16: open-vocabulary and image-guided detection")
register_alias("owlv2-large", "google/owlv2-large-patch14-ensemble", "owlv2", "detect", "OWLv2 ViT-L/14: open-vocabulary and image-guided detection")
register_alias("owlvit-base-32", "google/owlvit-base-patch32", "owlvit", "detect", "OWL-ViT ViT-B/32: open-vocabulary detection")
register_alias("owlvit-base-16", "google/owlvit-base-patch16", "owlvit", "detect", "OWL-ViT ViT-B/16: open-vocabulary detection")

# Closed-set detection: the checkpoint's own classes (vfm detect without --classes) -------------------
register_alias("rtdetr-v2-r18", "PekingU/rtdetr_v2_r18vd", "rt-detr-v2", "detect", "RT-DETR v2 R18 (20M), COCO 80 classes")
register_alias("rtdetr-v2-r50", "PekingU/rtdetr_v2_r50vd", "rt-detr-v2", "detect", "RT-DETR v2 R50 (43M), COCO 80 classes")
register_alias("rtdetr-r50", "PekingU/rtdetr_r50vd", "rt-detr", "detect", "RT-DETR R50 (43M), COCO 80 classes")
register_alias("dfine-s", "ustc-community/dfine-small-coco", "d-fine", "detect", "D-FINE S (10M), COCO 80 classes")
register_alias("dfine-l", "ustc-community/dfine-large-coco", "d-fine", "detect", "D-FINE L (31M), COCO 80 classes")
register_alias("detr-resnet-50", "facebook/detr-resnet-50", "detr", "detect", "DETR R50 (41M), COCO 80 classes (needs timm)")
register_alias("conditional-detr-resnet-50", "microsoft/conditional-detr-resnet-50", "conditional-detr", "detect", "Conditional DETR R50, COCO (needs timm)")
register_alias("deformable-detr", "SenseTime/deformable-detr", "deformable-detr", "detect", "Deformable DETR R50, COCO (needs timm)")

# Zero-shot classification, tagging, labels for masks ------------------------------------------------
register_alias("clip-vit-base-32", "openai/clip-vit-base-patch32", "clip", "classify", "CLIP ViT-B/32: zero-shot classification, tags, labels for masks")
register_alias("clip-vit-large-14", "openai/clip-vit-large-patch14", "clip", "classify", "CLIP ViT-L/14: zero-shot classification, tags, labels for masks")
register_alias("siglip-base", "google/siglip-base-patch16-224", "siglip", "classify", "SigLIP ViT-B/16 224: sigmoid zero-shot classification")
register_alias("siglip2-base", "google/siglip2-base-patch16-224", "siglip", "classify", "SigLIP 2 ViT-B/16 224: sigmoid zero-shot classification")

# Image embeddings only (vfm embed / index / search by image; CLIP and SigLIP above embed text too) --------
register_alias("dinov2-small", "facebook/dinov2-small", "dinov2", "embed", "DINOv2 ViT-S/14 (22M): image embeddings (CLS or mean patch)")
register_alias("dinov2-base", "facebook/dinov2-base", "dinov2", "embed", "DINOv2 ViT-B/14 (86M): image embeddings")
register_alias("dinov2-large", "facebook/dinov2-large", "dinov2", "embed", "DINOv2 ViT-L/14 (300M): image embeddings")
register_alias("dinov2-giant", "facebook/dinov2-giant", "dinov2", "embed", "DINOv2 ViT-g/14 (1.1B): image embeddings")
register_alias("dinov3-vits16", "facebook/dinov3-vits16-pretrain-lvd1689m", "dinov3", "embed", "DINOv3 ViT-S/16 (21M, gated on the hub): image embeddings")
register_alias("dinov3-vitb16", "facebook/dinov3-vitb16-pretrain-lvd1689m", "dinov3", "embed", "DINOv3 ViT-B/16 (86M, gated on the hub): image embeddings")
register_alias("dinov3-vitl16", "facebook/dinov3-vitl16-pretrain-lvd1689m", "dinov3", "embed", "DINOv3 ViT-L/16 (300M, gated on the hub): image embeddings")

# Closed-set image classification: the checkpoint's own labels (vfm classify without --classes) -------
register_alias("vit-base-patch16-224", "google/vit-base-patch16-224", "image-classifier", "classify", "ViT-B/16 (86M), ImageNet-1k")
register_alias("convnext-tiny-224", "facebook/convnext-tiny-224", "image-classifier", "classify", "ConvNeXt-T (29M), ImageNet-1k")
register_alias("swin-tiny-224", "microsoft/swin-tiny-patch4-window7-224", "image-classifier", "classify", "Swin-T (28M), ImageNet-1k")
register_alias("efficientnet-b0", "google/efficientnet-b0", "image-classifier", "classify", "EfficientNet-B0 (5M), ImageNet-1k")
register_alias("resnet-50", "microsoft/resnet-50", "image-classifier", "classify", "ResNet-50 (26M), ImageNet-1k")
register_alias("perceiver-learned", "deepmind/vision-perceiver-learned", "image-classifier", "classify", "Perceiver IO, learned position encoding (62M), ImageNet-1k")

# Closed-set semantic segmentation (votes for labels of masks: vfm everything --semantic-model) ---------------------------------
register_alias("mask2former-ade", "facebook/mask2former-swin-large-ade-semantic", "mask2former", "semantic", "Mask2Former Swin-L, ADE20K 150 classes")
register_alias("mask2former-coco-panoptic", "facebook/mask2former-swin-large-coco-panoptic", "mask2former", "semantic", "Mask2Former Swin-L, COCO panoptic 133 classes")
register_alias("oneformer-ade", "shi-labs/oneformer_ade20k_swin_large", "oneformer", "semantic", "OneFormer Swin-L, ADE20K 150 classes")
register_alias("oneformer-coco", "shi-labs/oneformer_coco_swin_large", "oneformer", "semantic", "OneFormer Swin-L, COCO 133 classes")
register_alias("mask2former-cityscapes", "facebook/mask2former-swin-large-cityscapes-semantic", "mask2former", "semantic", "Mask2Former Swin-L, Cityscapes 19 classes")
register_alias("oneformer-cityscapes", "shi-labs/oneformer_cityscapes_swin_large", "oneformer", "semantic", "OneFormer Swin-L, Cityscapes 19 classes")
register_alias("mask2former-coco-instance", "facebook/mask2former-swin-large-coco-instance", "mask2former", "semantic", "Mask2Former Swin-L, COCO instance 80 classes (vfm segment --task instance)")
register_alias("eomt-ade", "tue-mps/ade20k_semantic_eomt_large_512", "eomt", "semantic", "EoMT ViT-L (DINOv2), ADE20K 150 classes, sliding window")
register_alias("eomt-cityscapes", "tue-mps/cityscapes_semantic_eomt_large_1024", "eomt", "semantic", "EoMT ViT-L (DINOv2), Cityscapes 19 classes, sliding window")
register_alias("eomt-coco-panoptic", "tue-mps/coco_panoptic_eomt_large_640", "eomt", "semantic", "EoMT ViT-L (DINOv2), COCO panoptic 133 classes")
register_alias("eomt-coco-instance", "tue-mps/coco_instance_eomt_large_640", "eomt", "semantic", "EoMT ViT-L (DINOv2), COCO instance 80 classes")
register_alias("segformer-b0-ade", "nvidia/segformer-b0-finetuned-ade-512-512", "segformer", "semantic", "SegFormer MiT-b0 (3.8M), ADE20K 150 classes (vfm semantic)")
register_alias("segformer-b5-ade", "nvidia/segformer-b5-finetuned-ade-640-640", "segformer", "semantic", "SegFormer MiT-b5 (85M), ADE20K 150 classes (vfm semantic)")
register_alias("segformer-b5-cityscapes", "nvidia/segformer-b5-finetuned-cityscapes-1024-1024", "segformer", "semantic", "SegFormer MiT-b5, Cityscapes 19 classes (vfm semantic)")
register_alias("upernet-convnext-small", "openmmlab/upernet-convnext-small", "upernet", "semantic", "UperNet + ConvNeXt-S (82M), ADE20K 150 classes (vfm semantic)")

# Monocular depth (vfm depth): relative = inverse depth up to scale and shift, metric = metres --------
register_alias("depth-anything-v2-small", "depth-anything/Depth-Anything-V2-Small-hf", "depth-anything", "depth", "Depth Anything V2 ViT-S (25M): relative depth")
register_alias("depth-anything-v2-base", "depth-anything/Depth-Anything-V2-Base-hf", "depth-anything", "depth", "Depth Anything V2 ViT-B (98M): relative depth")
register_alias("depth-anything-v2-large", "depth-anything/Depth-Anything-V2-Large-hf", "depth-anything", "depth", "Depth Anything V2 ViT-L (335M): relative depth")
register_alias("depth-anything-v2-metric-indoor-small", "depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf", "depth-anything", "depth", "Depth Anything V2 Metric ViT-S, indoor (Hypersim, max 20 m): metres")
register_alias("depth-anything-v2-metric-indoor-large", "depth-anything/Depth-Anything-V2-Metric-Indoor-Large-hf", "depth-anything", "depth", "Depth Anything V2 Metric ViT-L, indoor (max 20 m): metres")
register_alias("depth-anything-v2-metric-outdoor-small", "depth-anything/Depth-Anything-V2-Metric-Outdoor-Small-hf", "depth-anything", "depth", "Depth Anything V2 Metric ViT-S, outdoor (Virtual KITTI, max 80 m): metres")
register_alias("depth-anything-v2-metric-outdoor-large", "depth-anything/Depth-Anything-V2-Metric-Outdoor-Large-hf", "depth-anything", "depth", "Depth Anything V2 Metric ViT-L, outdoor (max 80 m): metres")
register_alias("dpt-large", "Intel/dpt-large", "dpt", "depth", "DPT ViT-L/16 (MiDaS 3.0, 343M): relative depth")
register_alias("dpt-hybrid-midas", "Intel/dpt-hybrid-midas", "dpt", "depth", "DPT-Hybrid ViT + ResNet (MiDaS 3.0, 123M): relative depth")
register_alias("zoedepth-nyu-kitti", "Intel/zoedepth-nyu-kitti", "zoedepth", "depth", "ZoeDepth BEiT-L, NYU + KITTI heads: metres")
register_alias("depth-pro", "apple/DepthPro-hf", "depth-pro", "depth", "Depth Pro (Apple, 952M): metres, focal length, field of view")

# Vision-language: captions, questions, OCR (vfm caption / ask / read) -------------------------------
register_alias("florence-2-base", "florence-community/Florence-2-base", "florence2", "caption",
               "Florence-2 base (230M), Microsoft: captions, detailed captions, OCR with regions, phrase grounding")
register_alias("florence-2-large", "florence-community/Florence-2-large", "florence2", "caption",
               "Florence-2 large (770M): captions, detailed captions, OCR with regions, phrase grounding")
register_alias("blip-base", "Salesforce/blip-image-captioning-base", "blip", "caption", "BLIP ViT-B captioning (247M), Salesforce")
register_alias("blip-large", "Salesforce/blip-image-captioning-large", "blip", "caption", "BLIP ViT-L captioning (470M)")
register_alias("blip-vqa-base", "Salesforce/blip-vqa-base", "blip-vqa", "ask", "BLIP ViT-B visual question answering (385M): short answers")
register_alias("smolvlm-256m", "HuggingFaceTB/SmolVLM-256M-Instruct", "smolvlm", "ask", "SmolVLM 256M Instruct: chat about images, on a CPU")
register_alias("smolvlm-500m", "HuggingFaceTB/SmolVLM-500M-Instruct", "smolvlm", "ask", "SmolVLM 500M Instruct: chat about images")
register_alias("smolvlm2-2.2b", "HuggingFaceTB/SmolVLM2-2.2B-Instruct", "smolvlm", "ask", "SmolVLM2 2.2B Instruct: images and videos")
register_alias("llava-1.5-7b", "llava-hf/llava-1.5-7b-hf", "llava", "ask", "LLaVA 1.5 7B (CLIP ViT-L + Vicuna)")
register_alias("llava-onevision-0.5b", "llava-hf/llava-onevision-qwen2-0.5b-ov-hf", "llava-onevision", "ask",
               "LLaVA-OneVision 0.5B (SigLIP + Qwen2): images and videos")
register_alias("llava-onevision-7b", "llava-hf/llava-onevision-qwen2-7b-ov-hf", "llava-onevision", "ask",
               "LLaVA-OneVision 7B: images and videos")
register_alias("qwen2.5-vl-3b", "Qwen/Qwen2.5-VL-3B-Instruct", "qwen2.5-vl", "ask", "Qwen2.5-VL 3B Instruct: images, videos, documents")
register_alias("qwen2.5-vl-7b", "Qwen/Qwen2.5-VL-7B-Instruct", "qwen2.5-vl", "ask", "Qwen2.5-VL 7B Instruct: images, videos, documents")

#: transformers ``model_type`` -> vfm family.
MODEL_TYPE_FAMILY: dict[str, str] = {
    "sam": "sam",
    "sam_hq": "sam-hq",
    "sam2": "sam2",
    "sam2_video": "sam2",
    "edgetam_video": "edgetam",
    "sam3": "sam3",
    "sam3_video": "sam3",
    "sam3_lite_text": "sam3",
    "sam3_tracker": "sam3",
    "grounding-dino": "grounding-dino",
    "mm-grounding-dino": "mm-grounding-dino",
    "omdet-turbo": "omdet-turbo",
    "owlv2": "owlv2",
    "owlvit": "owlvit",
    "clip": "clip",
    "siglip": "siglip",
    "siglip2": "siglip",
    "dinov2": "dinov2",
    "dinov3_vit": "dinov3",
    "mask2former": "mask2former",
    "oneformer": "oneformer",
    "eomt": "eomt",
    "eomt_dinov3": "eomt",
    "segformer": "segformer",
    "upernet": "upernet",
    "detr": "detr",
    "conditional_detr": "conditional-detr",
    "deformable_detr": "deformable-detr",
    "rt_detr": "rt-detr",
    "rt_detr_v2": "rt-detr-v2",
    "d_fine": "d-fine",
    "depth_anything": "depth-anything",
    "dpt": "dpt",
    "zoedepth": "zoedepth",
    "depth_pro": "depth-pro",
    "florence2": "florence2",
    "blip": "blip",  # BlipForQuestionAnswering checkpoints: "blip-vqa" (see _family_from_config)
    "smolvlm": "smolvlm",
    "idefics3": "smolvlm",  # SmolVLM (v1) checkpoints are Idefics3 models
    "llava": "llava",
    "llava_onevision": "llava-onevision",
    "qwen2_5_vl": "qwen2.5-vl",
    "qwen2_vl": "qwen2.5-vl",
}


def register_model_type(model_type: str, family: str) -> None:
    """Declare that checkpoints with this transformers ``model_type`` load with ``family``."""
    MODEL_TYPE_FAMILY[model_type] = family


def list_models(task: str | None = None) -> list[ModelSpec]:
    """Registered aliases, optionally for one task (any its family serves), in registration order."""
    return [s for s in _ALIASES.values() if task is None or s.task == task or task in FAMILY_TASKS.get(s.family, ())]


def get_alias(alias: str) -> ModelSpec | None:
    return _ALIASES.get(alias)


def is_cached(hub_id: str) -> bool:
    """True when the checkpoint's config is in the local Hugging Face cache."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(hub_id, "config.json")
    except Exception:  # malformed id etc.
        return False
    return isinstance(found, str) and os.path.exists(found)


@dataclass(frozen=True)
class Resolved:
    """Where a model comes from."""

    name: str  # what the user typed
    source: str  # local directory or hub id, passed to from_pretrained
    family: str
    spec: ModelSpec | None
    is_local: bool
    meta_kind: str | None = None  # a Meta-format file (.pth / .pt): sam, sam-hq, mobile-sam or sam2

    def describe(self) -> str:
        if self.spec is not None:
            return f"'{self.name}' ({self.spec.hub_id})"
        return f"'{self.name}'"


def resolve(name: str, *, task: str | None = None) -> Resolved:
    """Resolve an alias, hub id or local directory to its source and family.

    Raises:
        ModelError: unknown alias, or a directory without a transformers config.
        ModelNotFoundError: a hub id that is neither cached nor reachable.
    """
    if not name or not str(name).strip():
        raise ModelError("no model given; pass an alias (see `vfm models`), a hub id or a local directory")
    name = str(name).strip()
    spec = _ALIASES.get(name)
    if spec is not None:
        _check_task(name, spec.family, task)
        return Resolved(name, spec.hub_id, spec.family, spec, False)
    path = Path(name).expanduser()
    if path.is_file() and path.suffix.lower() in (".pth", ".pt"):
        from vfm.models.meta.checkpoint import family_of_file

        family, kind = family_of_file(path, name)
        if task not in (None, "segment") and not (task == "track" and kind == "sam2") and task in FAMILY_TASKS.get(family, ()):
            raise ModelError(f"'{name}' is a Meta-format {kind} file, which vfm loads to segment images; "
                             f"to {task}, use its transformers checkpoint (see `vfm models --task {task}`)",
                             model_name=name)
        _check_task(name, family, task)
        return Resolved(name, str(path), family, None, True, kind)
    if path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            raise ModelError(
                f"'{name}' is not a saved transformers checkpoint (a directory with config.json) "
                "nor a Meta-format SAM file (.pth / .pt); save one with model.save_pretrained(dir)",
                model_name=name,
            )
        config = json.loads((path / "config.json").read_text())
        family = _family_from_config(name, config)
        _check_task(name, family, task)
        return Resolved(name, str(path), family, None, True)
    if "/" not in name or name.startswith((".", "/", "~")) or name.count("/") > 1:
        known = ", ".join(s.alias for s in list_models(task)) or "none"
        raise ModelError(
            f"unknown model '{name}': not an alias, a hub id (org/name) or an existing directory; "
            f"aliases{' for ' + task if task else ''}: {known}",
            model_name=name,
        )
    config = read_hub_json(name, "config.json", required=True)
    family = _family_from_config(name, config)
    _check_task(name, family, task)
    return Resolved(name, name, family, None, False)


def is_concept_model(name: str | None) -> bool:
    """True when ``name`` is a SAM 3 checkpoint (text -> masks in one model, no detector)."""
    return bool(name) and resolve(name).family == "sam3"


#: transformers model types loaded as closed-set image classifiers (AutoModelForImageClassification).
CLASSIFIER_MODEL_TYPES = ("vit", "deit", "beit", "convnext", "convnextv2", "swin", "swinv2", "efficientnet", "resnet",
                          "regnet", "mobilenet_v1", "mobilenet_v2", "mobilevit", "mobilevitv2", "levit", "perceiver",
                          "poolformer", "cvt", "focalnet", "pvt", "pvt_v2", "hiera", "dinat", "nat", "bit", "vit_hybrid")
for _t in CLASSIFIER_MODEL_TYPES:
    MODEL_TYPE_FAMILY.setdefault(_t, "image-classifier")


#: vfm family -> the tasks its models can serve (``resolve(name, task=...)`` checks this).
FAMILY_TASKS: dict[str, tuple[str, ...]] = {
    "sam": ("segment",),
    "sam-hq": ("segment",),
    "sam2": ("segment", "track"),
    "edgetam": ("track",),
    "sam3": ("ground", "segment", "track"),
    "grounding-dino": ("detect",),
    "mm-grounding-dino": ("detect",),
    "omdet-turbo": ("detect",),
    "owlv2": ("detect",),
    "owlvit": ("detect",),
    "clip": ("classify", "embed"),
    "siglip": ("classify", "embed"),
    "dinov2": ("embed",),
    "dinov3": ("embed",),
    "mask2former": ("semantic",),
    "oneformer": ("semantic",),
    "eomt": ("semantic",),
    "segformer": ("semantic",),
    "upernet": ("semantic",),
    "image-classifier": ("classify",),
    "detr": ("detect",),
    "conditional-detr": ("detect",),
    "deformable-detr": ("detect",),
    "rt-detr": ("detect",),
    "rt-detr-v2": ("detect",),
    "d-fine": ("detect",),
    "depth-anything": ("depth",),
    "dpt": ("depth",),
    "zoedepth": ("depth",),
    "depth-pro": ("depth",),
    "florence2": ("caption", "read"),
    "blip": ("caption",),
    "blip-vqa": ("ask",),
    "smolvlm": ("caption", "ask"),
    "llava": ("caption", "ask"),
    "llava-onevision": ("caption", "ask"),
    "qwen2.5-vl": ("caption", "ask"),
}

#: Chat VLM families that take a video (frames sampled uniformly): ``vfm ask VIDEO``.
VIDEO_CHAT_FAMILIES = ("smolvlm", "llava-onevision", "qwen2.5-vl")


def _check_task(name: str, family: str, task: str | None) -> None:
    if task is None:
        return
    tasks = FAMILY_TASKS.get(family, ())
    if task not in tasks:
        options = ", ".join(s.alias for s in list_models(task))
        raise ModelError(
            f"model '{name}' is a {family} model ({'/'.join(tasks) or 'unknown task'}), not usable to {task}; "
            f"try one of: {options}",
            model_name=name,
        )


def _family_from_config(name: str, config: dict[str, Any]) -> str:
    model_type = config.get("model_type")
    family = MODEL_TYPE_FAMILY.get(model_type or "")
    if family == "blip" and "BlipForQuestionAnswering" in (config.get("architectures") or ()):
        family = "blip-vqa"
    if family is None:
        supported = ", ".join(sorted(MODEL_TYPE_FAMILY))
        raise ModelError(f"model '{name}' has model_type '{model_type}', which vfm does not support (supported: {supported})",
                         model_name=name)
    return family


@functools.lru_cache(maxsize=1)
def hub_online(timeout: float = 3.0) -> bool:
    """False when HF_HUB_OFFLINE is set or the hub endpoint cannot be reached within ``timeout``.

    Checked once per process so an offline machine fails in seconds instead of retrying for minutes.
    The name lookup counts against ``timeout`` too (a resolver that hangs is offline): the check runs
    in a daemon thread that is abandoned after ``timeout`` seconds.
    """
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "", "false", "no"):
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    import threading

    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except Exception:  # noqa: BLE001 - any failure to connect means offline
            result.append(False)

    thread = threading.Thread(target=probe, name="vfm-hub-online", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def _not_found(name: str, hub_id: str, reason: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"model '{name}' could not be loaded: it is not in the local Hugging Face cache and the hub "
        f"could not be reached or has no such repository ({reason}); on a connected machine run "
        f"`hf download {hub_id}` and copy the cache (~/.cache/huggingface, or $HF_HOME) here, "
        "or give the path of a directory saved with save_pretrained instead",
        model_name=name,
    )


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def read_hub_json(source: str, filename: str, *, required: bool = False, name: str | None = None) -> dict[str, Any] | None:
    """Read a JSON file of a checkpoint (local dir or hub id; cache first, then the hub)."""
    path = Path(source)
    if path.is_dir():
        f = path / filename
        if f.is_file():
            return json.loads(f.read_text())
        if required:
            raise ModelError(f"'{source}' has no {filename}")
        return None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    last: BaseException | None = None
    for local_only in (True, False):
        if not local_only and not hub_online():
            break
        try:
            return json.loads(Path(hf_hub_download(source, filename, local_files_only=local_only)).read_text())
        except LocalEntryNotFoundError as exc:
            last = exc
        except EntryNotFoundError:
            if required:
                raise ModelError(f"hub repository '{source}' has no {filename}; is it a transformers checkpoint?")
            return None
        except RepositoryNotFoundError as exc:
            raise _not_found(name or source, source, "repository not found") from exc
        except Exception as exc:  # offline, timeout, not cached
            last = exc
    if required:
        raise _not_found(name or source, source, "offline" if not hub_online() else _short(last) if last else "offline")
    return None


def load_pretrained(loader: Callable[..., Any], resolved: Resolved, **kwargs: Any) -> Any:
    """Call ``loader(source, **kwargs)`` (a ``from_pretrained``) cache-first, then online.

    Loading is strict: missing weights are an error, not a silently random-initialised layer.
    """
    last: BaseException | None = None
    attempts = (True,) if resolved.is_local else (True, False)
    for local_only in attempts:
        if not local_only and not hub_online():
            break
        try:
            model, info = loader(resolved.source, local_files_only=local_only, output_loading_info=True, **kwargs)
        except OSError as exc:
            last = exc
            continue
        except (ValueError, KeyError, RuntimeError) as exc:
            raise ModelError(f"model {resolved.describe()} could not be loaded: {_short(exc)}",
                             model_name=resolved.name) from exc
        missing = [k for k in info.get("missing_keys", []) if not _ignorable_missing(k)]
        if missing:
            raise ModelError(
                f"checkpoint {resolved.describe()} is missing {len(missing)} weights (e.g. {missing[0]}); "
                "it does not match this model type",
                model_name=resolved.name,
            )
        mismatched = info.get("mismatched_keys", [])
        if mismatched:
            raise ModelError(f"checkpoint {resolved.describe()} has weights of the wrong shape (e.g. {mismatched[0]})",
                             model_name=resolved.name)
        return model
    if resolved.is_local:
        raise ModelError(f"model directory '{resolved.source}' could not be loaded: {_short(last)}",
                         model_name=resolved.name)
    hub_id = resolved.spec.hub_id if resolved.spec else resolved.source
    raise _not_found(resolved.name, hub_id, "the hub is unreachable or HF_HUB_OFFLINE is set" if not hub_online() else _short(last))


def _ignorable_missing(key: str) -> bool:
    # Non-persistent buffers some configs list as missing although they are computed at init.
    return key.endswith(("position_ids", "num_batches_tracked"))
