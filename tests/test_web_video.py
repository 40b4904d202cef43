"""The web page's video mode in headless Chromium (Debian's, driven by playwright) against a real
loopback server with a tiny random-weight SAM 2 video model; nothing mocked, all through the UI.

Open a synthetic video, scrub (the canvas shows the server's frame), prompt a point on frame 0 and a
box on a later frame for a second object, Track, then check the mask the page paints against the
server's DAVIS PNG pixel for pixel, the job against a direct API call with the clicked coordinates,
the overlay's playback, the exports, Cancel, and the one-line errors. Saves
docs/screenshot-video.png when it is missing or VFM_SCREENSHOT=1.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from test_web import CHROMIUM, browser, page, scene  # noqa: F401 - browser and page are fixtures
from vfm.server import ServerConfig, create_app
from vfm.server.testing import serve_in_thread
from vfm.testing.synthetic_video import frame_and_masks, object_box, object_centre, write_video
from vfm.video.outputs import davis_palette

pytest.importorskip("av")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")

W, H, N = 160, 120, 10
PALETTE = davis_palette().astype(int)
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "screenshot-video.png"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("v") / "clip.mp4", N, W, H)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    # long enough that a Cancel lands while the job runs (~35 ms a frame with the tiny model)
    return write_video(tmp_path_factory.mktemp("v") / "long.mp4", 400, 96, 64, seed=3)


@pytest.fixture(scope="module")
def server_url(tiny_sam_dir, tiny_sam2_video_dir, tmp_path_factory):
    app = create_app(ServerConfig(segmenter=str(tiny_sam_dir), tracker=str(tiny_sam2_video_dir), device="cpu",
                                  precision="fp32", video_dir=str(tmp_path_factory.mktemp("videos"))))
    with serve_in_thread(app) as url:
        yield url


def image_xy(page, x: float, y: float, w: int = W, h: int = H) -> tuple[float, float]:
    """Viewport position of video pixel (x, y) on the (scaled) canvas."""
    box = page.locator("#marks").bounding_box()
    return box["x"] + x * box["width"] / w, box["y"] + y * box["height"] / h


def canvas_rgba(page, canvas: str) -> np.ndarray:
    data = page.evaluate("""(id) => {
        const c = document.getElementById(id);
        return [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)];
    }""", canvas)
    w, h, px = data
    return np.array(px, np.uint8).reshape(h, w, 4)


def painted_ids(rgba: np.ndarray, ids: list[int]) -> np.ndarray:
    """Object id of every painted overlay pixel: the nearest of the objects' palette colours (the
    translucent fill reads back with premultiplied-alpha rounding); 0 where nothing is painted."""
    colours = PALETTE[ids]  # K x 3
    dist = np.abs(rgba[..., None, :3].astype(int) - colours[None, None]).sum(-1)
    out = np.array(ids)[dist.argmin(-1)]
    assert dist.min(-1)[rgba[..., 3] > 0].max() <= 6  # each painted pixel is one of the object colours
    return np.where(rgba[..., 3] > 0, out, 0)


def server_png(url: str, path: str) -> np.ndarray:
    r = requests.get(url + path)
    assert r.status_code == 200, r.text
    im = Image.open(io.BytesIO(r.content))
    assert im.mode == "P"
    return np.asarray(im)


def wait_job(url: str, job_id: str, timeout: float = 120) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = requests.get(f"{url}/v1/jobs/{job_id}").json()
        if job["status"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise AssertionError("the job did not finish")


def drag(page, a: tuple[float, float], b: tuple[float, float]):
    page.mouse.move(*image_xy(page, *a))
    page.mouse.down()
    page.mouse.move(*image_xy(page, (a[0] + b[0]) / 2, (a[1] + b[1]) / 2), steps=4)
    page.mouse.move(*image_xy(page, *b), steps=4)
    page.mouse.up()


def wait_tracked(page, frame: int):
    """Wait for the page's job to finish (or an error in the footer); it must be done and frame's mask drawn."""
    page.wait_for_function("document.getElementById('status').classList.contains('error') || (vfm.video.state.job"
                           " && ['done', 'failed', 'cancelled'].includes(vfm.video.state.job.status))", timeout=120_000)
    assert page.evaluate("vfm.video.state.job && vfm.video.state.job.status") == "done", page.text_content("#status")
    page.wait_for_function(f"vfm.video.state.maskFrame === {frame}")


def show(page, n: int):
    page.wait_for_function(f"vfm.video.state.shown === {n} && vfm.video.state.frame === {n}")


def open_video(page, url: str, path: Path):
    page.goto(url + "/")
    page.set_input_files("#video-file", str(path))
    show(page, 0)


def test_open_scrub_prompt_track_play_and_export(page, server_url, clip, tmp_path):
    seen = []
    page.on("request", lambda r: seen.append((r.method, r.url)))
    open_video(page, server_url, clip)
    assert page.is_visible("#video-bar") and not page.is_visible("#image-side")
    video_id = page.evaluate("vfm.video.state.video.video_id")
    assert page.evaluate("[vfm.video.state.video.width, vfm.video.state.video.height]") == [W, H]
    assert [c["width"] for c in page.evaluate("[...document.querySelectorAll('canvas')].map(c => ({width: c.width}))")] == [W] * 3
    page.wait_for_function("document.getElementById('status').textContent.includes('click on an object')")
    assert "160×120, 10 frames at 10 fps" in page.text_content("#status")
    assert page.get_attribute("#frame", "max") == str(N - 1)

    # scrub: the keyboard on the focused slider, the buttons, the slider dragged to a frame
    page.focus("#frame")
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    show(page, 3)
    page.click("#frame-next")
    show(page, 4)
    page.locator("#frame").fill("8")
    show(page, 8)
    page.click("#frame-prev")
    show(page, 7)
    assert page.input_value("#frame-number") == "7"
    shown = canvas_rgba(page, "image")[..., :3].astype(int)
    jpeg = {n: np.asarray(Image.open(io.BytesIO(requests.get(f"{server_url}/v1/videos/{video_id}/frames/{n}.jpg").content)))
            .astype(int) for n in (0, 7)}
    assert np.abs(shown - jpeg[7]).mean() < 2  # frame 7 as the server sends it (decoders differ by ±1)
    assert np.abs(shown - frame_and_masks(7, W, H)[0].astype(int)).mean() < 8
    assert np.abs(shown - jpeg[0]).mean() > 4 * np.abs(shown - jpeg[7]).mean()  # and not frame 0

    # frame 0: a positive point on object 1 (a stray right click undone)
    page.fill("#frame-number", "0")
    page.dispatch_event("#frame-number", "change")
    show(page, 0)
    cx, cy = object_centre(frame_and_masks(0, W, H)[1], 1)
    page.mouse.click(*image_xy(page, cx, cy))
    page.mouse.click(*image_xy(page, 10, 10), button="right")
    assert page.locator("#prompts li").count() == 2
    assert page.locator("#prompts li .prompt-text").nth(1).text_content() == "frame 0 · object 1 · point −"
    page.click("#undo")
    assert page.locator("#prompts li").count() == 1
    # a new object, boxed on frame 5
    page.click("#new-object")
    assert page.input_value("#object") == "2"
    page.locator("#frame").fill("5")
    show(page, 5)
    x0, y0, x1, y1 = object_box(frame_and_masks(5, W, H)[1], 2)
    drag(page, (x0, y0), (x1, y1))
    items = page.eval_on_selector_all("#prompts li .prompt-text", "els => els.map(e => e.textContent)")
    assert items == ["frame 0 · object 1 · point +", "frame 5 · object 2 · box"]
    # the current frame's prompts are drawn on the marks canvas, in object 2's colour
    marks = canvas_rgba(page, "marks")
    r, g, b, a = (marks[..., i].astype(int) for i in range(4))
    greenish = (a > 0) & (g - r > 40) & (g - b > 40)  # (0, 128, 0) dashes, antialiased over white
    ys, xs = np.nonzero(greenish)
    assert len(xs) > 20 and xs.min() >= x0 - 2 and xs.max() <= x1 + 2 and ys.min() >= y0 - 2 and ys.max() <= y1 + 2
    assert not greenish[int(y0) + 3:int(y1) - 3, int(x0) + 3:int(x1) - 3].any()  # the outline only

    with page.expect_request(lambda r: r.url.endswith(f"/v1/videos/{video_id}/track")) as req:
        page.click("#track")
    sent = json.loads(req.value.post_data)
    p1, p2 = sent["prompts"]
    assert (p1["frame"], p1["object"], p1["labels"], "box" in p1) == (0, 1, [1], False)
    assert abs(p1["points"][0][0] - cx) <= 0.5 and abs(p1["points"][0][1] - cy) <= 0.5
    assert (p2["frame"], p2["object"], "points" in p2) == (5, 2, False)
    assert np.abs(np.array(p2["box"]) - [x0, y0, x1, y1]).max() <= 0.5
    wait_tracked(page, 5)
    job_id = page.evaluate("vfm.video.state.job.job_id")
    assert page.evaluate("[document.getElementById('track-progress').value, document.getElementById('track-progress').max]") == [N, N]
    status = page.text_content("#status")
    assert status.startswith("tracked 2 objects over 10 frames"), status
    polls = [u for m, u in seen if m == "GET" and u.endswith(f"/v1/jobs/{job_id}")]
    assert len(polls) >= 1

    # the same prompts sent straight to the API track the same masks
    direct = requests.post(f"{server_url}/v1/videos/{video_id}/track", json=sent)
    assert direct.status_code == 202
    direct = wait_job(server_url, direct.json()["job_id"])
    assert direct["status"] == "done"
    page_job = requests.get(f"{server_url}/v1/jobs/{job_id}").json()
    assert page_job["results"]["objects"] == direct["results"]["objects"] == [1, 2]
    page_lines = requests.get(server_url + page_job["results"]["files"]["tracks.jsonl"]).text.splitlines()
    assert page_lines == requests.get(server_url + direct["results"]["files"]["tracks.jsonl"]).text.splitlines()
    assert [json.loads(line)["frame"] for line in page_lines] == list(range(N))

    # the mask painted on the overlay canvas is the server's PNG, pixel for pixel, on several frames
    for n in (5, 8, 2):
        page.locator("#frame").fill(str(n))
        page.wait_for_function(f"vfm.video.state.maskFrame === {n} && vfm.video.state.shown === {n}")
        truth = server_png(server_url, f"/v1/jobs/{job_id}/masks/{n}.png")
        assert truth.shape == (H, W)
        want = {1, 2} if n >= 5 else {1}
        assert set(np.unique(truth)) - {0} == want  # object 2 exists from its prompt on
        np.testing.assert_array_equal(painted_ids(canvas_rgba(page, "overlay"), [1, 2]), truth)
        assert page.evaluate("Array.from(vfm.video.state.maskIds).join(',')") == ",".join(map(str, truth.reshape(-1)))

    # the screenshot for the docs: both objects tracked on frame 8, the prompts listed
    page.locator("#frame").fill("8")
    page.wait_for_function("vfm.video.state.maskFrame === 8 && vfm.video.state.shown === 8")
    shot = tmp_path / "screenshot-video.png"
    page.screenshot(path=str(shot))
    if os.environ.get("VFM_SCREENSHOT") == "1" or not SCREENSHOT.exists():
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)

    # Play: the overlay video (fetched with the page's headers into a blob) loads and plays
    page.click("#play")
    page.wait_for_function("(() => { const v = document.getElementById('player');"
                           " return !v.hidden && v.readyState >= 2 && v.duration > 0 && v.currentTime > 0; })()",
                           timeout=20_000)
    player = page.evaluate("(() => { const v = document.getElementById('player'); return {src: v.src,"
                           " duration: v.duration, w: v.videoWidth, h: v.videoHeight, error: v.error}; })()")
    assert player["src"].startswith("blob:") and player["error"] is None
    assert abs(player["duration"] - N / 10) < 0.25 and (player["w"], player["h"]) == (W, H)
    assert not page.is_visible("#canvases") and page.text_content("#play") == "Frames"
    page.click("#play")  # back to the frames
    assert page.is_visible("#canvases") and not page.is_visible("#player")

    # exports, handed to the browser as downloads
    def download(name: str) -> Path:
        with page.expect_download() as dl:
            page.click(f"#exports button[data-file='{name}']")
        assert dl.value.suggested_filename == f"clip.{name}"
        out = tmp_path / name
        dl.value.save_as(out)
        return out

    lines = download("tracks.jsonl").read_text().splitlines()
    assert lines == page_lines and len(lines) == N
    assert {o["id"] for o in json.loads(lines[8])["objects"]} == {1, 2}
    with zipfile.ZipFile(download("masks.zip")) as z:
        names = sorted(z.namelist())
        assert names == [f"masks/{i:05d}.png" for i in range(N)]
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(z.read("masks/00008.png")))),
                                      server_png(server_url, f"/v1/jobs/{job_id}/masks/8.png"))
    mot = download("mot.txt").read_text().splitlines()
    assert mot and all(len(line.split(",")) == 10 for line in mot)
    assert json.loads(download("ytvis.json").read_text())["videos"][0]["length"] == N
    assert page.errors == []


def test_cancel_a_long_job(page, server_url, long_clip):
    open_video(page, server_url, long_clip)
    page.mouse.click(*image_xy(page, 30, 30, 96, 64))
    page.click("#track")
    page.wait_for_function("vfm.video.state.job && vfm.video.state.job.status === 'running'"
                           " && vfm.video.state.job.progress.done >= 2")
    assert page.is_enabled("#cancel") and not page.is_enabled("#track")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('tracking: ')")
    assert page.evaluate("document.getElementById('track-progress').max") == 400
    with page.expect_request(lambda r: r.method == "DELETE") as req:
        page.click("#cancel")
    job_id = page.evaluate("vfm.video.state.job.job_id")
    assert req.value.url.endswith(f"/v1/jobs/{job_id}")
    page.wait_for_function("vfm.video.state.job.status === 'cancelled'")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('tracking cancelled after')")
    assert wait_job(server_url, job_id)["status"] == "cancelled"
    assert page.is_enabled("#track") and not page.is_enabled("#cancel") and not page.is_enabled("#play")
    assert not page.is_enabled("#exports button[data-file='tracks.jsonl']")
    assert page.evaluate("vfm.video.state.results") is None
    assert page.errors == []


def test_errors_drop_and_back_to_image_mode(page, server_url, clip, tmp_path):
    page.goto(server_url + "/")
    # a file that is no video: one line in the footer, in red; the page stays as it was
    notes = tmp_path / "notes.mp4"
    notes.write_text("these are my notes,\nnot a video\n")
    page.set_input_files("#video-file", str(notes))
    page.wait_for_function("document.getElementById('status').classList.contains('error')")
    text = page.text_content("#status")
    assert text.startswith("video upload failed: ") and "not a video" in text and "\n" not in text
    assert page.evaluate("vfm.video.active") is False and not page.is_visible("#video-bar")

    # dropping a video opens it too; Track with no prompts says what to do
    page.evaluate("""(b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'dropped.mp4', {type: 'video/mp4'}));
        document.getElementById('stage').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""", base64.b64encode(clip.read_bytes()).decode())
    show(page, 0)
    assert page.evaluate("vfm.video.state.fileName") == "dropped.mp4"
    page.click("#track")
    assert page.evaluate("document.getElementById('status').classList.contains('error')")
    assert page.text_content("#status").startswith("click on an object first")

    # a 4xx from the track request (a negative point alone prompts nothing) is shown on one line
    page.check("#negative")
    page.mouse.click(*image_xy(page, 20, 20))
    page.uncheck("#negative")
    assert page.locator("#prompts li .prompt-text").text_content() == "frame 0 · object 1 · point −"
    with page.expect_response(lambda r: r.url.endswith("/track")) as resp:
        page.click("#track")
    assert resp.value.status == 422
    page.wait_for_function("document.getElementById('status').textContent.startsWith('track failed: ')")
    assert page.evaluate("document.getElementById('status').classList.contains('error')")
    text = page.text_content("#status")
    assert "only negative clicks" in text and "\n" not in text
    assert page.is_enabled("#track") and page.evaluate("vfm.video.state.job") is None
    # a second box for the same object and frame replaces the first; Undo brings the first back
    drag(page, (10, 10), (60, 50))
    drag(page, (70, 40), (120, 100))
    boxes = page.evaluate("vfm.video.state.prompts.filter(p => p.kind === 'box').map(p => p.box)")
    assert len(boxes) == 1 and np.abs(np.array(boxes[0]) - [70, 40, 120, 100]).max() <= 0.5
    assert page.locator("#prompts li").count() == 2
    page.keyboard.press("Control+z")
    boxes = page.evaluate("vfm.video.state.prompts.filter(p => p.kind === 'box').map(p => p.box)")
    assert len(boxes) == 1 and np.abs(np.array(boxes[0]) - [10, 10, 60, 50]).max() <= 0.5
    # × removes one prompt; Esc clears them all (not the image mode's prompt)
    page.locator("#prompts li .prompt-remove").first.click()
    assert page.locator("#prompts li .prompt-text").all_text_contents() == ["frame 0 · object 1 · box"]
    page.keyboard.press("Escape")
    assert page.locator("#prompts li").count() == 0

    # an image opened afterwards is segmented as usual, the video bar gone
    path = tmp_path / "scene.png"
    scene().save(path)
    page.set_input_files("#file", str(path))
    page.wait_for_function("window.vfm.state.image !== null")
    assert not page.is_visible("#video-bar") and page.is_visible("#image-side")
    assert page.evaluate("[document.getElementById('image').width, vfm.video.active]") == [480, False]
    box = page.locator("#marks").bounding_box()
    page.mouse.click(box["x"] + 200 * box["width"] / 480, box["y"] + 210 * box["height"] / 320)
    page.wait_for_function("window.vfm.state.requests >= 1 && window.vfm.state.current !== null")
    assert page.evaluate("vfm.state.current.area") > 0
    assert page.errors == []


def test_api_key_is_sent_by_the_video_mode(browser, tiny_sam2_video_dir, clip, tmp_path):
    app = create_app(ServerConfig(tracker=str(tiny_sam2_video_dir), device="cpu", precision="fp32", api_key="k3y",
                                  video_dir=str(tmp_path / "videos")))
    with serve_in_thread(app) as url:
        ctx = browser.new_context()
        page = ctx.new_page()
        page.goto(url + "/")
        page.set_input_files("#video-file", str(clip))
        page.wait_for_function("document.getElementById('status').classList.contains('error')")
        assert "API key" in page.text_content("#status")
        page.fill("#apikey", "k3y")
        page.dispatch_event("#apikey", "change")
        page.set_input_files("#video-file", str(clip))  # the same file again: the input was reset
        show(page, 0)
        cx, cy = object_centre(frame_and_masks(0, W, H)[1], 1)
        page.mouse.click(*image_xy(page, cx, cy))
        page.click("#track")
        wait_tracked(page, 0)
        job_id = page.evaluate("vfm.video.state.job.job_id")
        r = requests.get(f"{url}/v1/jobs/{job_id}/masks/0.png", headers={"Authorization": "Bearer k3y"})
        truth = np.asarray(Image.open(io.BytesIO(r.content)))
        assert truth.any()
        np.testing.assert_array_equal(painted_ids(canvas_rgba(page, "overlay"), [1]), truth)
        with page.expect_download() as dl:
            page.click("#exports button[data-file='tracks.jsonl']")
        dl.value.save_as(tmp_path / "t.jsonl")
        assert len((tmp_path / "t.jsonl").read_text().splitlines()) == N
        ctx.close()
