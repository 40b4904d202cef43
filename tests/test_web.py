"""The web page in headless Chromium (Debian's, driven by playwright) against a real loopback server.

Checks what a user sees: the mask drawn on the canvas after a click (pixels, not only the
request), refinement without re-uploading, box and text prompts, class names and the COCO export.
Saves docs/screenshot.png when it is missing or VFM_SCREENSHOT=1.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from vfm.server import ServerConfig, create_app
from vfm.server.testing import serve_in_thread

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "screenshot.png"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


def scene(width: int = 480, height: int = 320) -> Image.Image:
    """A small synthetic landscape: sky, hills, a house with a roof and door, a sun and a tree."""
    yy = np.linspace(0, 1, height)[:, None, None]
    sky = (np.array([110, 170, 235]) * (1 - yy) + np.array([200, 225, 250]) * yy).astype(np.uint8)
    img = Image.fromarray(np.broadcast_to(sky, (height, width, 3)).copy())
    d = ImageDraw.Draw(img)
    d.ellipse([370, 30, 430, 90], fill=(250, 210, 60))
    d.ellipse([-120, 210, 300, 420], fill=(90, 160, 70))
    d.ellipse([200, 200, 620, 440], fill=(70, 140, 60))
    d.rectangle([130, 150, 270, 260], fill=(200, 70, 60))
    d.polygon([(115, 152), (200, 90), (285, 152)], fill=(120, 60, 40))
    d.rectangle([185, 200, 215, 260], fill=(90, 50, 30))
    d.rectangle([145, 170, 175, 195], fill=(220, 235, 250))
    d.rectangle([355, 190, 372, 265], fill=(100, 70, 40))
    d.ellipse([325, 120, 402, 205], fill=(40, 120, 50))
    return img


@pytest.fixture(scope="module")
def server_url(tiny_sam_dir, gdino_dir):
    # the server path of every click (decoded in the browser: test_web_decoder.py)
    app = create_app(ServerConfig(segmenter=str(tiny_sam_dir), detector=str(gdino_dir), device="cpu", precision="fp32",
                                  browser_decoding=False))
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 760}, accept_downloads=True)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.errors = errors
    yield pg
    ctx.close()


def overlay_pixels(page) -> dict:
    """Non-transparent pixels of the mask overlay canvas, and the RGB of the first one."""
    return page.evaluate("""() => {
        const c = document.getElementById('overlay');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0, first = null;
        for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0) { n++; if (!first) first = [d[i], d[i+1], d[i+2]]; }
        return {count: n, first: first};
    }""")


def click_image(page, x: float, y: float, button: str = "left"):
    """Click at image pixel (x, y) whatever the canvas's displayed scale."""
    box = page.locator("#marks").bounding_box()
    sx, sy = box["width"] / 480, box["height"] / 320
    page.mouse.click(box["x"] + x * sx, box["y"] + y * sy, button=button)


def same_points(got, want, tol: float = 1.0) -> bool:
    """Clicks land within a pixel of the intended image point (the canvas is displayed scaled)."""
    return len(got) == len(want) and all(
        g[2] == w[2] and abs(g[0] - w[0]) <= tol and abs(g[1] - w[1]) <= tol for g, w in zip(got, want))


def wait_requests(page, n: int):
    page.wait_for_function(f"window.vfm.state.requests >= {n} && window.vfm.state.current !== null")


