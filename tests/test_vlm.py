"""Captions, questions, OCR and grounding: vfm's text equals transformers' own generate + decode.

Each family is a tiny random-weight checkpoint built offline (vfm.testing.tiny_vlm) and loaded
through the same path as a hub id; the reference runs the family's processor and ``generate``
directly (greedy, one beam) on the same image and question.
"""

from __future__ import annotations

import json
import subprocess
import sys

import av
import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from vfm.errors import ModelError, PromptError, VideoError
from vfm.tasks.vlm import VisionLanguage, ocr_instances

from conftest import make_image

CHAT = ["smolvlm", "llava", "llava-onevision", "qwen2.5-vl"]
N = 12  # new tokens


@pytest.fixture(scope="module")
def image():
    return make_image(48, 80, seed=3)


def reference_model(family, path):
    if family == "blip":
        from transformers import BlipForConditionalGeneration

        return BlipForConditionalGeneration.from_pretrained(path).eval()
    if family == "blip-vqa":
        from transformers import BlipForQuestionAnswering

        return BlipForQuestionAnswering.from_pretrained(path).eval()
    return AutoModelForImageTextToText.from_pretrained(path).eval()


def greedy(model, inputs, n=N):
    with torch.inference_mode():
        return model.generate(**inputs, max_new_tokens=n, do_sample=False, num_beams=1)


