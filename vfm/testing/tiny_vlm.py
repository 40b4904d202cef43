"""Tiny random-weight vision-language checkpoints, built offline, saved like a hub download.

Each builder writes a directory that ``from_pretrained`` / ``AutoProcessor.from_pretrained`` load
exactly as they load a hub id: config, weights, image (and video) processor, a byte-level BPE
tokenizer trained here on a few sentences, and the family's special tokens and chat template.

    build_florence2(dir)      Florence-2 (DaViT + BART), with <loc_0..999> and the task tokens
    build_blip(dir, vqa=False) BLIP captioning, or BLIP VQA with vqa=True (BERT WordPiece tokenizer)
    build_smolvlm(dir)        SmolVLM (SigLIP-style vision + Llama text, image splitting, video)
    build_llava(dir)          LLaVA 1.5 (CLIP vision + Llama text)
    build_llava_onevision(dir) LLaVA-OneVision (SigLIP vision + Qwen2 text, anyres, video)
    build_qwen2_5_vl(dir)     Qwen2.5-VL (windowed ViT + Qwen2 text, M-RoPE, video)

The weights are random, so the text they generate is noise; they exist to prove that vfm's path
(loading, prompts, generation, decoding, post-processing) equals transformers' own on the same
inputs, as the real checkpoints would run.
"""

from __future__ import annotations

from pathlib import Path

import torch

CORPUS = [
    "a photo of a cat sitting on a red sofa next to a window",
    "what is in the image? a dog and a ball on the green grass",
    "two people walking on the beach at sunset with a kite",
    "the text on the sign says hello world 123 open 9 to 5",
    "describe the picture in detail: a street, cars, a bus and trees",
    "yes no maybe left right top bottom one two three many",
]

#: Florence-2's structural tokens (the hub tokenizer's added vocabulary, without the 1,000 locations).
FLORENCE_TOKENS = ["<od>", "</od>", "<ocr>", "</ocr>", "<cap>", "</cap>", "<ncap>", "</ncap>", "<dcap>", "</dcap>",
                   "<grounding>", "</grounding>", "<seg>", "</seg>", "<sep>", "<region_cap>", "</region_cap>",
                   "<region_to_desciption>", "</region_to_desciption>", "<proposal>", "</proposal>", "<poly>",
                   "</poly>", "<and>"]

#: Florence-2's post-processing rules, as its released processor configs carry them.
FLORENCE_POST_PROCESSOR = {
    "ocr": {"PATTERN": r"(.+?)<loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)>",
            "AREA_THRESHOLD": 0.0},
    "phrase_grounding": {"FILTER_BY_BLACK_LIST": True},
    "pure_text": {}, "description_with_bboxes": {}, "description_with_polygons": {}, "polygons": {}, "bboxes": {},
    "description_with_bboxes_or_polygons": {},
}


