"""POST /v1/caption and POST /v1/ask over loopback: the same text as the Python API (and so as
transformers' generate, tests/test_vlm.py), grounding, and 4xx for bad requests."""

from __future__ import annotations

import pytest
import requests

from vfm.server import ServerConfig, create_app
from vfm.server.testing import serve_in_thread
from vfm.tasks.vlm import VisionLanguage

from conftest import make_image
from test_server_api import png_bytes


@pytest.fixture(scope="module")
def dirs(tiny_vlm, tiny_sam_dir):
    return {"captioner": str(tiny_vlm("florence2")), "vlm": str(tiny_vlm("smolvlm")), "segmenter": str(tiny_sam_dir)}


@pytest.fixture(scope="module")
def url(dirs):
    app = create_app(ServerConfig(device="cpu", precision="fp32", max_new_tokens=64, **dirs))
    with serve_in_thread(app) as u:
        yield u


@pytest.fixture(scope="module")
def pixels():
    return make_image(48, 80, seed=3)


@pytest.fixture(scope="module")
def image_id(url, pixels):
    r = requests.post(f"{url}/v1/images?embed=false", files={"file": ("shapes.png", png_bytes(pixels), "image/png")})
    assert r.status_code == 200, r.text
    return r.json()["image_id"]


def test_caption_and_ask_equal_the_python_api(url, image_id, pixels, dirs):
    r = requests.post(f"{url}/v1/caption", json={"image_id": image_id, "max_new_tokens": 10})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["answer"] == VisionLanguage.load(dirs["captioner"]).caption(pixels, max_new_tokens=10).text
    assert doc["model"] == dirs["captioner"] and doc["tokens"] >= 1 and doc["seconds"] > 0

    r = requests.post(f"{url}/v1/ask", json={"image_id": image_id, "question": "What is this?", "max_new_tokens": 10})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["answer"] == VisionLanguage.load(dirs["vlm"]).ask(pixels, "What is this?", max_new_tokens=10).text
    assert doc["question"] == "What is this?"


def test_grounded_answer_has_boxes_and_masks(url, image_id, pixels, dirs):
    r = requests.post(f"{url}/v1/caption", json={"image_id": image_id, "max_new_tokens": 10, "ground": True})
    assert r.status_code == 200, r.text
    doc = r.json()
    florence = VisionLanguage.load(dirs["captioner"])
    found = florence.ground_text(pixels, doc["answer"])
    valid = [n for n, b in zip(found.class_names, found.xyxy) if b[2] > b[0] and b[3] > b[1]]
    assert [a["category_name"] for a in doc["annotations"]] == valid
    assert doc["image"]["file_name"] == "shapes.png" and doc["image"]["width"] == 80
    assert all("segmentation" in a for a in doc["annotations"])


@pytest.mark.parametrize("path, body, status, needle", [
    ("ask", {"question": "what?"}, 422, "image_id"),
    ("ask", {"image_id": "nope", "question": "what?"}, 404, ""),
    ("ask", {"image_id": "IMG", "question": "   "}, 422, "question is empty"),
    ("ask", {"image_id": "IMG", "question": 5}, 422, "question must be a string"),
    ("ask", {"image_id": "IMG", "question": "q", "max_new_tokens": 65}, 422, "limit of 64"),
    ("ask", {"image_id": "IMG", "question": "q", "max_new_tokens": 0}, 422, "max-new-tokens"),
    ("ask", {"image_id": "IMG", "question": "q", "temperature": "hot"}, 422, "temperature"),
    ("caption", {"image_id": "IMG", "detailed": "yes"}, 422, "detailed"),
    ("caption", {"image_id": "IMG", "colour": 1}, 422, "unknown field"),
])
def test_bad_requests_are_4xx(url, image_id, path, body, status, needle):
    body = {k: (image_id if v == "IMG" else v) for k, v in body.items()}
    r = requests.post(f"{url}/v1/{path}", json=body)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]


def test_a_captioning_model_as_vlm_is_503_with_the_reason(dirs, image_id, pixels):
    app = create_app(ServerConfig(device="cpu", precision="fp32", vlm=dirs["captioner"], segmenter=dirs["segmenter"]))
    with serve_in_thread(app) as u:
        up = requests.post(f"{u}/v1/images?embed=false", files={"file": ("a.png", png_bytes(pixels), "image/png")})
        r = requests.post(f"{u}/v1/ask", json={"image_id": up.json()["image_id"], "question": "what?"})
        assert r.status_code == 503 and "not usable to ask" in r.json()["error"]