def chat_prompt(processor, kind, question):
    messages = [{"role": "user", "content": [{"type": kind}, {"type": "text", "text": question}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True)


# ------------------------------------------------------------------------------------- parity
@pytest.mark.parametrize("family", CHAT)
def test_chat_ask_equals_generate_and_decode(tiny_vlm, image, family):
    path = tiny_vlm(family)
    processor, model = AutoProcessor.from_pretrained(path), reference_model(family, path)
    question = "What is on the sofa?"
    inputs = processor(text=chat_prompt(processor, "image", question), images=[Image.fromarray(image)], return_tensors="pt")
    out = greedy(model, inputs)
    expected = processor.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()

    vlm = VisionLanguage.load(str(path))
    pieces: list[str] = []
    answer = vlm.ask(image, question, max_new_tokens=N, on_text=pieces.append)
    assert answer.text == expected
    assert answer.tokens == out.shape[1] - inputs["input_ids"].shape[1]
    assert "".join(pieces).strip() == expected  # what streamed is the answer
    assert len(pieces) > 1
    assert answer.seconds > 0 and 0 < answer.first_token_seconds <= answer.seconds
    doc = answer.to_document()
    assert set(doc) >= {"answer", "model", "tokens", "seconds"} and doc["question"] == question
    # greedy: the same answer every time
    assert vlm.ask(image, question, max_new_tokens=N).text == expected


@pytest.mark.parametrize("family", CHAT)
def test_chat_caption_is_the_caption_instruction(tiny_vlm, image, family):
    from vfm.models.vlm.base import CAPTION_PROMPT, DETAILED_CAPTION_PROMPT

    path = tiny_vlm(family)
    processor, model = AutoProcessor.from_pretrained(path), reference_model(family, path)
    vlm = VisionLanguage.load(str(path))
    for detailed, prompt in ((False, CAPTION_PROMPT), (True, DETAILED_CAPTION_PROMPT)):
        inputs = processor(text=chat_prompt(processor, "image", prompt), images=[Image.fromarray(image)], return_tensors="pt")
        out = greedy(model, inputs)
        expected = processor.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()
        assert vlm.caption(image, detailed=detailed, max_new_tokens=N).text == expected


def test_blip_caption_and_vqa_equal_generate(tiny_vlm, image):
    for family, question in (("blip", None), ("blip-vqa", "what color is the sofa?")):
        path = tiny_vlm(family)
        processor, model = AutoProcessor.from_pretrained(path), reference_model(family, path)
        inputs = processor(images=Image.fromarray(image), text=question, return_tensors="pt")
        out = greedy(model, inputs)
        expected = processor.decode(out[0], skip_special_tokens=True).strip()
        vlm = VisionLanguage.load(str(path))
        answer = vlm.ask(image, question, max_new_tokens=N) if question else vlm.caption(image, max_new_tokens=N)
        assert answer.text == expected
        assert answer.tokens == out.shape[1] - 1  # the decoder's start token is not new


@pytest.mark.parametrize("task", ["<CAPTION>", "<DETAILED_CAPTION>"])
def test_florence2_caption_equals_post_process_generation(tiny_vlm, image, task):
    path = tiny_vlm("florence2")
    processor, model = AutoProcessor.from_pretrained(path), reference_model("florence2", path)
    inputs = processor(text=task, images=Image.fromarray(image), return_tensors="pt")
    raw = processor.batch_decode(greedy(model, inputs), skip_special_tokens=False)[0]
    expected = processor.post_process_generation(raw, task=task, image_size=(80, 48))[task]
    answer = VisionLanguage.load(str(path)).caption(image, detailed=task == "<DETAILED_CAPTION>", max_new_tokens=N)
    assert answer.text == expected


def test_florence2_read_equals_post_process_generation(tiny_vlm, image):
    path = tiny_vlm("florence2")
    processor, model = AutoProcessor.from_pretrained(path), reference_model("florence2", path)
    task = "<OCR_WITH_REGION>"
    inputs = processor(text=task, images=Image.fromarray(image), return_tensors="pt")
    raw = processor.batch_decode(greedy(model, inputs, 60), skip_special_tokens=False)[0]
    expected = processor.post_process_generation(raw, task=task, image_size=(80, 48))[task]
    result = VisionLanguage.load(str(path)).read(image, max_new_tokens=60)
    assert result.class_names == expected["labels"]
    assert len(result) == len(expected["quad_boxes"])
    for quad, got, box in zip(expected["quad_boxes"], result.data["quad"], result.xyxy):
        assert np.allclose(got, quad, atol=0.01)
        xs, ys = quad[0::2], quad[1::2]
        assert np.allclose(box, [max(0, min(xs)), max(0, min(ys)), min(80, max(xs)), min(48, max(ys))], atol=1e-4)


def test_florence2_grounding_equals_post_process_generation(tiny_vlm, image):
    path = tiny_vlm("florence2")
    processor, model = AutoProcessor.from_pretrained(path), reference_model("florence2", path)
    task, text = "<CAPTION_TO_PHRASE_GROUNDING>", "a cat on a red sofa"
    inputs = processor(text=task + text, images=Image.fromarray(image), return_tensors="pt")
    raw = processor.batch_decode(greedy(model, inputs, 40), skip_special_tokens=False)[0]
    expected = processor.post_process_generation(raw, task=task, image_size=(80, 48))[task]
    found = VisionLanguage.load(str(path)).ground_text(image, text, max_new_tokens=40)
    assert found.class_names == expected["labels"]
    ref = np.asarray(expected["bboxes"], np.float32).reshape(-1, 4)
    ref[:, 0::2] = ref[:, 0::2].clip(0, 80)
    ref[:, 1::2] = ref[:, 1::2].clip(0, 48)
    assert np.allclose(found.xyxy, ref, atol=1e-4)


def test_ocr_coordinates_are_florence_bins_in_pixels(tiny_vlm):
    """A known OCR string: bin b of 1000 over a side of S pixels is (b + 0.5) * S / 1000, truncated to
    a whole pixel by transformers' Florence2PostProcessor.dequantize."""
    processor = AutoProcessor.from_pretrained(tiny_vlm("florence2"))
    text = ("</s><s>OPEN<loc_100><loc_200><loc_500><loc_200><loc_500><loc_400><loc_100><loc_400>"
            "9 to 5<loc_0><loc_900><loc_999><loc_900><loc_999><loc_999><loc_0><loc_999></s>")
    parsed = processor.post_process_generation(text, task="<OCR_WITH_REGION>", image_size=(80, 48))["<OCR_WITH_REGION>"]
    result = ocr_instances(parsed, 48, 80)
    assert result.class_names == ["OPEN", "9 to 5"]
    assert result.xyxy[0].tolist() == [int(100.5 * 0.08), int(200.5 * 0.048), int(500.5 * 0.08), int(400.5 * 0.048)]
    assert result.xyxy[1].tolist() == [int(0.5 * 0.08), int(900.5 * 0.048), int(999.5 * 0.08), int(999.5 * 0.048)]
    assert result.data["quad"][0] == [8, 9, 40, 9, 40, 19, 8, 19]
    assert result.xyxy[:, 2].max() <= 80 and result.xyxy[:, 3].max() <= 48


# ------------------------------------------------------------------------------------- video
@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    from vfm.testing.synthetic_video import write_video

    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", 20, 64, 48)


def decoded_frames(path):
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


@pytest.mark.parametrize("family", ["smolvlm", "llava-onevision", "qwen2.5-vl"])
def test_video_question_equals_generate_on_uniform_frames(tiny_vlm, clip_path, family):
    from vfm.models.vlm.chat import video_metadata

    path = tiny_vlm(family)
    processor, model = AutoProcessor.from_pretrained(path), reference_model(family, path)
    all_frames = decoded_frames(clip_path)
    picked = [0, 6, 13, 19]  # 4 of 20, uniformly, first and last included
    video = np.stack([all_frames[i] for i in picked])
    fps = 4 / (20 / 10)  # 4 frames over the 2-second clip
    inputs = processor(text=chat_prompt(processor, "video", "What moves?"), videos=[video], return_tensors="pt",
                       do_sample_frames=False, video_metadata=[video_metadata(4, fps, video)])
    out = greedy(model, inputs)
    expected = processor.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()
    answer = VisionLanguage.load(str(path)).ask_video(str(clip_path), "What moves?", frames=4, max_new_tokens=N)
    assert answer.frames == picked
    assert answer.text == expected
    assert answer.to_document()["frames"] == picked


def test_uniform_sampling_indices():
    from vfm.video.sample import sample_indices

    assert sample_indices(20, 4) == [0, 6, 13, 19]
    assert sample_indices(3, 8) == [0, 1, 2]
    assert sample_indices(101, 1) == [50]
    assert sample_indices(100, 100) == list(range(100))


# ------------------------------------------------------------------------------------- errors
def test_capability_errors(tiny_vlm, image, clip_path):
    florence = VisionLanguage.load(str(tiny_vlm("florence2")))
    with pytest.raises(ModelError, match="cannot answer questions"):
        florence.ask(image, "what?")
    blip = VisionLanguage.load(str(tiny_vlm("blip")))
    with pytest.raises(ModelError, match="detailed"):
        blip.caption(image, detailed=True)
    llava = VisionLanguage.load(str(tiny_vlm("llava")))
    with pytest.raises(ModelError, match="cannot take a video"):
        llava.ask_video(str(clip_path), "what?")
    with pytest.raises(ModelError, match="read text"):
        llava.read(image)
    smol = VisionLanguage.load(str(tiny_vlm("smolvlm")))
    for bad in ("", "   ", None):
        with pytest.raises(PromptError, match="question is empty"):
            smol.ask(image, bad)
    with pytest.raises(PromptError, match="max-new-tokens"):
        smol.ask(image, "what?", max_new_tokens=0)
    with pytest.raises(PromptError, match="temperature"):
        smol.ask(image, "what?", temperature=float("nan"))
    with pytest.raises(PromptError, match="--frames"):
        smol.ask_video(str(clip_path), "what?", frames=0)


def test_sampling_with_temperature_is_seeded(tiny_vlm, image):
    smol = VisionLanguage.load(str(tiny_vlm("smolvlm")))
    torch.manual_seed(5)
    a = smol.ask(image, "what?", max_new_tokens=N, temperature=1.5).text
    torch.manual_seed(5)
    assert smol.ask(image, "what?", max_new_tokens=N, temperature=1.5).text == a


def run_vfm(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "vfm.cli", *map(str, args)], capture_output=True, text=True, timeout=timeout)


def test_cli_ask_json_and_stream(tiny_vlm, image_path, image_array):
    path = tiny_vlm("qwen2.5-vl")
    got = run_vfm("ask", image_path, "What is this?", "--model", path, "--max-new-tokens", N, "--json")
    assert got.returncode == 0, got.stderr
    doc = json.loads(got.stdout)
    assert set(doc) >= {"answer", "model", "tokens", "seconds"}
    assert doc["answer"] == VisionLanguage.load(str(path)).ask(image_array, "What is this?", max_new_tokens=N).text
    plain = run_vfm("ask", image_path, "What is this?", "--model", path, "--max-new-tokens", N)
    assert plain.returncode == 0 and plain.stdout.strip() == doc["answer"]
    assert "tokens in" in plain.stderr


def test_cli_errors_are_one_line(tiny_vlm, image_path, tmp_path, clip_path):
    corrupt = tmp_path / "bad.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    florence, smol, llava = tiny_vlm("florence2"), tiny_vlm("smolvlm"), tiny_vlm("llava")
    cases = [
        (("ask", image_path, "what?", "--model", "no-such-model"), "unknown model"),
        (("ask", image_path, "what?", "--model", florence), "not usable to ask"),
        (("ask", image_path, "  ", "--model", smol), "question is empty"),
        (("ask", corrupt, "what?", "--model", smol), "bad.jpg"),
        (("ask", clip_path, "what?", "--model", llava), "cannot take a video"),
        (("ask", clip_path, "what?", "--model", smol, "--ground"), "--ground"),
        (("ask", image_path, "what?", "--model", smol, "--max-new-tokens", "0"), "max-new-tokens"),
        (("caption", image_path, "--model", smol, "--temperature", "-1"), "temperature"),
        (("read", image_path, "--model", smol), "not usable to read"),
        (("caption", tmp_path / "missing.png", "--model", florence), "does not exist"),
    ]
    for args, needle in cases:
        got = run_vfm(*args)
        assert got.returncode != 0, args
        lines = got.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (args, got.stderr)


def test_cli_read_and_caption_ground(tiny_vlm, tiny_sam_dir, image_path, image_array, tmp_path):
    florence = tiny_vlm("florence2")
    got = run_vfm("read", image_path, "--model", florence, "--json", "--max-new-tokens", 60)
    assert got.returncode == 0, got.stderr
    doc = json.loads(got.stdout)
    expected = VisionLanguage.load(str(florence)).read(image_array, max_new_tokens=60)
    assert [a["category_name"] for a in doc["annotations"]] == expected.class_names
    assert doc["text"] == "\n".join(expected.class_names)
    assert all(len(a["quad"]) == 8 for a in doc["annotations"])

    out = tmp_path / "grounded"
    got = run_vfm("caption", image_path, "--model", florence, "--ground", "--segmenter", tiny_sam_dir, "--json",
                  "--max-new-tokens", N, "--out", out)
    assert got.returncode == 0, got.stderr
    doc = json.loads(got.stdout)
    vlm = VisionLanguage.load(str(florence))
    caption = vlm.caption(image_array, max_new_tokens=N).text
    phrases = vlm.ground_text(image_array, caption)
    assert doc["answer"] == caption
    valid = [n for n, b in zip(phrases.class_names, phrases.xyxy) if b[2] > b[0] and b[3] > b[1]]
    assert [a["category_name"] for a in doc["annotations"]] == valid
    assert all("segmentation" in a for a in doc["annotations"])
    assert (out / "result.json").is_file() and (out / "overlay.png").is_file()


def test_florence2_positions_bound_the_input_and_the_answer(tiny_vlm, image):
    """BART's learned positions (256 in the tiny model, 1024 in the released ones) bound the grounded
    text (cut to fit) and the answer's length (capped), instead of an index error inside the model."""
    vlm = VisionLanguage.load(str(tiny_vlm("florence2")))
    found = vlm.ground_text(image, " ".join(["a cat on a red sofa"] * 200), max_new_tokens=8)
    assert found.image_size == (48, 80)
    assert vlm.caption(image, max_new_tokens=1000).tokens <= 255
