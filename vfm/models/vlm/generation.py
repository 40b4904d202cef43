"""One generation loop for every vision-language family: greedy by default, streamed, timed.

``generate`` calls transformers' own ``model.generate`` (so the tokens are exactly those of a plain
``generate`` call with the same settings) with a streamer that reports the text as it grows and
notes when the first new token came.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch

from vfm.errors import PromptError

from vfm.models.vlm.defaults import MAX_NEW_TOKENS_LIMIT


@dataclass
class Generated:
    ids: torch.Tensor  # the new tokens only, 1-D
    sequence: torch.Tensor  # the whole output of generate, 1-D
    seconds: float
    first_token_seconds: float | None


def check_generation(max_new_tokens: int, temperature: float | None) -> None:
    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or not 1 <= max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
        raise PromptError(f"--max-new-tokens {max_new_tokens} must be a whole number in 1..{MAX_NEW_TOKENS_LIMIT}")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not math.isfinite(temperature) \
                or not 0 <= temperature <= 5:
            raise PromptError(f"--temperature {temperature} must be a number in 0..5 (0 or none: greedy, deterministic)")


def sampling_kwargs(max_new_tokens: int, temperature: float | None) -> dict[str, Any]:
    """``generate`` settings: greedy (one beam, no sampling) unless a temperature > 0 is given."""
    kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "num_beams": 1}
    if temperature:
        kwargs.update(do_sample=True, temperature=float(temperature), top_k=0, top_p=1.0)
    else:
        kwargs.update(do_sample=False)
    return kwargs


class _Streamer:
    """transformers' streamer protocol (``put`` / ``end``): decodes the growing answer, calls ``on_text``
    with each new piece once it is a whole character, and notes the time of the first new token.

    Only the tokens since the last line break are decoded again at each step (as transformers'
    TextStreamer does), so streaming stays linear in the answer's length.
    """

    def __init__(self, decode: Callable[[list[int]], str], on_text: Callable[[str], None] | None, skip_first: bool):
        self.decode, self.on_text = decode, on_text
        self.skip_first = skip_first  # the first put is the prompt (decoder-only) or the decoder's start token
        self.cache: list[int] = []  # tokens of the current line
        self.printed = 0  # characters of the current line already handed on
        self.first_token_time: float | None = None

    def put(self, value: torch.Tensor) -> None:
        if self.skip_first:
            self.skip_first = False
            return
        if self.first_token_time is None:
            self.first_token_time = time.perf_counter()
        if self.on_text is None:
            return
        self.cache.extend(int(v) for v in value.reshape(-1).tolist())
        text = self.decode(self.cache)
        if text.endswith("\ufffd"):  # a multi-byte character not complete yet
            return
        self._emit(text)
        if text.endswith("\n"):
            self.cache, self.printed = [], 0

    def end(self) -> None:
        if self.on_text is not None and self.cache:
            self._emit(self.decode(self.cache))

    def _emit(self, text: str) -> None:
        if len(text) > self.printed:
            self.on_text(text[self.printed:])
            self.printed = len(text)


def generate(model, inputs: dict[str, Any], *, prompt_length: int, decode: Callable[[list[int]], str],
             max_new_tokens: int, temperature: float | None = None, on_text: Callable[[str], None] | None = None,
             extra: dict[str, Any] | None = None) -> Generated:
    """Run ``model.generate(**inputs)``; the first ``prompt_length`` tokens of its output are not new
    (a decoder-only model's prompt; an encoder-decoder's start token)."""
    streamer = _Streamer(decode, on_text, skip_first=True)
    kwargs = sampling_kwargs(max_new_tokens, temperature)
    kwargs.update(extra or {})
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(**inputs, **kwargs, streamer=streamer)
    seconds = time.perf_counter() - start
    sequence = out.sequences if hasattr(out, "sequences") else out
    new = sequence[0, prompt_length:]
    first = None if streamer.first_token_time is None else streamer.first_token_time - start
    return Generated(new, sequence[0], seconds, first)
