"""Tiny random-weight CLIP and SigLIP checkpoints (and a tiny Mask2Former), built offline.

Each builder saves model, tokenizer and image-processor config with ``save_pretrained`` so that
``Classifier.load(DIR)`` / ``vfm classify --model DIR`` loads it exactly like a hub checkpoint.

Traps handled here (see ENVIRONMENT.md): CLIP pools text at the first occurrence of
``text_config.eos_token_id`` (so it must be the tokenizer's end-of-text id); its tokenizer is a
byte-level BPE with CLIP's ``</w>`` end-of-word suffix wrapped as ``CLIPTokenizer(vocab, merges)``.
SigLIP pools the *last* position, so its text is padded to ``max_length`` (as the real checkpoints
are used); the real SiglipTokenizer needs sentencepiece, so the tiny one is a ``tokenizers``
word-level tokenizer (lower-cased, ``</s>`` appended) saved as a fast tokenizer.
"""

from __future__ import annotations

import json

from pathlib import Path

import torch

#: Words every tiny tokenizer knows as single tokens (other words are spelled out letter by letter).
WORDS = (
    "a an the of photo picture image this is in on with and red green blue black white small big "
    "cat dog person car bus truck bicycle bird horse sheep cow bear zebra giraffe umbrella tie ball kite "
    "bottle cup fork knife spoon bowl banana apple orange pizza cake chair couch plant bed table tv laptop "
    "mouse remote control keyboard phone oven sink book clock vase tree sky road grass water building "
    "wall floor street beach mountain snow something object thing background scene"
).split()

_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789.,'-!?&/()"


def _reinit(model: torch.nn.Module, seed: int, std: float = 0.1) -> None:
    """Spread random weights so embeddings differ between inputs (default init is near-flat)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * std)


# ---------------------------------------------------------------------------------------- CLIP
def clip_tokenizer(max_length: int = 64):
    """A byte-level BPE tokenizer in CLIP's format (``</w>`` suffix); known words are one token."""
    from transformers import CLIPTokenizer

    vocab: dict[str, int] = {"!": 0}
    for c in _CHARS:
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    merges: list[tuple[str, str]] = []
    for w in dict.fromkeys(WORDS):
        pieces = list(w[:-1]) + [w[-1] + "</w>"]
        cur = pieces[0]
        for nxt in pieces[1:]:
            merged = cur + nxt
            if merged not in vocab:
                merges.append((cur, nxt))
                vocab[merged] = len(vocab)
            cur = merged
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=max_length)


def build_clip(out_dir: str | Path, *, seed: int = 0, image_size: int = 32, patch_size: int = 8, hidden: int = 32,
               projection_dim: int = 24, layers: int = 1, max_length: int = 64) -> Path:
    """A tiny CLIPModel (ViT image tower, text transformer) with CLIPTokenizer and CLIPImageProcessor."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    torch.manual_seed(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = clip_tokenizer(max_length)
    vocab_size = len(tokenizer)
    text_config = dict(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
                       num_attention_heads=2, max_position_embeddings=max_length,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id)
    vision_config = dict(hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers, num_attention_heads=2,
                         image_size=image_size, patch_size=patch_size)
    config = CLIPConfig(text_config=text_config, vision_config=vision_config, projection_dim=projection_dim)
    model = CLIPModel(config).eval()
    _reinit(model, seed)
    model.save_pretrained(out)
    image_processor = CLIPImageProcessor(size={"shortest_edge": image_size},
                                         crop_size={"height": image_size, "width": image_size})
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)
    return out


# -------------------------------------------------------------------------------------- SigLIP
def siglip_tokenizer(max_length: int = 64):
    """A lower-casing word-level tokenizer (letters as fallback words) that appends ``</s>``."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab: dict[str, int] = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for w in list(dict.fromkeys(WORDS)) + list(_CHARS):
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=max_length, pad_token="<pad>",
                                   eos_token="</s>", unk_token="<unk>")


def build_siglip(out_dir: str | Path, *, seed: int = 0, image_size: int = 32, patch_size: int = 8, hidden: int = 32,
                 layers: int = 1, max_length: int = 64) -> Path:
    """A tiny SiglipModel with a fast word-level tokenizer and SiglipImageProcessor."""
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    torch.manual_seed(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = siglip_tokenizer(max_length)
    text_config = dict(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                       num_hidden_layers=layers, num_attention_heads=2, max_position_embeddings=max_length,
                       pad_token_id=0, eos_token_id=1, bos_token_id=None)
    vision_config = dict(hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers, num_attention_heads=2,
                         image_size=image_size, patch_size=patch_size)
    config = SiglipConfig(text_config=text_config, vision_config=vision_config)
    model = SiglipModel(config).eval()
    _reinit(model, seed)
    with torch.no_grad():  # the real checkpoints' values are of this order (scale ~ 112, bias ~ -17)
        model.logit_scale.fill_(2.0)
        model.logit_bias.fill_(-1.0)
    model.save_pretrained(out)
    image_processor = SiglipImageProcessor(size={"height": image_size, "width": image_size})
    SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)
    return out


