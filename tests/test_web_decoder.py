"""Clicks decoded in the browser (issue #21 item 3): the page fetches the decoder (ONNX) and the
image's embedding (fp16) once, onnxruntime-web decodes every click with no request, and the drawn
mask is the server's (IoU >= 0.99). Chromium here (playwright); Firefox in test_web_decoder_firefox.py.
The ONNX file itself is checked against the server's decode in Python in tests/test_backends.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import requests

from test_web import CHROMIUM, browser, click_image, overlay_pixels, scene, wait_requests  # noqa: F401 (fixture)
from vfm.server import ServerConfig, create_app
from vfm.server.testing import serve_in_thread

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def server_url(tiny_sam_dir, tmp_path_factory):
    import os

    before = os.environ.get("VFM_CACHE_DIR")
    os.environ["VFM_CACHE_DIR"] = str(tmp_path_factory.mktemp("vfm-cache"))  # the decoder export goes here
    app = create_app(ServerConfig(segmenter=str(tiny_sam_dir), device="cpu", precision="fp32"))
    try:
        with serve_in_thread(app) as url:
            yield url
    finally:
        if before is None:
            os.environ.pop("VFM_CACHE_DIR", None)
        else:
            os.environ["VFM_CACHE_DIR"] = before


def server_mask(url, image_id, points, mask_input=None):
    from pycocotools import mask as mask_utils

    body = {"points": [p[:2] for p in points], "labels": [p[2] for p in points], "multimask": False}
    if mask_input is not None:
        body["mask_input"] = mask_input
    ann = requests.post(f"{url}/v1/images/{image_id}/segment", json=body).json()["annotations"][0]
    return mask_utils.decode({"size": ann["segmentation"]["size"], "counts": ann["segmentation"]["counts"].encode()}), ann


def iou(a, b) -> float:
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


def test_clicks_decode_in_the_browser_with_no_request(browser, server_url, tmp_path):
    from pycocotools import mask as mask_utils

    scene().save(tmp_path / "scene.png")
    ctx = browser.new_context(viewport={"width": 1280, "height": 760})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url))
    page.goto(server_url + "/")
    page.set_input_files("#file", str(tmp_path / "scene.png"))
    page.wait_for_function("window.vfm.state.image !== null")
    # the decoder and the embedding are fetched once, right after the upload
    page.wait_for_function("window.vfm.decoder.state.session !== null && window.vfm.decoder.state.embeddings.size === 1",
                           timeout=60000)
    assert page.evaluate("() => vfm.decoder.state.reason") is None
    image_id = page.evaluate("() => vfm.state.image.id")
    before = list(seen)
    assert sum(u.endswith("/decoder.onnx") for u in before) == 1
    assert sum("/embedding" in u for u in before) == 1

    click_image(page, 200, 210)
    wait_requests(page, 1)
    click_image(page, 60, 60, button="right")  # a negative point refines with the previous logits
    wait_requests(page, 2)
    assert seen == before, f"a click made requests: {seen[len(before):]}"
    cur = page.evaluate("() => ({seg: vfm.state.current.segmentation, area: vfm.state.current.area,"
                        " local: vfm.state.current.local, points: vfm.state.points, ms: vfm.state.clickMs})")
    assert cur["local"] is True and cur["ms"] > 0
    assert "decoded in the browser in" in page.text_content("#status")

    # the drawn mask is the server's for the same clicks (first click alone, then refined)
    points = [[round(p[0], 2), round(p[1], 2), p[2]] for p in cur["points"]]
    first, ann = server_mask(server_url, image_id, points[:1])
    refined, _ = server_mask(server_url, image_id, points, mask_input=ann["mask_input_id"])
    drawn = mask_utils.decode({"size": cur["seg"]["size"], "counts": cur["seg"]["counts"].encode()})
    assert drawn.shape == (320, 480) and int(drawn.sum()) == cur["area"]
    assert iou(drawn, refined) >= 0.99, iou(drawn, refined)
    # the overlay shows exactly the mask, and the JS RLE encoder writes pycocotools' string
    assert overlay_pixels(page)["count"] == cur["area"]
    assert cur["seg"]["counts"] == mask_utils.encode(np.asfortranarray(drawn))["counts"].decode()

    # undo: back to the first click alone, still local, still the server's mask
    page.click("#undo")
    wait_requests(page, 3)
    drawn1 = page.evaluate("() => Array.from(vfm.decodeRle(vfm.state.current.segmentation))")
    assert iou(np.array(drawn1, bool).reshape(320, 480), first.astype(bool)) >= 0.99
    assert seen == before
    # a dragged box still goes to the server (the fallback path)
    box = page.locator("#marks").bounding_box()
    sx, sy = box["width"] / 480, box["height"] / 320
    page.mouse.move(box["x"] + 320 * sx, box["y"] + 110 * sy)
    page.mouse.down()
    page.mouse.move(box["x"] + 410 * sx, box["y"] + 270 * sy, steps=5)
    page.mouse.up()
    wait_requests(page, 4)
    assert any(u.endswith("/segment") for u in seen[len(before):])
    assert not errors
    ctx.close()


def test_a_server_without_browser_decoding_falls_back(browser, tiny_sam_dir, tmp_path):
    app = create_app(ServerConfig(segmenter=str(tiny_sam_dir), device="cpu", precision="fp32", browser_decoding=False))
    scene().save(tmp_path / "scene.png")
    with serve_in_thread(app) as url:
        assert requests.get(f"{url}/v1/models/segmenter/decoder.onnx").status_code == 501
        page = browser.new_page()
        page.goto(url + "/")
        page.set_input_files("#file", str(tmp_path / "scene.png"))
        page.wait_for_function("window.vfm.state.image !== null")
        with page.expect_response(lambda r: r.url.endswith("/segment")):
            click_image(page, 200, 210)
        wait_requests(page, 1)
        assert page.evaluate("() => vfm.state.current.local") is None
        assert "no exported decoder" not in page.text_content("#status")
        page.close()