def _bpe(specials: list[str], vocab_size: int = 500):
    """A byte-level BPE tokenizer (GPT-2 / BART / Llama-3 / Qwen2 style) trained on :data:`CORPUS`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 10, trainer)
    return tok


def _fast(tok, **kwargs):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)


def _save(out: str | Path, model, processor) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def _llama(vocab: int, **kw):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, max_position_embeddings=2048, **kw)


def _qwen2(vocab: int, **kw):
    from transformers import Qwen2Config

    return Qwen2Config(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, max_position_embeddings=2048, **kw)


# --------------------------------------------------------------------------------------- Florence-2
def build_florence2(out: str | Path, *, seed: int = 0) -> Path:
    from transformers import (BartConfig, CLIPImageProcessor, Florence2Config, Florence2ForConditionalGeneration,
                              Florence2Processor, Florence2VisionConfig)

    tok = _fast(_bpe(["<s>", "<pad>", "</s>", "<unk>"]), bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                unk_token="<unk>", extra_special_tokens={"image_token": "<image>"})
    tok.add_tokens([f"<loc_{i}>" for i in range(1000)] + FLORENCE_TOKENS)
    vision = Florence2VisionConfig(depths=(1, 1, 1, 1), embed_dim=(16, 32, 48, 64), num_heads=(1, 2, 3, 4),
                                   num_groups=(1, 2, 3, 4), window_size=2, projection_dim=32, drop_path_rate=0.0,
                                   max_position_embeddings=8)
    text = BartConfig(vocab_size=len(tok), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                      decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=256,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      decoder_start_token_id=tok.eos_token_id, forced_bos_token_id=tok.bos_token_id,
                      forced_eos_token_id=tok.eos_token_id)
    config = Florence2Config(vision_config=vision, text_config=text, image_token_id=tok.image_token_id)
    torch.manual_seed(seed)
    model = Florence2ForConditionalGeneration(config).eval()
    # 64x64 input, strides 4*2*2*2 = 32: 2x2 patch features + 1 pooled = 5 image tokens
    image_processor = CLIPImageProcessor(size={"height": 64, "width": 64}, crop_size={"height": 64, "width": 64},
                                         do_center_crop=False, image_seq_length=5)
    processor = Florence2Processor(image_processor=image_processor, tokenizer=tok,
                                   post_processor_config=FLORENCE_POST_PROCESSOR)
    return _save(out, model, processor)


# --------------------------------------------------------------------------------------------- BLIP
def build_blip(out: str | Path, *, vqa: bool = False, seed: int = 0) -> Path:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import (BlipConfig, BlipForConditionalGeneration, BlipForQuestionAnswering, BlipImageProcessor,
                              BlipProcessor, BlipTextConfig, BlipVisionConfig, BertTokenizerFast)

    wp = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wp.normalizer = normalizers.BertNormalizer(lowercase=True)
    wp.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wp.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
    wp.train_from_iterator(CORPUS * 10, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials,
                                                                   show_progress=False))
    # BLIP's tokenizer is BERT's with [DEC] as the start of the text decoder (bos) and [SEP] as its end
    tok = BertTokenizerFast(tokenizer_object=wp, bos_token="[DEC]", cls_token="[CLS]", sep_token="[SEP]",
                            pad_token="[PAD]", unk_token="[UNK]", mask_token="[MASK]", model_max_length=64)
    text = BlipTextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                          num_attention_heads=2, encoder_hidden_size=32, max_position_embeddings=64,
                          bos_token_id=tok.bos_token_id, sep_token_id=tok.sep_token_id, pad_token_id=tok.pad_token_id)
    vision = BlipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                              image_size=32, patch_size=8)
    config = BlipConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=32)
    torch.manual_seed(seed)
    model = (BlipForQuestionAnswering if vqa else BlipForConditionalGeneration)(config).eval()
    image_processor = BlipImageProcessor(size={"height": 32, "width": 32})
    return _save(out, model, BlipProcessor(image_processor=image_processor, tokenizer=tok))


# ------------------------------------------------------------------------------------------ SmolVLM
SMOLVLM_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'][0]['type'] in ['image', 'video'] %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{ line['text'] }}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% elif line['type'] == 'video' %}{{ '<video>' }}{% endif %}"
    "{% endfor %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


def build_smolvlm(out: str | Path, *, seed: int = 0, text: dict | None = None, vision: dict | None = None,
                  vocab_size: int | None = None, scale_factor: int = 2, longest_edge: int = 64) -> Path:
    """SmolVLM. ``text`` / ``vision`` override the Llama / SigLIP-style configs and ``vocab_size`` pads the
    embedding (bench/vlm.py builds a SmolVLM-256M-sized one); tiles are ``vision["image_size"]`` pixels."""
    from transformers import (LlamaConfig, SmolVLMConfig, SmolVLMForConditionalGeneration, SmolVLMImageProcessor,
                              SmolVLMProcessor, SmolVLMVideoProcessor, SmolVLMVisionConfig)

    rows = [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]
    specials = ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<image>",
                "<global-img>", "<video>"] + rows
    tok = _fast(_bpe(specials), bos_token="<|im_start|>", eos_token="<end_of_utterance>", pad_token="<|endoftext|>",
                unk_token="<|endoftext|>", extra_special_tokens={
                    "image_token": "<image>", "fake_image_token": "<fake_token_around_image>",
                    "global_image_token": "<global-img>", "end_of_utterance_token": "<end_of_utterance>"})
    text_kw = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1)
    text_kw.update(text or {})
    vision_kw = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32,
                     patch_size=8)
    vision_kw.update(vision or {})
    text_config = LlamaConfig(vocab_size=max(vocab_size or 0, len(tok)), max_position_embeddings=8192,
                              bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                              **text_kw)
    vision_config = SmolVLMVisionConfig(**vision_kw)
    config = SmolVLMConfig(vision_config=vision_config.to_dict(), text_config=text_config.to_dict(),
                           scale_factor=scale_factor, image_token_id=tok.convert_tokens_to_ids("<image>"),
                           pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    model = SmolVLMForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    # Images are split into tiles of the vision model's size (at most (longest_edge / tile)^2) plus the
    # global view; each tile gives (tile / patch)^2 / scale_factor^2 image tokens (4 in the tiny model)
    tile = int(vision_kw["image_size"])
    seq = (tile // int(vision_kw["patch_size"])) ** 2 // scale_factor ** 2
    image_processor = SmolVLMImageProcessor(size={"longest_edge": longest_edge}, max_image_size={"longest_edge": tile},
                                            do_image_splitting=True)
    video_processor = SmolVLMVideoProcessor(size={"longest_edge": tile}, max_image_size={"longest_edge": tile},
                                            do_image_splitting=False, do_sample_frames=False)
    processor = SmolVLMProcessor(image_processor=image_processor, tokenizer=tok, video_processor=video_processor,
                                 image_seq_len=seq, chat_template=SMOLVLM_TEMPLATE)
    return _save(out, model, processor)


# -------------------------------------------------------------------------------------- LLaVA 1.5
LLAVA_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}{{ 'USER: ' }}{% else %}{{ 'ASSISTANT: ' }}{% endif %}"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}{{ '<image>\n' }}"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}"
    "{% if message['role'] == 'user' %}{{ ' ' }}{% else %}{{ eos_token }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)


def build_llava(out: str | Path, *, seed: int = 0) -> Path:
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration,
                              LlavaProcessor)

    tok = _fast(_bpe(["<unk>", "<s>", "</s>", "<image>", "<pad>"]), bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                pad_token="<pad>", extra_special_tokens={"image_token": "<image>"})
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=32)
    text = _llama(len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_id=tok.convert_tokens_to_ids("<image>"),
                         vision_feature_layer=-2, vision_feature_select_strategy="default")
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tok, patch_size=8,
                               vision_feature_select_strategy="default", chat_template=LLAVA_TEMPLATE,
                               num_additional_image_tokens=1)
    return _save(out, model, processor)


# --------------------------------------------------------------------------- Qwen2-style chat template
QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}{{ IMAGE }}{% elif item['type'] == 'video' %}{{ VIDEO }}"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _qwen_template(image: str, video: str) -> str:
    return QWEN_TEMPLATE.replace("{{ IMAGE }}", "{{ '" + image + "' }}").replace("{{ VIDEO }}", "{{ '" + video + "' }}")


# --------------------------------------------------------------------------------- LLaVA-OneVision
def build_llava_onevision(out: str | Path, *, seed: int = 0) -> Path:
    from transformers import (LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration,
                              LlavaOnevisionImageProcessor, LlavaOnevisionProcessor, LlavaOnevisionVideoProcessor,
                              SiglipVisionConfig)

    tok = _fast(_bpe(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]), eos_token="<|im_end|>",
                pad_token="<|endoftext|>", unk_token="<|endoftext|>",
                extra_special_tokens={"image_token": "<image>", "video_token": "<video>"})
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                image_size=32, patch_size=8)
    text = _qwen2(len(tok), eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    config = LlavaOnevisionConfig(vision_config=vision, text_config=text, image_token_id=tok.convert_tokens_to_ids("<image>"),
                                  video_token_id=tok.convert_tokens_to_ids("<video>"), vision_feature_layer=-1,
                                  vision_feature_select_strategy="full",
                                  image_grid_pinpoints=[[32, 32], [32, 64], [64, 32], [64, 64]])
    torch.manual_seed(seed)
    model = LlavaOnevisionForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    image_processor = LlavaOnevisionImageProcessor(size={"height": 32, "width": 32},
                                                   image_grid_pinpoints=[[32, 32], [32, 64], [64, 32], [64, 64]])
    video_processor = LlavaOnevisionVideoProcessor(size={"height": 32, "width": 32}, do_sample_frames=False)
    processor = LlavaOnevisionProcessor(image_processor=image_processor, tokenizer=tok, video_processor=video_processor,
                                        num_image_tokens=16, vision_feature_select_strategy="full",
                                        chat_template=_qwen_template("<image>", "<video>"))
    return _save(out, model, processor)


# -------------------------------------------------------------------------------------- Qwen2.5-VL
def build_qwen2_5_vl(out: str | Path, *, seed: int = 0) -> Path:
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor,
                              Qwen2VLImageProcessor, Qwen2VLVideoProcessor)

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
                "<|video_pad|>"]
    tok = _fast(_bpe(specials), eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token="<|endoftext|>",
                extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
                                      "vision_start_token": "<|vision_start|>", "vision_end_token": "<|vision_end|>"})
    ids = {t: tok.convert_tokens_to_ids(t) for t in specials}
    vision = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 32,
              "patch_size": 8, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 32,
              "fullatt_block_indexes": [1], "in_chans": 3}
    text = {"vocab_size": len(tok), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 2048,
            "rope_parameters": {"rope_type": "default", "mrope_section": [1, 1, 2], "rope_theta": 10000.0},
            "bos_token_id": None, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}
    config = Qwen2_5_VLConfig(vision_config=vision, text_config=text, image_token_id=ids["<|image_pad|>"],
                              video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                              vision_end_token_id=ids["<|vision_end|>"])
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    pixels = {"shortest_edge": 16 * 16, "longest_edge": 64 * 64}  # 16x16 (one merged token) .. 64x64 pixels
    image_processor = Qwen2VLImageProcessor(patch_size=8, merge_size=2, temporal_patch_size=2, size=pixels)
    video_processor = Qwen2VLVideoProcessor(patch_size=8, merge_size=2, temporal_patch_size=2, size=pixels,
                                            do_sample_frames=False)
    processor = Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tok, video_processor=video_processor,
                                    chat_template=_qwen_template("<|vision_start|><|image_pad|><|vision_end|>",
                                                                 "<|vision_start|><|video_pad|><|vision_end|>"))
    return _save(out, model, processor)


BUILDERS = {
    "florence2": build_florence2,
    "blip": build_blip,
    "blip-vqa": lambda out, **kw: build_blip(out, vqa=True, **kw),
    "smolvlm": build_smolvlm,
    "llava": build_llava,
    "llava-onevision": build_llava_onevision,
    "qwen2.5-vl": build_qwen2_5_vl,
}
