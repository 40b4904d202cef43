"""Tokens per second and time to first token of `vfm ask` vs transformers' plain generate (issue 16).

    python bench/vlm.py [--repeats 3] [--new-tokens 64] [--threads 2]

The model is a random-weight SmolVLM with SmolVLM-256M-Instruct's architecture (SmolLM2-135M text
model: 30 layers, hidden 576, 9 heads / 3 KV heads, vocabulary 49,152; SigLIP-B/16 vision tower at
512 px; pixel shuffle x4: 64 tokens per 512-pixel tile), built once under $VFM_BENCH_DIR (default
/tmp/vfm-bench). Its generation config has min_new_tokens = max_new_tokens so both paths generate
exactly --new-tokens tokens (random weights would otherwise stop at a random end token).

Per repeat, interleaved on the same 512x512 image and question:

* transformers: ``processor.apply_chat_template`` + ``processor(...)`` + ``model.generate`` (greedy),
  then ``decode`` — the documented plain use; its time to first token is taken by a minimal streamer
  that only notes the clock (it does not decode).
* vfm: ``VisionLanguage.ask`` — the same inputs and generate, plus vfm's streamer decoding the answer
  as it grows (what `vfm ask` prints token by token).

The answers must be equal (checked). Prints medians: seconds, tokens/s over the decode phase and
overall, time to first token, and the ratio vfm / transformers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch

from _common import bench_image, median

QUESTION = "What is shown in this image? Answer in detail."


def smolvlm_256m(root: Path, new_tokens: int) -> Path:
    from transformers import GenerationConfig

    from vfm.testing.tiny_vlm import build_smolvlm

    out = root / "smolvlm-256m-random"
    if not (out / "config.json").is_file():
        build_smolvlm(out, seed=0, vocab_size=49152, scale_factor=4, longest_edge=512,
                      text=dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                                num_key_value_heads=3, rope_theta=100000.0, tie_word_embeddings=True),
                      vision=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                                  image_size=512, patch_size=16))
    gen = GenerationConfig.from_pretrained(out)
    gen.min_new_tokens = new_tokens
    gen.save_pretrained(out)
    return out


class FirstToken:
    """The streamer protocol with nothing but a clock: the first put is the prompt, the second the first token."""

    def __init__(self):
        self.calls, self.first = 0, None

    def put(self, value):
        self.calls += 1
        if self.calls == 2:
            self.first = time.perf_counter()

    def end(self):
        pass


def plain(model, processor, image, n):
    from PIL import Image

    start = time.perf_counter()
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(text=prompt, images=[Image.fromarray(image)], return_tensors="pt")
    streamer = FirstToken()
    out = model.generate(**inputs, max_new_tokens=n, do_sample=False, num_beams=1, streamer=streamer)
    text = processor.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()
    return text, out.shape[1] - inputs["input_ids"].shape[1], time.perf_counter() - start, streamer.first - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(os.environ.get("VFM_BENCH_DIR", "/tmp/vfm-bench"))
    path = smolvlm_256m(root, args.new_tokens)

    from transformers import AutoModelForImageTextToText, AutoProcessor

    from vfm.tasks.vlm import VisionLanguage

    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    vlm = VisionLanguage.load(str(path), device="cpu", precision="fp32")
    params = sum(p.numel() for p in model.parameters()) / 1e6
    image = bench_image(512, seed=0)
    n = args.new_tokens
    print(f"SmolVLM-256M-sized random model ({params:.0f}M parameters), 512x512 image, {n} new tokens, "
          f"{args.threads} thread(s), torch {torch.__version__}")
    plain(model, processor, image, 4)  # warm-up: first calls allocate
    vlm.ask(image, QUESTION, max_new_tokens=4)
    rows = {"transformers": [], "vfm": []}
    for r in range(args.repeats):
        with torch.inference_mode():
            text, tokens, seconds, ttft = plain(model, processor, image, n)
        rows["transformers"].append((tokens, seconds, ttft))
        pieces = []
        answer = vlm.ask(image, QUESTION, max_new_tokens=n, on_text=pieces.append)
        rows["vfm"].append((answer.tokens, answer.seconds, answer.first_token_seconds))
        assert answer.text == text, "vfm's answer differs from transformers' generate + decode"
        assert answer.tokens == tokens == n, (answer.tokens, tokens)
        print(f"  repeat {r + 1}: transformers {seconds:.2f} s, vfm {answer.seconds:.2f} s (same {tokens}-token answer)")
    print(f"\n{'path':<14} {'seconds':>8} {'first token s':>14} {'decode tok/s':>13} {'overall tok/s':>14}")
    med = {}
    for name, values in rows.items():
        seconds = median([v[1] for v in values])
        ttft = median([v[2] for v in values])
        decode = median([(v[0] - 1) / (v[1] - v[2]) for v in values])
        med[name] = (seconds, ttft, decode)
        print(f"{name:<14} {seconds:>8.2f} {ttft:>14.2f} {decode:>13.1f} {n / seconds:>14.1f}")
    t, v = med["transformers"], med["vfm"]
    print(f"\nvfm / transformers: time {v[0] / t[0]:.3f}x, first token {v[1] / t[1]:.3f}x, decode speed {v[2] / t[2]:.3f}x")


if __name__ == "__main__":
    main()
