"""No request can run away with the server (issue 20 items 2 and 4): caps answered with 413/422 and a
reason, deeply nested or oversized JSON refused before parsing, a disconnected client's work stopped
at its next batch, SIGTERM during a long request, /readyz without paths, /docs without a network."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import make_image
from tests.test_server_cli import start
from tests.test_server_api import png_bytes

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def served(tiny_sam_dir, tmp_path_factory):
    """vfm serve as a subprocess with small caps and an API key."""
    from vfm.testing.tiny_detectors import build_grounding_dino

    gdino = build_grounding_dino(tmp_path_factory.mktemp("models") / "tiny-gdino", seed=0)
    proc, url = start(["--segmenter", str(tiny_sam_dir), "--detector", str(gdino), "--precision", "fp32",
                       "--device", "cpu", "--max-points-per-side", "400", "--max-prompts", "8", "--max-classes", "5",
                       "--max-json-kb", "64", "--max-json-depth", "10", "--api-key", "sekret", "--shutdown-grace", "1"])
    headers = {"Authorization": "Bearer sekret"}
    r = requests.post(f"{url}/v1/images", files={"file": ("a.png", png_bytes(make_image(160, 200, seed=1)), "image/png")},
                      headers=headers)
    assert r.status_code == 200, r.text
    yield url, headers, r.json()["image_id"], proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def post(url, path, body, headers, **kw):
    return requests.post(f"{url}{path}", data=body if isinstance(body, (bytes, str)) else json.dumps(body),
                         headers={**headers, "Content-Type": "application/json"}, **kw)


@pytest.mark.parametrize("path, body, status, words", [
    ("everything", {"points_per_side": 401}, 422, "limit of 400 (--max-points-per-side)"),
    ("everything", {"crop_n_layers": 3}, 422, "limit of 2 (--max-crop-layers)"),
    ("segment", {"boxes": [[1, 1, 9, 9]] * 9}, 422, "limit of 8 (--max-prompts)"),
    ("segment", {"points": [[5, 5]] * 9}, 422, "limit of 8 (--max-prompts)"),
    ("detect", {"classes": ["a", "b", "c", "d", "e", "f"]}, 422, "limit of 5 (--max-classes)"),
    ("classify", {"labels": "a, b, c, d, e, f"}, 422, "limit of 5 (--max-classes)"),
])
def test_caps_are_422_with_the_reason(served, path, body, status, words):
    url, headers, image_id, _ = served
    r = post(url, f"/v1/images/{image_id}/{path}", body, headers)
    assert r.status_code == status and words in r.json()["error"], r.text


def test_json_over_the_byte_cap_is_413_before_parsing(served):
    url, headers, image_id, _ = served
    body = json.dumps({"points": [[5, 5]], "pad": "x" * 70_000})
    r = post(url, f"/v1/images/{image_id}/segment", body, headers)
    assert r.status_code == 413 and "--max-json-kb" in r.json()["error"]


@pytest.mark.parametrize("depth", [11, 5000, 100_000])
def test_deeply_nested_json_is_400_not_500(served, depth):
    url, headers, image_id, _ = served
    body = '{"points": ' + "[" * depth + "]" * depth + "}"
    r = post(url, f"/v1/images/{image_id}/segment", body, headers)
    assert r.status_code in (400, 413) and "error" in r.json()
    assert "nested" in r.json()["error"] or "--max-json-kb" in r.json()["error"]


def _generator(url, headers) -> dict:
    return requests.get(f"{url}/metrics", headers=headers, timeout=5).json()


def test_a_disconnected_clients_work_is_cancelled(served):
    url, headers, image_id, _ = served
    before = _generator(url, headers)["cancelled_requests"]
    with pytest.raises(requests.exceptions.ReadTimeout):  # 400x400 points: many seconds of work
        post(url, f"/v1/images/{image_id}/everything", {"points_per_side": 400, "pred_iou_thresh": 0,
                                                        "stability_score_thresh": 0}, headers, timeout=1.5)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        doc = _generator(url, headers)
        if doc["models"]["mask generator"]["running"] == 0 and doc["cancelled_requests"] > before:
            break
        time.sleep(0.2)
    assert doc["models"]["mask generator"]["running"] == 0 and doc["cancelled_requests"] == before + 1
    r = post(url, f"/v1/images/{image_id}/everything", {"points_per_side": 2}, headers, timeout=30)
    assert r.status_code == 200  # the generator is free again


def test_readyz_shows_no_paths_without_the_key(served, tiny_sam_dir):
    url, headers, _, _ = served
    anonymous = requests.get(f"{url}/readyz").text
    assert str(tiny_sam_dir) not in anonymous and '"loadable"' in anonymous
    assert str(tiny_sam_dir) in requests.get(f"{url}/readyz", headers=headers).text


def test_docs_assets_are_served_by_the_package(served):
    url, _, _, _ = served
    page = requests.get(f"{url}/docs").text
    assert "/static-docs/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    js = requests.get(f"{url}/static-docs/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert requests.get(f"{url}/redoc").status_code == 200


@pytest.mark.slow
def test_sigterm_during_a_long_request_stops_the_server_in_seconds(tiny_sam_dir):
    proc, url = start(["--segmenter", str(tiny_sam_dir), "--precision", "fp32", "--device", "cpu",
                       "--max-points-per-side", "400", "--shutdown-grace", "1"])
    try:
        r = requests.post(f"{url}/v1/images", files={"file": ("a.png", png_bytes(make_image(120, 160)), "image/png")})
        image_id = r.json()["image_id"]
        import threading

        def long_request():
            try:
                requests.post(f"{url}/v1/images/{image_id}/everything", json={"points_per_side": 400}, timeout=60)
            except requests.RequestException:
                pass

        worker = threading.Thread(target=long_request, daemon=True)
        worker.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # wait until the generator is busy
            if requests.get(f"{url}/metrics").json()["models"]["mask generator"]["running"]:
                break
            time.sleep(0.1)
        start_stop = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        assert time.monotonic() - start_stop < 10  # grace 1 s + the batch in flight, not the whole request
    finally:
        if proc.poll() is None:
            proc.kill()