def build_siglip2(out_dir: str | Path, *, seed: int = 0, hidden: int = 32, layers: int = 1, max_length: int = 64,
                  max_num_patches: int = 256) -> Path:
    """A tiny Siglip2Model (NaFlex: variable aspect ratio, patch 16) with Siglip2ImageProcessor."""
    from transformers import Siglip2Config, Siglip2ImageProcessor, Siglip2Model, Siglip2Processor

    torch.manual_seed(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = siglip_tokenizer(max_length)
    text_config = dict(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                       num_hidden_layers=layers, num_attention_heads=2, max_position_embeddings=max_length,
                       pad_token_id=0, eos_token_id=1, bos_token_id=None)
    vision_config = dict(hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers, num_attention_heads=2,
                         patch_size=16, num_patches=max_num_patches)
    model = Siglip2Model(Siglip2Config(text_config=text_config, vision_config=vision_config)).eval()
    _reinit(model, seed)
    with torch.no_grad():
        model.logit_scale.fill_(2.0)
        model.logit_bias.fill_(-1.0)
    model.save_pretrained(out)
    image_processor = Siglip2ImageProcessor(patch_size=16, max_num_patches=max_num_patches)
    Siglip2Processor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)
    return out


# ---------------------------------------------------------------------------------- Mask2Former
#: Class names of the tiny semantic model, ADE20K style ("name, synonym").
SEMANTIC_LABELS = ("wall", "building, edifice", "sky", "floor, flooring", "tree", "cat", "dog", "person, individual")


def build_mask2former(out_dir: str | Path, *, seed: int = 0, labels=SEMANTIC_LABELS, num_queries: int = 10,
                      hidden: int = 32, shortest_edge: int = 64) -> Path:
    """A tiny Mask2FormerForUniversalSegmentation (Swin backbone) with its image processor."""
    from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation, Mask2FormerImageProcessor, SwinConfig

    torch.manual_seed(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    backbone = SwinConfig(image_size=224, patch_size=4, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2],
                          window_size=4, out_features=["stage1", "stage2", "stage3", "stage4"])
    labels = list(labels)
    config = Mask2FormerConfig(
        backbone_config=backbone.to_dict(), num_queries=num_queries, hidden_dim=hidden, mask_feature_size=hidden,
        feature_size=hidden, encoder_layers=1, decoder_layers=2, num_attention_heads=2, encoder_feedforward_dim=hidden * 2,
        dim_feedforward=hidden * 2, common_stride=4, id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)}, use_timm_backbone=False,
    )
    model = Mask2FormerForUniversalSegmentation(config).eval()
    _reinit(model, seed, std=0.05)
    model.save_pretrained(out)
    Mask2FormerImageProcessor(size={"shortest_edge": shortest_edge, "longest_edge": shortest_edge * 3 // 2},
                              ignore_index=255, do_reduce_labels=False).save_pretrained(out)
    return out


def build_oneformer(out_dir: str | Path, *, seed: int = 0, labels=SEMANTIC_LABELS, num_queries: int = 10,
                    hidden: int = 32, shortest_edge: int = 64, text_length: int = 77) -> Path:
    """A tiny OneFormerForUniversalSegmentation (Swin backbone, task-token text encoder) with its processor."""
    from transformers import (OneFormerConfig, OneFormerForUniversalSegmentation, OneFormerImageProcessor,
                              OneFormerProcessor, SwinConfig)

    torch.manual_seed(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = clip_tokenizer(text_length)
    labels = list(labels)
    backbone = SwinConfig(image_size=224, patch_size=4, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2],
                          window_size=4, out_features=["stage1", "stage2", "stage3", "stage4"])
    config = OneFormerConfig(
        backbone_config=backbone.to_dict(), num_queries=num_queries, hidden_dim=hidden, conv_dim=hidden, mask_dim=hidden,
        encoder_feedforward_dim=hidden * 2, dim_feedforward=hidden * 2, encoder_layers=1, decoder_layers=2,
        num_attention_heads=2, text_encoder_width=hidden, text_encoder_num_layers=1, text_encoder_vocab_size=len(tokenizer),
        text_encoder_context_length=text_length, task_seq_len=text_length, text_encoder_n_ctx=16,
        text_encoder_proj_layers=1, query_dec_layers=1, id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)}, common_stride=4, use_timm_backbone=False,
    )
    model = OneFormerForUniversalSegmentation(config).eval()
    _reinit(model, seed, std=0.05)
    model.save_pretrained(out)
    # The class-info file real checkpoints name (coco_panoptic.json in shi-labs/oneformer_demo), here beside
    # the weights: transformers builds the metadata (thing_ids) from it, and its instance post-processing reads it.
    (out / "class_info.json").write_text(json.dumps({str(i): {"name": name, "isthing": 1} for i, name in enumerate(labels)}))
    image_processor = OneFormerImageProcessor(
        size={"shortest_edge": shortest_edge, "longest_edge": shortest_edge * 3 // 2}, ignore_index=255,
        do_reduce_labels=False, num_text=num_queries, class_info_file="class_info.json", repo_path=str(out),
    )
    OneFormerProcessor(image_processor=image_processor, tokenizer=tokenizer, max_seq_length=text_length,
                       task_seq_length=text_length).save_pretrained(out)
    return out