def test_click_to_segment_refine_box_text_and_export(page, server_url, tmp_path):
    from pycocotools import mask as mask_utils

    path = tmp_path / "scene.png"
    scene().save(path)
    seen = []
    page.on("request", lambda r: seen.append((r.method, r.url, r.post_data if r.method == "POST" and
                                              "segment" in r.url else None)))
    page.goto(server_url + "/")
    assert page.title().startswith("vfm")
    page.set_input_files("#file", str(path))
    page.wait_for_function("window.vfm.state.image !== null")

    # one positive click → a mask is decoded from RLE and drawn
    click_image(page, 200, 210)
    wait_requests(page, 1)
    state = page.evaluate("() => ({area: vfm.state.current.area, seg: vfm.state.current.segmentation,"
                          " points: vfm.state.points})")
    assert same_points(state["points"], [[200, 210, 1]])
    truth = mask_utils.decode({"size": state["seg"]["size"], "counts": state["seg"]["counts"].encode()})
    assert truth.shape == (320, 480)
    assert state["area"] == int(truth.sum()) > 0
    px = overlay_pixels(page)
    assert px["count"] == int(truth.sum())  # exactly the mask's pixels are painted
    assert px["first"] == [255, 215, 0]
    # the JS RLE decoder agrees with pycocotools pixel for pixel
    js_bits = page.evaluate("() => Array.from(vfm.decodeRle(vfm.state.current.segmentation)).join('')")
    assert js_bits == "".join(map(str, truth.reshape(-1).tolist()))

    # a right click adds a negative point and refines with the previous logits — no new upload
    click_image(page, 60, 60, button="right")
    wait_requests(page, 2)
    assert same_points(page.evaluate("() => vfm.state.points"), [[200, 210, 1], [60, 60, 0]])
    uploads = [s for s in seen if s[0] == "POST" and s[1].endswith("/v1/images")]
    segments = [json.loads(s[2]) for s in seen if s[0] == "POST" and s[1].endswith("/segment")]
    assert len(uploads) == 1 and len(segments) == 2
    assert segments[1]["labels"] == [1, 0] and isinstance(segments[1]["mask_input"], str)

    # undo drops the negative point; keep the mask under a class name
    page.click("#undo")
    wait_requests(page, 3)
    assert same_points(page.evaluate("() => vfm.state.points"), [[200, 210, 1]])
    page.fill("#class-name", "house")
    page.click("#accept")
    assert page.locator("#masks li").count() == 1
    assert page.locator("#masks li input").input_value() == "house"

    # drag a box → a new current mask
    box = page.locator("#marks").bounding_box()
    sx, sy = box["width"] / 480, box["height"] / 320
    page.mouse.move(box["x"] + 320 * sx, box["y"] + 110 * sy)
    page.mouse.down()
    page.mouse.move(box["x"] + 360 * sx, box["y"] + 180 * sy, steps=5)
    page.mouse.move(box["x"] + 410 * sx, box["y"] + 270 * sy, steps=5)
    page.mouse.up()
    wait_requests(page, 4)
    body = [json.loads(s[2]) for s in seen if s[0] == "POST" and s[1].endswith("/segment")][-1]
    assert "points" not in body and body["box"][0] == pytest.approx(320, abs=2) and body["box"][3] == pytest.approx(270, abs=2)
    page.fill("#class-name", "tree")
    page.click("#accept")
    assert page.locator("#masks li").count() == 2

    # the screenshot for the docs: two named masks, a text prompt typed
    page.fill("#text", "sun")
    page.wait_for_timeout(100)
    shot = tmp_path / "screenshot.png"
    page.screenshot(path=str(shot))
    if os.environ.get("VFM_SCREENSHOT") == "1" or not SCREENSHOT.exists():
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
    # one more click, left as the current (unaccepted) mask: the export includes it
    click_image(page, 400, 60)
    wait_requests(page, 5)

    # text prompt → masks from the grounding endpoint, named after the class
    with page.expect_response(lambda r: r.url.endswith("/ground")) as resp:
        page.click("#ground")
    found = resp.value.json()["annotations"]
    page.wait_for_function(f"document.querySelectorAll('#masks li').length === {2 + len(found)}")
    # rename the first mask in the list, as a user would
    page.locator("#masks li input").first.fill("home")
    page.locator("#masks li input").first.dispatch_event("change")

    with page.expect_download() as dl:
        page.click("#export")
    out = tmp_path / "export.json"
    dl.value.save_as(out)
    assert dl.value.suggested_filename == "scene.coco.json"
    coco = json.loads(out.read_text())
    assert coco["images"] == [{"id": 1, "file_name": "scene.png", "width": 480, "height": 320}]
    names = {c["id"]: c["name"] for c in coco["categories"]}
    anns = coco["annotations"]
    assert len(anns) == 3 + len(found)
    assert [names[a["category_id"]] for a in anns[:2]] == ["home", "tree"]
    assert all(names[a["category_id"]] == "sun" for a in anns[2:2 + len(found)])
    for a in anns:
        m = mask_utils.decode({"size": a["segmentation"]["size"], "counts": a["segmentation"]["counts"].encode()})
        assert m.shape == (320, 480) and int(m.sum()) == a["area"] and a["image_id"] == 1
    assert page.errors == []


