"""The torch + torchvision stack: what needs torchvision runs, and vfm's choices on it hold.

- vfm requires torchvision, and its SAM 2 preprocessing is Meta's SAM2Transforms bit for bit;
- the image-processor backend policy (``VFM_IMAGE_BACKEND``);
- transformers' ``mask-generation`` pipeline, SAM 2's video processor and Mask2Former / OneFormer
  panoptic post-processing run (they need torchvision), and vfm's panoptic segments are theirs.
"""

from __future__ import annotations

import importlib.metadata

import numpy as np
import pytest
import torch

from conftest import make_image


def test_vfm_requires_torchvision_and_it_imports():
    requires = importlib.metadata.requires("vfm") or []
    assert any(r.split(";")[0].strip().startswith("torchvision") for r in requires)
    import torchvision.ops

    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]])
    assert torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist() == [0, 2]


def test_sam2_preprocessing_is_meta_sam2_transforms():
    from torchvision.transforms import Normalize, Resize, ToTensor

    from vfm.models.sam2 import sam2_preprocessing
    from vfm.models.promptable import PromptableModel

    class Prep(PromptableModel):
        def __init__(self, prep):
            self.prep, self.device = prep, torch.device("cpu")

        def _encode(self, pixel_values):
            raise NotImplementedError

        def _decode(self, *args):
            raise NotImplementedError

    class Cfg:  # the SAM 2 model config fields sam2_preprocessing reads
        class prompt_encoder_config:
            image_size = 64

    prep = sam2_preprocessing(Cfg, None)
    assert prep.resize == "torchvision" and not prep.keep_aspect
    pixels = make_image(90, 130, seed=4)
    ours, frame = Prep(prep).preprocess(pixels)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    # Meta's sam2/utils/transforms.py: ToTensor, then Resize((S, S)) and Normalize
    ref = torch.nn.Sequential(Resize((64, 64)), Normalize(mean, std))(ToTensor()(pixels))[None]
    assert frame.input_size == (64, 64)
    assert torch.equal(ours, ref)


# ------------------------------------------------------------------------------ processor backend
@pytest.mark.parametrize("value, expected", [(None, "CLIPImageProcessor"), ("pil", "CLIPImageProcessorPil"),
                                             ("torchvision", "CLIPImageProcessor"), ("auto", "CLIPImageProcessor")])
def test_image_backend_policy(clip_dir, monkeypatch, value, expected):
    from vfm.models.clip import load_contrastive

    if value is None:
        monkeypatch.delenv("VFM_IMAGE_BACKEND", raising=False)
    else:
        monkeypatch.setenv("VFM_IMAGE_BACKEND", value)
    adapter = load_contrastive(str(clip_dir), torch.device("cpu"), torch.float32)
    assert type(adapter.image_processor).__name__ == expected


def test_image_backend_pixels_agree_within_one_step(clip_dir, monkeypatch):
    from vfm.models.clip import load_contrastive

    image = make_image(150, 230, seed=6)
    out = {}
    for backend in ("pil", "torchvision"):
        monkeypatch.setenv("VFM_IMAGE_BACKEND", backend)
        adapter = load_contrastive(str(clip_dir), torch.device("cpu"), torch.float32)
        out[backend] = adapter.image_processor(images=[image], return_tensors="pt")["pixel_values"]
    std = torch.tensor(adapter.image_processor.image_std).view(1, 3, 1, 1)
    assert float(((out["pil"] - out["torchvision"]).abs() * std * 255).max()) <= 1.0 + 1e-3


def test_unknown_image_backend_is_a_one_line_error(clip_dir, monkeypatch):
    from vfm.errors import ModelError
    from vfm.models.clip import load_contrastive

    monkeypatch.setenv("VFM_IMAGE_BACKEND", "opencv")
    with pytest.raises(ModelError, match=r"VFM_IMAGE_BACKEND='opencv' is not an image backend; use one of: auto, pil, torchvision"):
        load_contrastive(str(clip_dir), torch.device("cpu"), torch.float32)


