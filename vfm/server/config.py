"""Server settings (what `vfm serve` flags set)."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_SEGMENTER = "sam-vit-base"
DEFAULT_DETECTOR = "grounding-dino-tiny"
DEFAULT_CLASSIFIER = "clip-vit-base-32"
DEFAULT_TRACKER = "sam2.1-hiera-tiny"
DEFAULT_CAPTIONER = "florence-2-base"
DEFAULT_VLM = "smolvlm-256m"


@dataclass
class ServerConfig:
    """Everything the app needs; ``None`` models fall back to the defaults above."""

    segmenter: str = DEFAULT_SEGMENTER
    detector: str = DEFAULT_DETECTOR
    classifier: str = DEFAULT_CLASSIFIER
    tracker: str = DEFAULT_TRACKER
    captioner: str = DEFAULT_CAPTIONER  # POST /v1/caption; its Florence-2 phrase grounding serves "ground"
    vlm: str = DEFAULT_VLM  # POST /v1/ask: a chat VLM (or blip-vqa-base)
    max_new_tokens: int = 1024  # /v1/caption, /v1/ask: cap on max_new_tokens
    browser_decoding: bool = True  # hand the page the prompt decoder (ONNX) and embeddings: clicks decode locally
    backend: str = "torch"  # the segmenter's image encoder engine (vfm.models.backends)
    #: a SAM 3 checkpoint for /ground and the page's text box (text -> masks in one model); None: detector + segmenter
    text_segmenter: str | None = None
    api_key: str | None = None
    max_upload_mb: float = 50.0
    max_pixels: int | None = None  # None: vfm's default (100M, env VFM_MAX_PIXELS)
    device: str | None = None
    precision: str = "auto"
    #: bytes of decoded images kept for /v1/images/{id} (LRU); embeddings have their own LRU in the Segmenter
    image_cache_bytes: int = 1 << 30
    embedding_cache_bytes: int = 1 << 30
    #: low-res logits kept for mask_input_id refinement (each 256x256 float32 = 256 KiB)
    logits_cache_items: int = 512
    #: model calls running at once per model (None: 1 on CPU, where one call already uses every
    #: core, 2 on a GPU), and requests allowed to wait for one (then 503)
    concurrency: int | None = None
    max_waiting: int = 64
    embed_on_upload: bool = True
    preload: bool = False
    #: caps on what one request may ask for (`vfm serve --max-*`), answered with 413 / 422 and a reason
    max_points_per_side: int = 64  # /everything: a 64 x 64 grid is 4,096 prompts
    max_crop_layers: int = 2  # /everything: crop_n_layers
    max_prompts: int = 256  # /segment: prompts (boxes) in one request
    max_classes: int = 1000  # /detect, /ground, /classify: class names in one request
    max_json_bytes: int = 1 << 20  # JSON request bodies (uploads have max_upload_mb)
    max_json_depth: int = 32  # nesting of JSON arrays and objects
    #: seconds SIGTERM waits for running requests before they are abandoned at their next batch
    shutdown_grace_s: float = 3.0
    #: an index folder (vfm index) for /v1/search; /v1/embed uses its model, else the classifier
    db: str | None = None
    #: Label Studio ML backend: the host task images are fetched from, its token, and a local files root
    label_studio_url: str | None = None
    label_studio_token: str | None = None
    label_studio_root: str | None = None
    #: videos (POST /v1/videos): the largest upload, and the folder uploads and tracking results live in
    #: (None: a temporary folder removed when the server stops)
    max_video_upload_mb: float = 1024.0
    video_dir: str | None = None
    #: finished tracking jobs kept (oldest results removed beyond it)
    max_jobs: int = 32

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @classmethod
    def api_key_from_env(cls) -> str | None:
        return os.environ.get("VFM_API_KEY") or None

    @classmethod
    def label_studio_from_env(cls) -> dict[str, str | None]:
        """The environment names Label Studio and its ML backends use."""
        return {"label_studio_url": os.environ.get("LABEL_STUDIO_URL") or None,
                "label_studio_token": os.environ.get("LABEL_STUDIO_API_KEY") or None,
                "label_studio_root": os.environ.get("LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT") or None}
