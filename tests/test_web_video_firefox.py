"""The web page's video mode in headless Firefox (Debian's firefox-esr, over WebDriver BiDi) against a
real server with a tiny random-weight SAM 2 video model.

The Chromium test's main path, in Gecko: open a video through the file input, scrub with the
buttons, a real click on an object, Track, the mask painted on the canvas equal to the server's
DAVIS PNG pixel for pixel, the overlay video playing, and the tracks.jsonl export.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from firefox_bidi import FIREFOX
from test_web_firefox import firefox  # noqa: F401 - the browser fixture
from test_web_video import H, N, W, painted_ids
from vfm.server import ServerConfig, create_app
from vfm.server.testing import serve_in_thread
from vfm.testing.synthetic_video import frame_and_masks, object_centre, write_video

pytest.importorskip("av")
pytestmark = [
    pytest.mark.skipif(not Path(FIREFOX).exists(), reason="Debian's firefox-esr is not installed"),
    pytest.mark.slow,
]

# what the exports hand to the browser (instead of a download): the file name and the blob
SPY = """(() => {
    window.__exports = [];
    const make = URL.createObjectURL;
    URL.createObjectURL = (b) => { window.__blob = b; return make(b); };
    HTMLAnchorElement.prototype.click = function () { window.__exports.push(this.download); };
    return true;
})()"""

CANVAS = """((id) => {
    const c = document.getElementById(id);
    return [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)];
})"""


@pytest.fixture(scope="module")
def server_url(tiny_sam2_video_dir, tmp_path_factory):
    app = create_app(ServerConfig(tracker=str(tiny_sam2_video_dir), device="cpu", precision="fp32",
                                  video_dir=str(tmp_path_factory.mktemp("videos"))))
    with serve_in_thread(app) as url:
        yield url


def canvas(ff: Firefox, name: str) -> np.ndarray:
    w, h, px = ff.js(f"{CANVAS}({json.dumps(name)})")
    return np.array(px, np.uint8).reshape(h, w, 4)


def image_xy(ff: Firefox, x: float, y: float) -> tuple[float, float]:
    r = ff.rect("#marks")
    return r["x"] + x * r["width"] / W, r["y"] + y * r["height"] / H


def test_video_click_track_mask_and_export_in_firefox(firefox, server_url, tmp_path):
    ff = firefox
    clip = write_video(tmp_path / "clip.mp4", N, W, H)
    ff.goto(server_url + "/")
    assert ff.js(SPY)
    ff.set_files("#video-file", [str(clip)])
    ff.wait_for("vfm.video.state.shown === 0")
    video_id = ff.js("vfm.video.state.video.video_id")

    # scrub with the buttons: the canvas shows the server's frame
    ff.click_element("#frame-next")
    ff.click_element("#frame-next")
    ff.wait_for("vfm.video.state.shown === 2")
    jpeg = np.asarray(Image.open(io.BytesIO(requests.get(f"{server_url}/v1/videos/{video_id}/frames/2.jpg").content)))
    assert np.abs(canvas(ff, "image")[..., :3].astype(int) - jpeg.astype(int)).mean() < 2
    ff.click_element("#frame-prev")
    ff.click_element("#frame-prev")
    ff.wait_for("vfm.video.state.shown === 0")

    # a real click on object 1 → a prompt at that image pixel
    cx, cy = object_centre(frame_and_masks(0, W, H)[1], 1)
    ff.click(*image_xy(ff, cx, cy))
    (prompt,) = ff.js("vfm.video.state.prompts")
    assert (prompt["frame"], prompt["object"], prompt["kind"], prompt["label"]) == (0, 1, "point", 1)
    assert abs(prompt["x"] - cx) <= 1 and abs(prompt["y"] - cy) <= 1
    ff.click_element("#track")
    ff.wait_for("vfm.video.state.job && ['done', 'failed', 'cancelled'].includes(vfm.video.state.job.status)", timeout=120)
    assert ff.js("vfm.video.state.job.status") == "done", ff.js("document.getElementById('status').textContent")
    job_id = ff.js("vfm.video.state.job.job_id")
    assert ff.js("vfm.video.state.sent") == {"prompts": [{"frame": 0, "object": 1, "points": [[prompt["x"], prompt["y"]]],
                                                         "labels": [1]}]}

    # frame 4's mask on the overlay canvas is the server's PNG, pixel for pixel
    ff.click_element("#frame-next")
    ff.wait_for("vfm.video.state.maskFrame === 1")
    ff.js("vfm.video.showFrame(4)")
    ff.wait_for("vfm.video.state.maskFrame === 4 && vfm.video.state.shown === 4")
    truth = np.asarray(Image.open(io.BytesIO(requests.get(f"{server_url}/v1/jobs/{job_id}/masks/4.png").content)))
    assert truth.shape == (H, W) and set(np.unique(truth)) == {0, 1}
    np.testing.assert_array_equal(painted_ids(canvas(ff, "overlay"), [1]), truth)

    # the overlay video plays in Gecko too
    ff.click_element("#play")
    ff.wait_for("(() => { const v = document.getElementById('player'); return !v.hidden && v.readyState >= 2"
                " && v.duration > 0 && v.currentTime > 0; })()", timeout=20)
    ff.click_element("#play")
    assert ff.js("document.getElementById('player').hidden") is True

    # tracks.jsonl export: handed to the browser as clip.tracks.jsonl, the server's file
    ff.click_element("#exports button[data-file='tracks.jsonl']")
    ff.wait_for("window.__exports.length === 1")
    assert ff.js("window.__exports") == ["clip.tracks.jsonl"]
    lines = ff.js("window.__blob.text()").splitlines()
    assert len(lines) == N and [json.loads(line)["frame"] for line in lines] == list(range(N))
    assert lines == requests.get(f"{server_url}/v1/jobs/{job_id}/files/tracks.jsonl").text.splitlines()
    assert ff.errors() == []
