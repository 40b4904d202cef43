"""Meta-format checkpoint files (--model FILE.pth): the reference code's own models, saved as the
released files are, give the same masks through vfm as through the reference predictor."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from conftest import SAM_PROMPTS, make_image, mask_iou

warnings.filterwarnings("ignore", category=FutureWarning)  # timm's deprecated import paths in the references
warnings.filterwarnings("ignore", category=UserWarning, message=".*Overwriting tiny_vit.*")

IMAGE = make_image(150, 230, seed=3)  # non-square: resize + pad + crop
PROMPTS = SAM_PROMPTS
iou = mask_iou


def vfm_predict(seg, p: dict, multimask: bool):
    return seg.predict(points=p.get("point_coords"), labels=p.get("point_labels"), box=p.get("box"),
                       multimask=multimask, image=IMAGE)


def assert_file_equals_reference(predictor_cls, model, path, kind: str, multimask: bool) -> None:
    """vfm on the saved file vs the reference ``SamPredictor`` on the model object: every mask IoU >= 0.99,
    scores to 1e-4 and low-res logits to 1e-3 (as tests/test_parity_sam.py: the fast encoder rounds differently)."""
    from vfm.tasks.segment import Segmenter

    predictor = predictor_cls(model)
    predictor.set_image(IMAGE)
    ref_masks, ref_scores, ref_low = predictor.predict(multimask_output=multimask, **PROMPTS[kind])
    res = vfm_predict(Segmenter.load(str(path), device="cpu", precision="fp32"), PROMPTS[kind], multimask)
    assert res.masks.shape == ref_masks.shape
    assert 0 < ref_masks.mean() < 1
    for a, b in zip(ref_masks, res.masks):
        assert iou(a, b) >= 0.99
    np.testing.assert_allclose(res.scores, ref_scores, atol=1e-4)
    np.testing.assert_allclose(res.data["low_res_logits"], ref_low, atol=1e-3)


@pytest.fixture(scope="module")
def sam_file(tmp_path_factory):
    pytest.importorskip("segment_anything")
    from vfm.testing.meta_models import meta_sam, save

    model = meta_sam(seed=3)
    return model, save(model, tmp_path_factory.mktemp("meta") / "sam_vit_tiny.pth")


@pytest.fixture(scope="module")
def sam_hq_file(tmp_path_factory):
    pytest.importorskip("segment_anything_hq")
    from vfm.testing.meta_models import meta_sam, save

    model = meta_sam(hq=True, seed=4)
    return model, save(model, tmp_path_factory.mktemp("meta") / "sam_hq_vit_tiny.pth")


@pytest.fixture(scope="module")
def mobile_sam_file(tmp_path_factory):
    pytest.importorskip("mobile_sam")
    from vfm.testing.meta_models import meta_mobile_sam, save

    model = meta_mobile_sam(seed=5)
    return model, save(model, tmp_path_factory.mktemp("meta") / "mobile_sam.pt")


@pytest.fixture(scope="module")
def sam2_file(tmp_path_factory):
    pytest.importorskip("sam2")
    from vfm.testing.meta_models import meta_sam2, save

    model = meta_sam2(seed=2)
    return model, save(model, tmp_path_factory.mktemp("meta") / "sam2.1_hiera_tiny.pt", wrap=True)


# ------------------------------------------------------------------ the key mapping, both ways
@pytest.mark.parametrize("hq", [False, True])
def test_sam_key_mapping_round_trips(hq, sam_file, sam_hq_file):
    from vfm.models.meta.sam import sam_from_meta
    from vfm.models.meta.sam_keys import hf_to_meta, meta_to_hf

    meta = (sam_hq_file if hq else sam_file)[0].state_dict()
    hf = meta_to_hf(meta)
    model = sam_from_meta(meta)  # strict: every transformers weight is filled, none is left over
    assert set(hf) == set(model.state_dict())
    back = hf_to_meta(model.state_dict())
    assert set(back) == set(meta)
    for k, v in meta.items():
        assert torch.equal(back[k], v), k


def test_sam2_key_mapping_round_trips(sam2_file):
    """SAM 2: Meta -> transformers (the image model; and with the memory, the video model) -> Meta is the identity,
    and the transformers side is exactly the model's state dict (strict load)."""
    from vfm.models.meta.sam2 import _VIDEO_ONLY, hf_to_meta_sam2, meta_to_hf_sam2, meta_to_hf_sam2_video, sam2_from_meta

    meta = sam2_file[0].state_dict()
    image = {k: v for k, v in meta.items() if not k.startswith(_VIDEO_ONLY)}
    hf = meta_to_hf_sam2(meta)
    assert set(hf) == set(sam2_from_meta(meta).state_dict())
    for original, back in ((image, hf_to_meta_sam2(hf)), (meta, hf_to_meta_sam2(meta_to_hf_sam2_video(meta)))):
        assert set(back) == set(original)
        for k, v in original.items():
            assert torch.equal(back[k], v), k