# ------------------------------------------------------------------------------ what torchvision enables
def test_transformers_mask_generation_pipeline_runs(tiny_sam_dir, tmp_path):
    from PIL import Image
    from transformers import AutoImageProcessor, SamModel, pipeline

    from test_everything import build_everything_sam
    from vfm.tasks.everything import MaskGenerator
    from vfm.tasks.segment import Segmenter

    live = build_everything_sam(tiny_sam_dir, tmp_path / "live-sam")
    image = make_image(96, 128, seed=2)
    pipe = pipeline("mask-generation", model=SamModel.from_pretrained(live).eval(),
                    image_processor=AutoImageProcessor.from_pretrained(live), device="cpu")
    out = pipe(Image.fromarray(image), points_per_batch=16, points_per_crop=4, pred_iou_thresh=0.0,
               stability_score_thresh=0.0)
    assert len(out["masks"]) > 0
    assert all(np.asarray(m).shape == image.shape[:2] for m in out["masks"])
    # The same model through vfm's generator finds the pipeline's best mask too.
    ours = MaskGenerator(Segmenter.load(str(live), device="cpu", precision="fp32"), points_per_side=4,
                         pred_iou_thresh=0.0, stability_score_thresh=0.0).generate(image)
    best = np.asarray(out["masks"][int(np.argmax(np.asarray(out["scores"])))], dtype=bool)
    mine = ours.mask_array()
    inter = (mine & best[None]).sum((1, 2))
    union = (mine | best[None]).sum((1, 2))
    assert (inter / np.maximum(union, 1)).max() > 0.9


def test_sam2_video_processor_opens_a_session():
    from transformers import Sam2ImageProcessor, Sam2VideoProcessor, Sam2VideoVideoProcessor

    size = {"height": 64, "width": 64}
    processor = Sam2VideoProcessor(image_processor=Sam2ImageProcessor(size=size),
                                   video_processor=Sam2VideoVideoProcessor(size=size))
    frames = [make_image(48, 80, seed=i) for i in range(3)]
    session = processor.init_video_session(video=frames, inference_device="cpu")
    assert session.num_frames == 3
    assert (session.video_height, session.video_width) == (48, 80)
    assert tuple(session.get_frame(2).shape) == (3, 64, 64)


@pytest.fixture(scope="module")
def semantic_dirs(tmp_path_factory):
    from vfm.testing.tiny_clip import build_mask2former, build_oneformer

    root = tmp_path_factory.mktemp("models")
    return {"mask2former": build_mask2former(root / "m2f", seed=1), "oneformer": build_oneformer(root / "oneformer", seed=2)}


@pytest.mark.parametrize("family", ["mask2former", "oneformer"])
def test_panoptic_segments_are_transformers_post_processing(semantic_dirs, family):
    from transformers import AutoProcessor, Mask2FormerForUniversalSegmentation, OneFormerForUniversalSegmentation

    from vfm.models.semantic import SemanticSegmenter

    model_dir = semantic_dirs[family]
    seg = SemanticSegmenter.load(str(model_dir), device="cpu")
    image = make_image(90, 130, seed=3)
    # transformers weighs mask probabilities by the class score before the mask threshold; the tiny
    # model's scores are ~0.2, so a low mask threshold lets its segments through.
    kw = dict(threshold=0.0, mask_threshold=0.05, overlap_mask_area_threshold=0.0)
    res = seg.panoptic(image, **kw)
    assert len(res) > 0 and res.masks.shape == (len(res), 90, 130)
    assert res.masks.sum(0).max() <= 1  # panoptic segments never overlap
    assert set(res.class_names) <= set(seg.class_names)
    assert [seg.class_names[i] for i in res.class_ids] == res.class_names
    # The same call made by hand with transformers gives the same segment map.
    proc = AutoProcessor.from_pretrained(model_dir)
    Model = Mask2FormerForUniversalSegmentation if family == "mask2former" else OneFormerForUniversalSegmentation
    model = Model.from_pretrained(model_dir).eval()
    task = {"task_inputs": ["panoptic"]} if family == "oneformer" else {}
    enc = proc(images=[image], return_tensors="pt", **task)
    with torch.no_grad():
        out = model(**{k: v for k, v in enc.items() if isinstance(v, torch.Tensor)})
    ref = proc.post_process_panoptic_segmentation(out, target_sizes=[image.shape[:2]], **kw)[0]
    assert [s["id"] for s in ref["segments_info"]] == res.data["segment_ids"].tolist()
    for mask, info in zip(res.masks, ref["segments_info"]):
        assert np.array_equal(mask, ref["segmentation"].numpy() == info["id"])
    np.testing.assert_allclose(res.scores, [s["score"] for s in ref["segments_info"]], rtol=1e-5)
    # A threshold above every score leaves no segment, and that is an empty result, not an error.
    empty = seg.panoptic(image, threshold=1.0)
    assert len(empty) == 0 and empty.class_names == []
