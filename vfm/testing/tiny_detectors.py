"""Tiny random-weight open-vocabulary detectors (Grounding DINO, OWLv2, OWL-ViT), built offline.

Each builder saves model, tokenizer and image-processor config with ``save_pretrained`` so that
``Detector.load(DIR)`` / ``vfm detect --model DIR`` loads it exactly like a hub checkpoint.

Traps handled here (see ENVIRONMENT.md): Grounding DINO hard-codes BERT token ids 101, 102, 1012
and 1029 ([CLS], [SEP], '.', '?'), so its vocabulary is laid out like bert-base-uncased with more
than 1030 entries; it needs ``decoder_layers >= 2`` and images of at least 128 px. OWL models pool
text at ``argmax(input_ids)``, so the end-of-text token has the highest id, ``projection_dim``
equals the text hidden size and the tokenizer has a small ``model_max_length``.
"""

from __future__ import annotations

from pathlib import Path

import torch

#: Words every tiny tokenizer knows (tests use them as class names).
WORDS = (
    "cat dog person car bus truck bicycle bird horse sheep cow elephant bear zebra giraffe backpack umbrella "
    "handbag tie suitcase frisbee skis snowboard ball kite bat glove skateboard surfboard racket bottle glass cup "
    "fork knife spoon bowl banana apple sandwich orange broccoli carrot pizza donut cake chair couch plant bed table "
    "toilet tv laptop mouse remote control keyboard phone microwave oven toaster sink refrigerator book clock vase "
    "scissors teddy hair drier toothbrush a an the of photo red green blue small big forklift box tree sky road"
).split()


def _vocab_words(n: int) -> list[str]:
    """``WORDS`` followed by synthetic words ``w0``, ``w1``... up to ``n`` entries."""
    words = list(dict.fromkeys(WORDS))
    i = 0
    while len(words) < n:
        words.append(f"w{i}")
        i += 1
    return words[:n]


def _reinit(model: torch.nn.Module, seed: int, std: float = 0.02) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * std)


# ---------------------------------------------------------------------------------- Grounding DINO
def bert_like_vocab(size: int = 1400) -> list[str]:
    """A WordPiece vocabulary with bert-base-uncased's special ids: [PAD]=0, [UNK]=100, [CLS]=101,
    [SEP]=102, [MASK]=103, '.'=1012, '?'=1029; the other slots hold ``WORDS`` and synthetic words."""
    if size < 1100:
        raise ValueError("Grounding DINO needs a vocabulary of at least 1100 entries here")
    fixed = {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]", 1012: ".", 1029: "?",
             1010: ",", 1011: "-", 1013: "/", 1005: "'"}
    for i in range(1, 100):
        fixed[i] = f"[unused{i}]"
    free = [i for i in range(size) if i not in fixed]
    words = _vocab_words(len(free))
    vocab = [""] * size
    for i, tok in fixed.items():
        vocab[i] = tok
    for i, w in zip(free, words):
        vocab[i] = w
    return vocab