def test_inferred_architecture(sam_file):
    from vfm.models.meta.sam import sam_from_meta

    cfg = sam_from_meta(sam_file[0].state_dict()).config
    v = cfg.vision_config
    assert (v.hidden_size, v.num_hidden_layers, v.num_attention_heads, v.window_size, list(v.global_attn_indexes)) == (64, 3, 2, 4, [1])
    assert (v.image_size, v.mlp_dim, v.output_channels) == (256, 128, 32)
    assert cfg.mask_decoder_config.hidden_size == 32 and cfg.prompt_encoder_config.mask_input_channels == 16


# ------------------------------------------------------------------ parity with the reference predictors
@pytest.mark.parametrize("multimask", [False, True])
@pytest.mark.parametrize("kind", list(PROMPTS))
def test_sam_file_masks_equal_segment_anything(sam_file, kind, multimask):
    from segment_anything import SamPredictor

    assert_file_equals_reference(SamPredictor, *sam_file, kind, multimask)


@pytest.mark.parametrize("kind", list(PROMPTS))
def test_sam_hq_file_masks_equal_segment_anything_hq(sam_hq_file, kind):
    """Also the proof that vfm's SAM-HQ decoder is the official one (transformers' is not, see sam_hq_decoder)."""
    from segment_anything_hq import SamPredictor

    from vfm.tasks.segment import Segmenter

    model, path = sam_hq_file
    predictor = SamPredictor(model)
    predictor.set_image(IMAGE)
    seg = Segmenter.load(str(path), device="cpu", precision="fp32")
    assert seg.model.family == "sam-hq"
    for multimask in (False, True):
        ref_masks, ref_scores, ref_low = predictor.predict(multimask_output=multimask, hq_token_only=False, **PROMPTS[kind])
        res = vfm_predict(seg, PROMPTS[kind], multimask)
        assert len(res.masks) == (3 if multimask else 1)  # the reference keeps only the best of the three
        assert 0 < ref_masks.mean() < 1
        assert iou(ref_masks[0], res.masks[0]) >= 0.99
        np.testing.assert_allclose(res.scores[0], ref_scores[0], atol=1e-4)  # the fast encoder rounds differently
        np.testing.assert_allclose(res.data["low_res_logits"][0], ref_low[0], atol=1e-3)


@pytest.mark.parametrize("multimask", [False, True])
@pytest.mark.parametrize("kind", list(PROMPTS))
def test_mobile_sam_file_masks_equal_mobile_sam(mobile_sam_file, kind, multimask):
    from mobile_sam import SamPredictor

    assert_file_equals_reference(SamPredictor, *mobile_sam_file, kind, multimask)


