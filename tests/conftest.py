"""Shared fixtures: tiny offline checkpoints saved to disk and synthetic images.

Checkpoints are built once per test session and loaded through the same path a user's
``--model DIR`` (or hub id) takes.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import numpy as np
import pytest
import torch
from PIL import Image

torch.manual_seed(0)
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def tiny_sam_dir(tmp_path_factory):
    from vfm.testing.tiny_models import build_sam

    return build_sam(tmp_path_factory.mktemp("models") / "tiny-sam", image_size=256, seed=0)


@pytest.fixture(scope="session")
def tiny_sam_hq_dir(tmp_path_factory):
    from vfm.testing.tiny_models import build_sam

    return build_sam(tmp_path_factory.mktemp("models") / "tiny-sam-hq", image_size=256, seed=1, hq=True)


@pytest.fixture(scope="session")
def tiny_sam2_dir(tmp_path_factory):
    from vfm.testing.tiny_models import build_sam2

    return build_sam2(tmp_path_factory.mktemp("models") / "tiny-sam2", image_size=256, seed=2)


@pytest.fixture(scope="session")
def tiny_sam2_video_dir(tmp_path_factory):
    from vfm.testing.tiny_models import build_sam2_video

    return build_sam2_video(tmp_path_factory.mktemp("models") / "tiny-sam2-video", image_size=128, seed=1)


@pytest.fixture(scope="session")
def tiny_sam3_dir(tmp_path_factory):
    from vfm.testing.tiny_sam3 import build_sam3

    return build_sam3(tmp_path_factory.mktemp("models") / "tiny-sam3", seed=0)


@pytest.fixture(scope="session")
def tiny_sam3_video_dir(tmp_path_factory):
    """SAM 3 with a wider weight spread: on the synthetic videos its detector finds a few instances that
    come and go and its tracker gives partial masks, so video comparisons mean something."""
    from vfm.testing.tiny_sam3 import build_sam3

    return build_sam3(tmp_path_factory.mktemp("models") / "tiny-sam3-video", seed=0, std=0.2)


@pytest.fixture(scope="session")
def tiny_gdino_dir(tmp_path_factory):
    from vfm.testing.tiny_detectors import build_grounding_dino

    return build_grounding_dino(tmp_path_factory.mktemp("models") / "tiny-gdino", seed=0)


@pytest.fixture(scope="session")
def gdino_dir(tiny_gdino_dir):
    return tiny_gdino_dir


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory):
    from vfm.testing.tiny_clip import build_clip

    return build_clip(tmp_path_factory.mktemp("models") / "tiny-clip", seed=0)


@pytest.fixture(scope="session")
def siglip_dir(tmp_path_factory):
    from vfm.testing.tiny_clip import build_siglip

    return build_siglip(tmp_path_factory.mktemp("models") / "tiny-siglip", seed=1)


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory):
    """``tiny_vlm(family)`` -> the directory of a tiny random-weight checkpoint of that vision-language
    family (vfm.testing.tiny_vlm.BUILDERS), built once per session."""
    from vfm.testing.tiny_vlm import BUILDERS

    root = tmp_path_factory.mktemp("vlm")
    built: dict[str, object] = {}

    def get(family: str):
        if family not in built:
            built[family] = BUILDERS[family](root / family)
        return built[family]

    return get


@pytest.fixture(scope="session")
def tiny_segmenter(tiny_sam_dir):
    from vfm.tasks.segment import Segmenter

    return Segmenter.load(str(tiny_sam_dir), device="cpu", precision="fp32")


#: SamPredictor-style prompts on a 150x230 image: two points (one negative), a box, a point + box
SAM_PROMPTS = {
    "points": dict(point_coords=np.array([[60.0, 40.0], [150.0, 100.0]]), point_labels=np.array([1, 0])),
    "box": dict(box=np.array([20.0, 30.0, 180.0, 140.0])),
    "point+box": dict(point_coords=np.array([[100.0, 80.0]]), point_labels=np.array([1]), box=np.array([20.0, 30.0, 180.0, 140.0])),
}


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean masks (1.0 when both are empty)."""
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


def make_image(height: int = 120, width: int = 200, seed: int = 0) -> np.ndarray:
    """A synthetic RGB image with a few flat shapes on a gradient (non-square by default)."""
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1), np.full_like(xx, 90)], -1)
    for _ in range(4):
        cx, cy = rng.randint(0, width), rng.randint(0, height)
        r = rng.randint(min(height, width) // 8, min(height, width) // 3)
        color = rng.randint(0, 255, 3)
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = color
    return img.astype(np.uint8)


@pytest.fixture
def image_array() -> np.ndarray:
    return make_image()


@pytest.fixture
def image_path(tmp_path, image_array):
    path = tmp_path / "image.png"
    Image.fromarray(image_array).save(path)
    return path
