"""Chat VLMs (SmolVLM, LLaVA 1.5, LLaVA-OneVision, Qwen2.5-VL) through their own chat templates.

The prompt is the checkpoint's chat template applied to one user turn (the image or video, then
the question) with the generation prompt; the processor then expands the image / video placeholder
into the model's vision tokens. That is the documented two-step use of each of these processors.
"""

from __future__ import annotations

import numpy as np

from vfm.errors import ModelError
from vfm.models.vlm.base import CAPTION_PROMPT, DETAILED_CAPTION_PROMPT, Request, VlmAdapter, pil


class ChatAdapter(VlmAdapter):
    captions = detailed = asks = True

    def __init__(self, *args, family: str, videos: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.family, self.videos = family, videos
        if getattr(self.processor, "chat_template", None) is None:
            raise ModelError(f"model '{self.name}' has no chat template in its processor; vfm asks chat models through "
                             "their template (save the processor with its chat_template)", model_name=self.name)

    def prompt(self, kind: str, question: str) -> str:
        messages = [{"role": "user", "content": [{"type": kind}, {"type": "text", "text": question}]}]
        return self.processor.apply_chat_template(messages, add_generation_prompt=True)

    def ask_request(self, image: np.ndarray, question: str) -> Request:
        batch = self.processor(text=self.prompt("image", question), images=[pil(image)], return_tensors="pt")
        return Request(self.to_device(batch), prompt_length=int(batch["input_ids"].shape[1]))

    def caption_request(self, image: np.ndarray, detailed: bool) -> Request:
        return self.ask_request(image, DETAILED_CAPTION_PROMPT if detailed else CAPTION_PROMPT)

    def video_request(self, frames: list[np.ndarray], fps: float, question: str) -> Request:
        video = np.stack(frames)  # T x H x W x 3 uint8, sampled by vfm (uniformly)
        batch = self.processor(text=self.prompt("video", question), videos=[video], return_tensors="pt",
                               do_sample_frames=False, video_metadata=[video_metadata(len(frames), fps, video)])
        return Request(self.to_device(batch), prompt_length=int(batch["input_ids"].shape[1]))


def video_metadata(count: int, fps: float, video: np.ndarray):
    """What the video processors read about the sampled clip (frame rate for timestamps)."""
    from transformers.video_utils import VideoMetadata

    return VideoMetadata(total_num_frames=count, fps=fps, width=int(video.shape[2]), height=int(video.shape[1]),
                         frames_indices=list(range(count)))