def build_grounding_dino(
    out_dir: str | Path, *, seed: int = 0, image_size: int = 160, d_model: int = 32, num_queries: int = 30,
    vocab_size: int = 1400, swin_embed_dim: int = 16, swin_depths=(1, 1, 1, 1), swin_heads=(1, 1, 2, 2),
    text_hidden: int = 32, text_layers: int = 1, encoder_layers: int = 1, decoder_layers: int = 2,
    full_size: bool = False, mm: bool = False,
) -> Path:
    """A tiny Grounding DINO (Swin backbone, BERT text encoder) with tokenizer and processor.

    ``image_size`` is the processor's shortest edge (longest edge 4/3 of it). ``full_size=True``
    builds grounding-dino-tiny's architecture instead (Swin-T, BERT-base, d_model 256, 6+6 layers,
    900 queries, 800x1333 input) with random weights, for benchmarks. ``mm=True`` builds an
    MM-Grounding-DINO (``MMGroundingDinoForObjectDetection``: unshared decoder heads, its own
    contrastive head) with the same sizes and processor.
    """
    if full_size:
        return _build_grounding_dino_full(Path(out_dir), seed=seed, vocab_size=vocab_size)
    from transformers import (
        BertConfig, BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor, GroundingDinoProcessor, SwinConfig,
    )

    torch.manual_seed(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    backbone = SwinConfig(
        image_size=224, patch_size=4, embed_dim=swin_embed_dim, depths=list(swin_depths), num_heads=list(swin_heads),
        window_size=4, out_features=["stage2", "stage3", "stage4"],
    )
    text = BertConfig(vocab_size=vocab_size, hidden_size=text_hidden, num_hidden_layers=text_layers,
                      num_attention_heads=2, intermediate_size=text_hidden * 2, max_position_embeddings=256)
    config = GroundingDinoConfig(
        backbone_config=backbone.to_dict(), text_config=text.to_dict(), d_model=d_model, num_queries=num_queries,
        encoder_layers=encoder_layers, decoder_layers=decoder_layers, encoder_ffn_dim=d_model * 2,
        decoder_ffn_dim=d_model * 2, encoder_attention_heads=2, decoder_attention_heads=2,
        num_feature_levels=4, encoder_n_points=2, decoder_n_points=2,
    )
    if mm:
        from transformers import MMGroundingDinoConfig, MMGroundingDinoForObjectDetection

        config = MMGroundingDinoConfig(**{k: v for k, v in config.to_dict().items()
                                          if k not in ("model_type", "architectures", "transformers_version")})
        model = MMGroundingDinoForObjectDetection(config).eval()
    else:
        model = GroundingDinoForObjectDetection(config).eval()
    _reinit_gdino(model, seed)
    model.save_pretrained(out)
    vocab = {tok: i for i, tok in enumerate(bert_like_vocab(vocab_size))}
    tokenizer = BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=256)
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": image_size, "longest_edge": image_size * 4 // 3})
    GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)
    return out


def _build_grounding_dino_full(out: Path, *, seed: int, vocab_size: int) -> Path:
    from transformers import (
        BertConfig, BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor, GroundingDinoProcessor, SwinConfig,
    )

    torch.manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    backbone = SwinConfig(window_size=7, out_features=["stage2", "stage3", "stage4"])  # Swin-T defaults
    config = GroundingDinoConfig(backbone_config=backbone.to_dict(), text_config=BertConfig(vocab_size=vocab_size).to_dict())
    GroundingDinoForObjectDetection(config).eval().save_pretrained(out)
    tokenizer = BertTokenizer(vocab={t: i for i, t in enumerate(bert_like_vocab(vocab_size))}, model_max_length=256)
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 800, "longest_edge": 1333})
    GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)
    return out


def _reinit_gdino(model: torch.nn.Module, seed: int) -> None:
    """Spread the random weights so scores vary between boxes and tokens (default init is near-flat)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2 and "sampling_offsets" not in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.04)


# ---------------------------------------------------------------------------------- OWL families
def _clip_bpe_tokenizer(out: Path, max_length: int = 16):
    """A byte-level BPE tokenizer in CLIP's format (``</w>`` suffix) with the end-of-text id highest."""
    from transformers import CLIPTokenizer

    chars = sorted(set("".join(_vocab_words(300))) | set("abcdefghijklmnopqrstuvwxyz0123456789.,'-"))
    vocab: dict[str, int] = {"!": 0}  # CLIP's pad token "!" has id 0
    for c in chars:
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    merges: list[tuple[str, str]] = []
    # Whole-word merges for the known words so each is one token (left-to-right merge chain).
    for w in _vocab_words(300):
        pieces = list(w[:-1]) + [w[-1] + "</w>"]
        cur = pieces[0]
        for nxt in pieces[1:]:
            merged = cur + nxt
            if merged not in vocab:
                merges.append((cur, nxt))
                vocab[merged] = len(vocab)
            cur = merged
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)  # highest id: OWL pools text at argmax(input_ids)
    tok = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=max_length, pad_token="!")
    return tok, len(vocab)