def test_api_key_entered_on_the_page(browser, tiny_sam_dir, tmp_path):
    app = create_app(ServerConfig(segmenter=str(tiny_sam_dir), device="cpu", precision="fp32", api_key="k3y"))
    path = tmp_path / "scene.png"
    scene().save(path)
    with serve_in_thread(app) as url:
        ctx = browser.new_context()
        page = ctx.new_page()
        page.goto(url + "/")
        page.set_input_files("#file", str(path))
        page.wait_for_function("document.getElementById('status').classList.contains('error')")
        assert "API key" in page.text_content("#status")
        page.fill("#apikey", "k3y")
        page.dispatch_event("#apikey", "change")
        assert page.evaluate("() => localStorage.getItem('vfm.apiKey')") == "k3y"
        page.set_input_files("#file", [])
        page.set_input_files("#file", str(path))
        page.wait_for_function("window.vfm.state.image !== null")
        click_image(page, 200, 210)
        wait_requests(page, 1)
        assert overlay_pixels(page)["count"] == page.evaluate("() => vfm.state.current.area")
        # the decoder and the embedding were fetched with the key: the click was decoded in the browser
        assert page.evaluate("() => vfm.state.current.local") is True
        # the key survives a reload
        page.reload()
        assert page.input_value("#apikey") == "k3y"
        ctx.close()


def test_rle_decoder_edge_cases(page, server_url):
    """Long runs (multi-chunk LEB128 with sign bits) and an empty/full mask decode like pycocotools."""
    from pycocotools import mask as mask_utils

    page.goto(server_url + "/")
    rng = np.random.RandomState(0)
    cases = [np.zeros((37, 53), np.uint8), np.ones((37, 53), np.uint8)]
    big = np.zeros((700, 900), np.uint8)
    big[100:650, 5:880] = 1
    big[300:310, :] = 0
    cases += [big, (rng.rand(31, 17) > 0.5).astype(np.uint8)]
    for m in cases:
        rle = mask_utils.encode(np.asfortranarray(m))
        js = page.evaluate("(r) => { const b = vfm.decodeRle(r); let s = 0; const ones = [];"
                           " for (let i = 0; i < b.length; i++) { s += b[i]; } return {sum: s, first: Array.from(b.slice(0, 2000))}; }",
                           {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode()})
        assert js["sum"] == int(m.sum())
        assert js["first"] == m.reshape(-1)[:2000].tolist()


def test_drop_negative_toggle_clear_and_delete(page, server_url, tmp_path):
    """Drag-and-drop opens an image; the toggle makes left clicks negative; Clear and × work."""
    import base64
    import io

    buf = io.BytesIO()
    scene().save(buf, "PNG")
    page.goto(server_url + "/")
    page.evaluate("""(b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'dropped.png', {type: 'image/png'}));
        document.getElementById('stage').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""", base64.b64encode(buf.getvalue()).decode())
    page.wait_for_function("window.vfm.state.image !== null")
    assert page.evaluate("() => vfm.state.image.fileName") == "dropped.png"
    assert page.evaluate("() => [vfm.state.image.width, vfm.state.image.height]") == [480, 320]

    click_image(page, 100, 100)
    wait_requests(page, 1)
    page.check("#negative")
    click_image(page, 300, 200)
    wait_requests(page, 2)
    assert [p[2] for p in page.evaluate("() => vfm.state.points")] == [1, 0]
    page.click("#clear")
    assert page.evaluate("() => [vfm.state.points.length, vfm.state.current]") == [0, None]
    assert overlay_pixels(page)["count"] == 0  # nothing drawn once the prompt is cleared

    page.uncheck("#negative")
    click_image(page, 200, 210)
    wait_requests(page, 3)
    page.click("#accept")
    area = page.evaluate("() => vfm.state.masks[0].area")
    assert overlay_pixels(page)["count"] == area  # the kept mask stays drawn, in its own colour
    page.click("#masks li button")
    assert page.locator("#masks li").count() == 0
    assert overlay_pixels(page)["count"] == 0
    assert page.errors == []


def test_tiff_is_shown_from_the_server_decoded_pixels(page, server_url, tmp_path):
    """Browsers cannot show TIFF; the page then draws the server's decoded PNG and segments as usual."""
    path = tmp_path / "scene.tiff"
    scene().save(path)
    page.goto(server_url + "/")
    with page.expect_response(lambda r: r.url.endswith("/image.png")) as resp:
        page.set_input_files("#file", str(path))
    assert resp.value.status == 200
    page.wait_for_function("window.vfm.state.image !== null")
    # the image canvas shows the scene: the sun's yellow at its centre (400, 60)
    rgb = page.evaluate("() => Array.from(document.getElementById('image').getContext('2d')"
                        ".getImageData(400, 60, 1, 1).data.slice(0, 3))")
    assert rgb == [250, 210, 60]
    click_image(page, 200, 210)
    wait_requests(page, 1)
    assert overlay_pixels(page)["count"] == page.evaluate("() => vfm.state.current.area") > 0
    assert page.errors == []


