"""Tiny random-weight closed-set checkpoints: object detectors (DETR, Conditional DETR, Deformable DETR,
RT-DETR, RT-DETR v2, D-FINE) and image classifiers (ViT, ConvNeXt), saved with their processors."""

from __future__ import annotations

from pathlib import Path

import torch

LABELS = ("cat", "dog", "car", "person")


def _labels(labels) -> dict:
    labels = list(labels)
    return {"id2label": dict(enumerate(labels)), "label2id": {n: i for i, n in enumerate(labels)}}


def _resnet():
    from transformers import ResNetConfig

    return ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1],
                        out_features=["stage1", "stage2", "stage3", "stage4"])


def _rt_kwargs(labels) -> dict:
    return dict(encoder_in_channels=[16, 32, 32], feat_strides=[8, 16, 32], encoder_hidden_dim=16, encoder_ffn_dim=32,
                d_model=16, decoder_in_channels=[16, 16, 16], decoder_ffn_dim=32, num_queries=10, decoder_layers=2,
                encoder_layers=1, **_labels(labels))


def build_detector(out_dir: str | Path, family: str, *, seed: int = 0, labels=LABELS) -> Path:
    """``family``: detr, conditional-detr, deformable-detr, rt-detr, rt-detr-v2 or d-fine."""
    import transformers as t

    torch.manual_seed(seed)
    out = Path(out_dir)
    detr_kw = dict(use_timm_backbone=False, backbone_config=_resnet(), d_model=32, encoder_layers=1, decoder_layers=2,
                   encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                   num_queries=10, **_labels(labels))
    detr_size = {"shortest_edge": 64, "longest_edge": 96}
    if family == "detr":
        model, proc = t.DetrForObjectDetection(t.DetrConfig(**detr_kw)), t.DetrImageProcessor(size=detr_size)
    elif family == "conditional-detr":
        model = t.ConditionalDetrForObjectDetection(t.ConditionalDetrConfig(**detr_kw))
        proc = t.ConditionalDetrImageProcessor(size=detr_size)
    elif family == "deformable-detr":
        model = t.DeformableDetrForObjectDetection(t.DeformableDetrConfig(**detr_kw))
        proc = t.DeformableDetrImageProcessor(size=detr_size)
    else:
        proc = t.RTDetrImageProcessor(size={"height": 64, "width": 64})
        rt_backbone = t.RTDetrResNetConfig(embedding_size=8, hidden_sizes=[16, 16, 32, 32], depths=[1, 1, 1, 1],
                                           out_features=["stage2", "stage3", "stage4"])
        if family == "rt-detr":
            model = t.RTDetrForObjectDetection(t.RTDetrConfig(backbone_config=rt_backbone, **_rt_kwargs(labels)))
        elif family == "rt-detr-v2":
            model = t.RTDetrV2ForObjectDetection(t.RTDetrV2Config(backbone_config=rt_backbone, **_rt_kwargs(labels)))
        elif family == "d-fine":
            backbone = t.HGNetV2Config(embedding_size=8, hidden_sizes=[16, 16, 32, 32], depths=[1, 1, 1, 1],
                                       stem_channels=[3, 8, 8], stage_in_channels=[8, 16, 16, 32],
                                       stage_mid_channels=[8, 8, 16, 16], stage_out_channels=[16, 16, 32, 32],
                                       stage_num_blocks=[1, 1, 1, 1], stage_numb_of_layers=[1, 1, 1, 1],
                                       stage_downsample=[False, True, True, True],
                                       stage_light_block=[False, False, True, True], stage_kernel_size=[3, 3, 5, 5],
                                       out_features=["stage2", "stage3", "stage4"])
            model = t.DFineForObjectDetection(t.DFineConfig(backbone_config=backbone, **_rt_kwargs(labels)))
        else:
            raise ValueError(f"unknown detector family {family!r}")
    model.eval().save_pretrained(out)
    proc.save_pretrained(out)
    return out


def build_classifier(out_dir: str | Path, family: str = "vit", *, seed: int = 0, labels=LABELS) -> Path:
    """``family``: vit or convnext, with ImageNet-style processors at 32 px."""
    import transformers as t

    torch.manual_seed(seed)
    out = Path(out_dir)
    if family == "vit":
        model = t.ViTForImageClassification(t.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                                         intermediate_size=64, image_size=32, patch_size=8,
                                                         **_labels(labels)))
        proc = t.ViTImageProcessor(size={"height": 32, "width": 32})
    elif family == "convnext":
        model = t.ConvNextForImageClassification(t.ConvNextConfig(hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1],
                                                                  **_labels(labels)))
        proc = t.ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.875)
    else:
        raise ValueError(f"unknown classifier family {family!r}")
    model.eval().save_pretrained(out)
    proc.save_pretrained(out)
    return out
