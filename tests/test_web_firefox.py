"""The web page in headless Firefox (Debian's firefox-esr, over WebDriver BiDi) against a real server.

The same user path as the Chromium test, in Gecko: open an image through the file input, left
click → a mask drawn on the canvas (pixels checked against pycocotools), right click → a negative
point that refines with the previous logits (no new upload), a dragged box, a class name typed on
the keyboard, and the COCO export handed to the browser as a file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firefox_bidi import FIREFOX, Firefox
from test_web import scene
from vfm.server import ServerConfig, create_app
from vfm.server.testing import serve_in_thread

pytestmark = [
    pytest.mark.skipif(not Path(FIREFOX).exists(), reason="Debian's firefox-esr is not installed"),
    pytest.mark.slow,
]


@pytest.fixture(scope="module")
def firefox():
    pytest.importorskip("websockets")
    ff = Firefox()
    yield ff
    ff.close()


@pytest.fixture(scope="module")
def server_url(tiny_sam_dir):
    app = create_app(ServerConfig(segmenter=str(tiny_sam_dir), device="cpu", precision="fp32", browser_decoding=False))
    with serve_in_thread(app) as url:
        yield url


OVERLAY = """(() => {
    const c = document.getElementById('overlay');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0, first = null;
    for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0) { n++; if (!first) first = [d[i], d[i+1], d[i+2]]; }
    return {count: n, first: first};
})()"""

# count the page's API calls and keep what the export hands to the browser (instead of a download)
SPY = """(() => {
    window.__calls = [];
    const f = window.fetch;
    window.fetch = (url, opts) => { window.__calls.push([opts && opts.method || 'GET', String(url),
        opts && typeof opts.body === 'string' ? opts.body : null]); return f(url, opts); };
    window.__exports = [];
    const make = URL.createObjectURL;
    URL.createObjectURL = (b) => { window.__blob = b; return make(b); };
    HTMLAnchorElement.prototype.click = function () { window.__exports.push(this.download); };
    return true;
})()"""


def image_xy(ff: Firefox, x: float, y: float) -> tuple[float, float]:
    """Viewport position of image pixel (x, y) on the (scaled) canvas."""
    r = ff.rect("#marks")
    return r["x"] + x * r["width"] / 480, r["y"] + y * r["height"] / 320


def wait_requests(ff: Firefox, n: int) -> None:
    ff.wait_for(f"window.vfm.state.requests >= {n} && window.vfm.state.current !== null")


def test_click_refine_box_name_and_export_in_firefox(firefox, server_url, tmp_path):
    from pycocotools import mask as mask_utils

    ff = firefox
    assert int(ff.version.split(".")[0]) >= 115
    path = tmp_path / "scene.png"
    scene().save(path)
    ff.goto(server_url + "/")
    assert ff.js("document.title").startswith("vfm")
    assert ff.js(SPY)
    ff.set_files("#file", [str(path)])
    ff.wait_for("window.vfm.state.image !== null")

    # a left click → the mask is decoded from RLE and exactly its pixels are painted
    ff.click(*image_xy(ff, 200, 210))
    wait_requests(ff, 1)
    state = ff.js("({area: vfm.state.current.area, seg: vfm.state.current.segmentation, points: vfm.state.points})")
    (px, py, label), = state["points"]
    assert abs(px - 200) <= 1 and abs(py - 210) <= 1 and label == 1
    truth = mask_utils.decode({"size": state["seg"]["size"], "counts": state["seg"]["counts"].encode()})
    assert truth.shape == (320, 480) and state["area"] == int(truth.sum()) > 0
    overlay = ff.js(OVERLAY)
    assert overlay["count"] == int(truth.sum()) and overlay["first"] == [255, 215, 0]

    # a right click → a negative point, refined with the previous logits, no second upload
    ff.click(*image_xy(ff, 60, 60), button=2)
    wait_requests(ff, 2)
    assert [p[2] for p in ff.js("vfm.state.points")] == [1, 0]
    calls = ff.js("window.__calls")
    assert len([c for c in calls if c[0] == "POST" and c[1].endswith("/v1/images")]) == 1
    segments = [json.loads(c[2]) for c in calls if c[0] == "POST" and c[1].endswith("/segment")]
    assert len(segments) == 2 and segments[1]["labels"] == [1, 0] and isinstance(segments[1]["mask_input"], str)
    assert ff.js(OVERLAY)["count"] == ff.js("vfm.state.current.area")

    # name it on the keyboard and keep it
    ff.click_element("#class-name")
    ff.type("house", replace=True)
    ff.click_element("#accept")
    assert ff.js("Array.from(document.querySelectorAll('#masks li input')).map(i => i.value)") == ["house"]

    # drag a box → a new current mask from a box prompt
    x0, y0 = image_xy(ff, 320, 110)
    x1, y1 = image_xy(ff, 410, 270)
    ff.pointer([{"type": "pointerMove", "x": x0, "y": y0}, {"type": "pointerDown", "button": 0},
                {"type": "pointerMove", "x": (x0 + x1) / 2, "y": (y0 + y1) / 2, "duration": 50},
                {"type": "pointerMove", "x": x1, "y": y1, "duration": 50}, {"type": "pointerUp", "button": 0}])
    wait_requests(ff, 3)
    body = [json.loads(c[2]) for c in ff.js("window.__calls") if c[1].endswith("/segment")][-1]
    assert "points" not in body
    assert abs(body["box"][0] - 320) <= 2 and abs(body["box"][3] - 270) <= 2

    # export: the page hands a COCO file named after the image to the browser
    ff.click_element("#export")
    assert ff.js("window.__exports") == ["scene.coco.json"]
    coco = json.loads(ff.js("window.__blob.text()"))
    assert coco["images"] == [{"id": 1, "file_name": "scene.png", "width": 480, "height": 320}]
    names = {c["id"]: c["name"] for c in coco["categories"]}
    # the kept mask and the current one (named by what is still in the class box)
    assert [names[a["category_id"]] for a in coco["annotations"]] == ["house", "house"]
    for a in coco["annotations"]:
        m = mask_utils.decode({"size": a["segmentation"]["size"], "counts": a["segmentation"]["counts"].encode()})
        assert m.shape == (320, 480) and int(m.sum()) == a["area"]
    assert ff.errors() == []