def test_docs_render_swagger_ui_with_no_network(page, server_url):
    """/docs draws the API's operations from files the server itself serves: every request that does
    not go to the server is blocked, and the page still lists the endpoints."""
    outside = []

    def only_the_server(route):
        if route.request.url.startswith(server_url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_server)
    page.goto(f"{server_url}/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=20_000)
    paths = page.eval_on_selector_all(".opblock-summary-path", "els => els.map(e => e.textContent)")
    assert any("/v1/images/{image_id}/segment" in p.replace("\u200b", "") for p in paths)
    assert outside == []


def test_search_box_shows_hits_and_opens_one_in_the_segmentation_view(browser, tiny_sam_dir, tmp_path):
    """vfm serve --db: the page's search box shows the hits as a grid; a click opens a hit for clicking masks."""
    pytest.importorskip("faiss")
    from vfm.cli.main import main
    from vfm.testing.tiny_clip import build_clip

    clip = build_clip(tmp_path / "clip")
    src = tmp_path / "imgs"
    src.mkdir()
    scene().save(src / "scene.png")
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(src / f"noise{i}.png")
    assert main(["index", str(src), "--model", str(clip), "--db", str(tmp_path / "db"), "--quiet"]) == 0
    app = create_app(ServerConfig(segmenter=str(tiny_sam_dir), classifier=str(clip), device="cpu", precision="fp32",
                                  db=str(tmp_path / "db")))
    with serve_in_thread(app) as url:
        ctx = browser.new_context(viewport={"width": 1280, "height": 760})
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/")
        page.fill("#search", "a house")
        page.click("#search-go")
        page.wait_for_function("document.querySelectorAll('#hits figure').length === 5")
        # every thumbnail is the indexed image's own pixels
        page.wait_for_function("[...document.querySelectorAll('#hits img')].every(i => i.complete && i.naturalWidth > 0)")
        sizes = page.evaluate("() => [...document.querySelectorAll('#hits img')].map(i => [i.alt, i.naturalWidth])")
        assert sorted(sizes) == sorted([["scene.png", 480]] + [[f"noise{i}.png", 80] for i in range(4)])
        # a click on the scene's hit opens it in the segmentation view, where a click makes a mask
        page.click("#hits figure[title^='scene.png']")
        page.wait_for_function("window.vfm.state.image !== null && window.vfm.state.image.fileName === 'scene.png'")
        assert page.evaluate("() => [vfm.state.image.width, vfm.state.image.height]") == [480, 320]
        click_image(page, 200, 210)
        wait_requests(page, 1)
        assert overlay_pixels(page)["count"] > 0
        # "Like this" searches by the open image: the scene finds itself first
        page.click("#search-image")
        page.wait_for_function("document.querySelector('#hits figure') && "
                               "document.querySelector('#hits figure').title.startsWith('scene.png (score 1.000')")
        assert not errors
        ctx.close()


def test_ask_box_shows_the_answer_and_the_grounded_phrases(browser, tiny_sam_dir, tiny_vlm, tmp_path):
    """vfm serve --vlm / --captioner: the page's ask box shows the server's answer; "show" adds the
    answer's grounded phrases as masks named by their phrase."""
    import requests

    from vfm.tasks.vlm import VisionLanguage

    florence, smol = str(tiny_vlm("florence2")), str(tiny_vlm("smolvlm"))
    app = create_app(ServerConfig(segmenter=str(tiny_sam_dir), captioner=florence, vlm=smol, device="cpu", precision="fp32"))
    scene().save(tmp_path / "scene.png")
    pixels = np.asarray(scene())
    with serve_in_thread(app) as url:
        ctx = browser.new_context(viewport={"width": 1280, "height": 760})
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/")
        page.set_input_files("#file", str(tmp_path / "scene.png"))
        page.wait_for_function("window.vfm.state.image !== null")
        page.fill("#question", "What is in the picture?")
        page.click("#ask-go")
        page.wait_for_function("!document.querySelector('#answer-side').hidden")
        expected = VisionLanguage.load(smol).ask(pixels, "What is in the picture?").text
        assert page.text_content("#answer") == expected
        assert "tokens" in page.text_content("#answer-info")
        # caption + show: the grounded phrases become masks, as POST /v1/caption gives them
        page.check("#ask-ground")
        page.click("#caption-go")
        page.wait_for_function("document.querySelector('#status').textContent.startsWith('captioned')")
        image_id = page.evaluate("() => vfm.state.image.id")
        doc = requests.post(f"{url}/v1/caption", json={"image_id": image_id, "ground": True}).json()
        assert page.text_content("#answer") == doc["answer"]
        names = page.evaluate("() => vfm.state.masks.map(m => m.name)")
        assert names == [a["category_name"] for a in doc["annotations"]]
        assert not errors
        ctx.close()
