"""Clicks decoded in the browser, in Firefox (Debian's firefox-esr over WebDriver BiDi): onnxruntime-web's
WebAssembly build runs the served decoder, a click makes no request, and the mask is the server's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from firefox_bidi import FIREFOX
from test_web import scene
from test_web_decoder import iou, server_mask
from test_web_firefox import OVERLAY, SPY, firefox, image_xy, wait_requests  # noqa: F401 (fixture)
from vfm.server import ServerConfig, create_app
from vfm.server.testing import serve_in_thread

pytestmark = [
    pytest.mark.skipif(not Path(FIREFOX).exists(), reason="Debian's firefox-esr is not installed"),
    pytest.mark.slow,
]
pytest.importorskip("onnx")


def test_clicks_decode_in_firefox_with_no_request(firefox, tiny_sam_dir, tmp_path, monkeypatch):
    from pycocotools import mask as mask_utils

    monkeypatch.setenv("VFM_CACHE_DIR", str(tmp_path / "cache"))
    app = create_app(ServerConfig(segmenter=str(tiny_sam_dir), device="cpu", precision="fp32"))
    scene().save(tmp_path / "scene.png")
    ff = firefox
    with serve_in_thread(app) as url:
        ff.goto(url + "/")
        assert ff.js(SPY)
        ff.set_files("#file", [str(tmp_path / "scene.png")])
        ff.wait_for("window.vfm.state.image !== null")
        ff.wait_for("window.vfm.decoder.state.session !== null && window.vfm.decoder.state.embeddings.size === 1",
                    timeout=60)
        calls = len(ff.js("window.__calls"))
        ff.click(*image_xy(ff, 200, 210))
        wait_requests(ff, 1)
        ff.click(*image_xy(ff, 60, 60), button=2)
        wait_requests(ff, 2)
        assert len(ff.js("window.__calls")) == calls, ff.js("window.__calls")[calls:]
        cur = ff.js("({seg: vfm.state.current.segmentation, area: vfm.state.current.area, local: vfm.state.current.local,"
                    " points: vfm.state.points})")
        assert cur["local"] is True
        assert "decoded in the browser in" in ff.js("document.getElementById('status').textContent")
        image_id = ff.js("vfm.state.image.id")
        points = [[round(p[0], 2), round(p[1], 2), p[2]] for p in cur["points"]]
        _, ann = server_mask(url, image_id, points[:1])
        refined, _ = server_mask(url, image_id, points, mask_input=ann["mask_input_id"])
        drawn = mask_utils.decode({"size": cur["seg"]["size"], "counts": cur["seg"]["counts"].encode()})
        assert iou(drawn.astype(bool), refined.astype(bool)) >= 0.99
        assert ff.js(OVERLAY)["count"] == cur["area"] == int(drawn.sum())
        assert cur["seg"]["counts"] == mask_utils.encode(np.asfortranarray(drawn))["counts"].decode()
        assert ff.errors() == []