def test_tiny_vit_encoder_equals_mobile_sam(mobile_sam_file):
    from vfm.models.meta.tiny_vit import arch_from_state, tiny_vit_from_state

    model = mobile_sam_file[0]
    state = model.image_encoder.state_dict()
    arch = arch_from_state(state)
    assert arch["dims"] == [16, 32, 64, 320] and arch["depths"] == [1, 1, 2, 1]
    assert arch["heads"][1:] == [2, 2, 10] and arch["windows"][1:] == [7, 14, 7]
    x = torch.randn(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model.image_encoder(x)
        out = tiny_vit_from_state(state)(x)[0]
    assert out.shape == (1, 256, 64, 64)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("multimask", [False, True])
def test_sam2_file_masks_equal_sam2_image_predictor(sam2_file, multimask):
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    from vfm.tasks.segment import Segmenter

    model, path = sam2_file
    predictor = SAM2ImagePredictor(model)
    predictor.set_image(IMAGE)
    seg = Segmenter.load(str(path), device="cpu", precision="fp32")
    assert seg.model.family == "sam2"
    for kind in PROMPTS:
        ref_masks, ref_scores, ref_low = predictor.predict(multimask_output=multimask, **PROMPTS[kind])
        res = vfm_predict(seg, PROMPTS[kind], multimask)
        assert res.masks.shape == ref_masks.shape
        for a, b in zip(ref_masks.astype(bool), res.masks):
            assert iou(a, b) >= 0.99
        np.testing.assert_allclose(res.scores, ref_scores, atol=1e-4)
        np.testing.assert_allclose(res.data["low_res_logits"], ref_low, atol=1e-3)


@pytest.mark.slow
def test_sam2_file_tracks_like_sam2_video_predictor(tmp_path):
    """A SAM 2.1 file through `vfm track`'s tracker (Sam2VideoModel, memory mapped from Meta's names) against
    Meta's SAM2VideoPredictor on the same weights and, to isolate the model from resizing, the same
    preprocessed frames (PIL vs torchvision bilinear differ by a few grey levels at 1024)."""
    from PIL import Image

    from vfm.testing.meta_models import meta_sam2, save
    from vfm.testing.synthetic_video import frame_and_masks, object_box
    from vfm.video.prompts import ObjectPrompt
    from vfm.video.reader import open_video
    from vfm.video.tracker import VideoTracker

    folder = tmp_path / "frames"
    folder.mkdir()
    video = [frame_and_masks(i, 160, 96, objects=2, seed=3) for i in range(6)]
    for i, (img, _) in enumerate(video):
        Image.fromarray(img).save(folder / f"{i:05d}.jpg", quality=95)  # the reference reads JPEG folders only
    predictor = meta_sam2(seed=0, video=True, std=0.05)
    path = save(predictor, tmp_path / "sam2.1_hiera_tiny.pt", wrap=True)
    tracker = VideoTracker.load(str(path), device="cpu", precision="fp32")
    frames = list(open_video(str(folder)))
    box = object_box(video[0][1], 1)
    ours = list(tracker.track(frames, [ObjectPrompt(0, 1, box=box)]))

    state = predictor.init_state(video_path=str(folder))
    state["images"] = torch.stack([tracker.preprocess(f.pixels) for f in frames])
    predictor.add_new_points_or_box(state, frame_idx=0, obj_id=1, box=np.array(box, dtype=np.float32))
    with torch.inference_mode():
        ref = {f: (logits[0, 0] > 0).numpy() for f, _, logits in predictor.propagate_in_video(state)}
    for frame in ours:
        mask = frame.objects[0].mask
        assert 0.05 < mask.mean() < 0.95
        # tracked frames equal; the prompted frame's mask is resized to the video by another route
        assert iou(mask, ref[frame.index]) >= (0.95 if frame.index == 0 else 0.99), frame.index


def test_sam2_file_is_refused_for_other_tasks(sam2_file, sam_file):
    from vfm.errors import ModelError
    from vfm.models.registry import resolve

    assert resolve(str(sam2_file[1]), task="track").meta_kind == "sam2"
    with pytest.raises(ModelError, match="loads to segment images|not usable to track"):
        resolve(str(sam_file[1]), task="track")


def test_unreleased_hiera_size_is_a_clear_error(tmp_path, sam2_file):
    from vfm.errors import ModelError
    from vfm.models.meta.checkpoint import load_meta_model

    state = {k: v for k, v in sam2_file[0].state_dict().items() if not k.startswith("image_encoder.trunk.blocks.11.")}
    path = tmp_path / "sam2_custom.pt"
    torch.save({"model": state}, path)
    with pytest.raises(ModelError, match="not a released SAM 2 size"):
        load_meta_model(path, str(path))


def test_cli_segment_with_a_pth(sam_file, tmp_path, capsys):
    import json

    from PIL import Image
    from segment_anything import SamPredictor

    from vfm.cli.main import main

    image = tmp_path / "a.png"
    Image.fromarray(IMAGE).save(image)
    rc = main(["segment", str(image), "--model", str(sam_file[1]), "--box", "20,30,180,140", "--device", "cpu",
               "--precision", "fp32", "--json", "--quiet"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    predictor = SamPredictor(sam_file[0])
    predictor.set_image(IMAGE)
    _, ref_scores, _ = predictor.predict(box=np.array([20.0, 30.0, 180.0, 140.0]), multimask_output=False)
    assert abs(out["annotations"][0]["score"] - float(ref_scores[0])) < 1e-4


# ------------------------------------------------------------------ bad files
def test_bad_files_are_one_line_errors(tmp_path, sam_file):
    from vfm.errors import ModelError
    from vfm.models.registry import resolve

    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(sam_file[1].read_bytes()[:5000])
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(4, 3, 3, 3), "fc.bias": torch.zeros(4)}, other)
    pickled = tmp_path / "pickled.pt"
    torch.save({"model": torch.nn.Linear(2, 2)}, pickled)
    cases = {truncated: "not a readable PyTorch checkpoint", text: "not a readable PyTorch checkpoint",
             other: "not a SAM-family checkpoint", pickled: "besides weights"}
    for path, message in cases.items():
        with pytest.raises(ModelError, match=message) as info:
            resolve(str(path), task="segment")
        assert "\n" not in str(info.value)


def test_meta_file_for_another_task_is_refused(sam_file):
    from vfm.errors import ModelError
    from vfm.models.registry import resolve

    with pytest.raises(ModelError, match="not usable to detect"):
        resolve(str(sam_file[1]), task="detect")


def test_cli_bad_pth_exits_nonzero(tmp_path, capsys):
    from PIL import Image

    from vfm.cli.main import main

    image = tmp_path / "a.png"
    Image.fromarray(IMAGE).save(image)
    bad = tmp_path / "sam_vit_b_01ec64.pth"
    bad.write_bytes(b"PK\x03\x04 truncated download")
    rc = main(["segment", str(image), "--model", str(bad), "--box", "1,1,20,20"])
    err = capsys.readouterr().err
    assert rc != 0 and "not a readable PyTorch checkpoint" in err and "Traceback" not in err
