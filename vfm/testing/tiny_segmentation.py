"""Tiny random-weight dense segmentation checkpoints (SegFormer, UperNet + ConvNeXt) with their image
processors, loaded by tests exactly like hub ids. Mask2Former and OneFormer builders live in
vfm/testing/tiny_clip.py (they serve mask labeling too)."""

from __future__ import annotations

from pathlib import Path

import torch

from vfm.testing.tiny_clip import SEMANTIC_LABELS


def _labels(labels) -> dict:
    labels = list(labels)
    return {"id2label": dict(enumerate(labels)), "label2id": {n: i for i, n in enumerate(labels)}}


def _reinit(model: torch.nn.Module, seed: int, std: float = 0.1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)


def build_segformer(out_dir: str | Path, *, seed: int = 0, labels=SEMANTIC_LABELS, size: int = 64) -> Path:
    """SegFormer (MiT encoder, all-MLP decoder), processor as nvidia/segformer-b0-finetuned-ade-512-512."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    torch.manual_seed(seed)
    out = Path(out_dir)
    config = SegformerConfig(num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16], patch_sizes=[7, 3],
                             strides=[4, 2], num_attention_heads=[1, 2], mlp_ratios=[2, 2], decoder_hidden_size=16,
                             **_labels(labels))
    model = SegformerForSemanticSegmentation(config).eval()
    _reinit(model, seed)
    model.save_pretrained(out)
    SegformerImageProcessor(size={"height": size, "width": size}, do_reduce_labels=True).save_pretrained(out)
    return out


def build_upernet(out_dir: str | Path, *, seed: int = 0, labels=SEMANTIC_LABELS, size: int = 64) -> Path:
    """UperNet with a ConvNeXt backbone, processor as openmmlab/upernet-convnext-small (SegformerImageProcessor)."""
    from transformers import ConvNextConfig, SegformerImageProcessor, UperNetConfig, UperNetForSemanticSegmentation

    torch.manual_seed(seed)
    out = Path(out_dir)
    backbone = ConvNextConfig(num_channels=3, hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1],
                              out_features=["stage1", "stage2", "stage3", "stage4"])
    config = UperNetConfig(backbone_config=backbone, hidden_size=16, auxiliary_in_channels=16, auxiliary_channels=8,
                           use_auxiliary_head=False, **_labels(labels))
    model = UperNetForSemanticSegmentation(config).eval()
    _reinit(model, seed, std=0.6)
    with torch.no_grad():  # no class favoured by its bias: the map shows several classes
        model.decode_head.classifier.bias.zero_()
    model.save_pretrained(out)
    SegformerImageProcessor(size={"height": size, "width": size}, do_reduce_labels=False).save_pretrained(out)
    return out


def build_eomt(out_dir: str | Path, *, seed: int = 0, labels=SEMANTIC_LABELS, size: int = 64, num_queries: int = 8,
               split: bool = False) -> Path:
    """EoMT (a plain ViT whose last blocks also carry the mask queries), processor as tue-mps' checkpoints:
    the shortest edge resized to ``size`` and padded to a square, or with ``split`` cut into square
    crops whose logits are merged back (the sliding window of the semantic checkpoints)."""
    from transformers import EomtConfig, EomtForUniversalSegmentation, EomtImageProcessor

    torch.manual_seed(seed)
    out = Path(out_dir)
    config = EomtConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, num_blocks=1, num_queries=num_queries,
                        num_register_tokens=2, image_size=size, patch_size=8, num_upscale_blocks=2, **_labels(labels))
    model = EomtForUniversalSegmentation(config).eval()
    _reinit(model, seed, std=0.2)
    with torch.no_grad():  # norms at identity, or the random masks collapse to one class
        for name, param in model.named_parameters():
            if "norm" in name.split(".")[-2].lower():
                param.fill_(1.0 if name.endswith("weight") else 0.0)
    model.save_pretrained(out)
    resize = {"shortest_edge": size} if split else {"shortest_edge": size, "longest_edge": size}
    EomtImageProcessor(size=resize, do_split_image=split, do_pad=not split).save_pretrained(out)
    return out