def _build_owl(out_dir: str | Path, v2: bool, *, seed: int, image_size: int, patch_size: int, hidden: int,
               layers: int, max_length: int, full_size: bool = False) -> Path:
    if v2:
        from transformers import (Owlv2Config as Config, Owlv2ForObjectDetection as Model,
                                  Owlv2ImageProcessor as ImageProcessor, Owlv2Processor as Processor)
    else:
        from transformers import (OwlViTConfig as Config, OwlViTForObjectDetection as Model,
                                  OwlViTImageProcessor as ImageProcessor, OwlViTProcessor as Processor)
    torch.manual_seed(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer, vocab_size = _clip_bpe_tokenizer(out, max_length)
    text_config = dict(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
                       num_attention_heads=2, max_position_embeddings=max_length,
                       bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=tokenizer.pad_token_id)
    vision_config = dict(hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers, num_attention_heads=2,
                         image_size=image_size, patch_size=patch_size)
    if full_size:  # the base checkpoints' architecture: ViT-B/16 (OWLv2 at 960 px), text width 512
        image_size = 960 if v2 else 768
        text_config.update(hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8)
        vision_config = dict(image_size=image_size, patch_size=16)
        hidden = 512
    config = Config(text_config=text_config, vision_config=vision_config, projection_dim=hidden)
    model = Model(config).eval()
    _reinit(model, seed, std=0.02 if full_size else 0.1)
    model.save_pretrained(out)
    if v2:
        image_processor = ImageProcessor(size={"height": image_size, "width": image_size})
    else:
        image_processor = ImageProcessor(size={"height": image_size, "width": image_size},
                                         crop_size={"height": image_size, "width": image_size}, do_center_crop=False)
    Processor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)
    return out


def build_owlv2(out_dir: str | Path, *, seed: int = 0, image_size: int = 64, patch_size: int = 16, hidden: int = 32,
                layers: int = 1, max_length: int = 16, full_size: bool = False) -> Path:
    """A tiny OWLv2 (image padded to a square, objectness head) with CLIP-style tokenizer and processor."""
    return _build_owl(out_dir, True, seed=seed, image_size=image_size, patch_size=patch_size, hidden=hidden,
                      layers=layers, max_length=max_length, full_size=full_size)


def build_owlvit(out_dir: str | Path, *, seed: int = 0, image_size: int = 64, patch_size: int = 16, hidden: int = 32,
                layers: int = 1, max_length: int = 16, full_size: bool = False) -> Path:
    """A tiny OWL-ViT (image resized without padding) with CLIP-style tokenizer and processor."""
    return _build_owl(out_dir, False, seed=seed, image_size=image_size, patch_size=patch_size, hidden=hidden,
                      layers=layers, max_length=max_length, full_size=full_size)


# ---------------------------------------------------------------------------------- OmDet-Turbo
def build_omdet_turbo(out_dir: str | Path, *, seed: int = 0, image_size: int = 128) -> Path:
    """A tiny OmDet-Turbo: transformers' Swin backbone (the released ones build Swin through timm),
    a one-layer CLIP text tower of width 64 (= class_embed_dim: the task tokens enter the decoder
    unprojected), decoder width 32 (it must differ from class_embed_dim, or transformers leaves
    ``task_project`` undefined), 30 queries; DETR image processor at ``image_size`` square."""
    from transformers import (CLIPTextConfig, DetrImageProcessor, OmDetTurboConfig, OmDetTurboForObjectDetection,
                              OmDetTurboProcessor, SwinConfig)

    torch.manual_seed(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer, vocab_size = _clip_bpe_tokenizer(out, 77)
    backbone = SwinConfig(image_size=image_size, patch_size=4, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2],
                          window_size=4, out_indices=[2, 3, 4])
    text = CLIPTextConfig(vocab_size=vocab_size, hidden_size=64, intermediate_size=64, num_hidden_layers=1,
                          num_attention_heads=2, max_position_embeddings=77, bos_token_id=vocab_size - 2,
                          eos_token_id=vocab_size - 1, pad_token_id=tokenizer.pad_token_id, projection_dim=64)
    config = OmDetTurboConfig(
        backbone_config=backbone.to_dict(), text_config=text.to_dict(), use_timm_backbone=False, image_size=image_size,
        apply_layernorm_after_vision_backbone=False,  # transformers' Swin returns NCHW maps (timm's are NHWC)
        text_projection_in_dim=64, text_projection_out_dim=64, task_encoder_hidden_dim=64, class_embed_dim=64,
        num_queries=30, encoder_hidden_dim=32, vision_features_channels=[32, 32, 32], encoder_in_channels=[32, 64, 128],
        encoder_attention_heads=2, encoder_dim_feedforward=64, decoder_hidden_dim=32, decoder_num_heads=2,
        decoder_num_layers=2, decoder_dim_feedforward=64, decoder_num_points=2)
    model = OmDetTurboForObjectDetection(config).eval()
    _reinit(model, seed, std=0.1)
    model.save_pretrained(out)
    image_processor = DetrImageProcessor(size={"height": image_size, "width": image_size}, do_pad=False)
    OmDetTurboProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)
    return out
