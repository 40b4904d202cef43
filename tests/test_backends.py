"""Image-encoder backends (issue #21): ONNX Runtime and OpenVINO, fp32 and int8, against the torch
path on the same weights; the export cache; ``auto``; the prompt decoder served as ONNX equals the
server's decode when run in onnxruntime on the same embedding and prompt."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import requests

from vfm.errors import PromptError
from vfm.tasks.prompts import Prompt
from vfm.tasks.segment import Segmenter

from conftest import make_image, mask_iou

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")
pytest.importorskip("onnx")

#: Fidelity each variant must keep against the fp32 torch path (mean mask IoU of 48 masks); the
#: measured values on SAM ViT-B sized weights are in bench/RESULTS.md and docs/backends.md.
FLOORS = {("onnxruntime", "fp32"): 0.99, ("openvino", "fp32"): 0.99, ("onnxruntime", "int8"): 0.95,
          ("openvino", "int8"): 0.95}


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory, monkeypatch):
    d = tmp_path_factory.getbasetemp() / "vfm-backend-cache"
    monkeypatch.setenv("VFM_CACHE_DIR", str(d))
    return d


def grid_prompts(h, w):
    return [Prompt(points=[(w * (i + 0.5) / 4, h * (j + 0.5) / 4)]) for i in range(4) for j in range(4)]


def fidelity(ref: Segmenter, other: Segmenter, image) -> tuple[float, float]:
    _, a = ref.embed(image)
    _, b = other.embed(image)
    x, y = a.tensors["image_embeddings"].flatten(), b.tensors["image_embeddings"].flatten()
    cosine = float(x @ y / (x.norm() * y.norm()))
    prompts = grid_prompts(*image.shape[:2])
    ma = ref.predict_batch(prompts, multimask=True, image=image).masks
    mb = other.predict_batch(prompts, multimask=True, image=image).masks
    assert len(ma) == 48
    return cosine, float(np.mean([mask_iou(p, q) for p, q in zip(ma, mb)]))


@pytest.mark.parametrize("backend, precision", list(FLOORS))
def test_backend_masks_match_torch_on_tiny_weights(tiny_sam_dir, backend, precision):
    image = make_image(120, 200, seed=4)
    ref = Segmenter.load(str(tiny_sam_dir), device="cpu", precision="fp32")
    other = Segmenter.load(str(tiny_sam_dir), device="cpu", precision=precision, backend=backend)
    assert other.model.backend == backend
    assert type(other.model.external_encoder).__name__ == {"onnxruntime": "OrtEncoder", "openvino": "OvEncoder"}[backend]
    cosine, iou = fidelity(ref, other, image)
    assert iou >= FLOORS[(backend, precision)], iou
    if precision == "fp32":
        assert cosine > 0.99999


@pytest.mark.slow
def test_backend_masks_match_torch_on_vit_b_sized_weights(tmp_path_factory):
    """SAM ViT-B's sizes (1024 input, 12 layers, 768 wide), random weights (std 0.02): the export and
    the engines at full size, as bench/encoder.py measures them."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
    from _common import vit_b_checkpoint

    ckpt = vit_b_checkpoint(str(tmp_path_factory.mktemp("vit-b")))
    image = make_image(480, 640, seed=5)
    ref = Segmenter.load(str(ckpt), device="cpu", precision="fp32")
    for (backend, precision), floor in FLOORS.items():
        other = Segmenter.load(str(ckpt), device="cpu", precision=precision, backend=backend)
        cosine, iou = fidelity(ref, other, image)
        assert iou >= floor, (backend, precision, iou)
        if precision == "fp32":
            assert cosine > 0.99999, (backend, cosine)


def test_export_is_cached_and_rebuilt_when_the_weights_change(tiny_sam_dir, tmp_path, cache_dir):
    import torch
    from transformers import SamModel

    Segmenter.load(str(tiny_sam_dir), device="cpu", backend="onnxruntime")
    exports = sorted((cache_dir / "exports").glob("*/encoder.onnx"))
    assert exports
    stamp = {p: p.stat().st_mtime_ns for p in exports}
    Segmenter.load(str(tiny_sam_dir), device="cpu", backend="onnxruntime")  # cached: nothing rewritten
    assert {p: p.stat().st_mtime_ns for p in sorted((cache_dir / "exports").glob("*/encoder.onnx"))} == stamp
    changed = SamModel.from_pretrained(str(tiny_sam_dir))
    with torch.no_grad():
        changed.vision_encoder.neck.conv1.weight.mul_(1.5)
    changed.save_pretrained(tmp_path / "changed")
    seg = Segmenter.load(str(tmp_path / "changed"), device="cpu", backend="onnxruntime")
    after = sorted((cache_dir / "exports").glob("*/encoder.onnx"))
    assert len(after) == len(exports) + 1  # a new export for the new weights
    ref = Segmenter.load(str(tmp_path / "changed"), device="cpu", precision="fp32")
    assert fidelity(ref, seg, make_image(64, 96))[1] >= 0.99  # and it is the new weights' encoder


def test_auto_measures_once_and_keeps_the_fastest(tiny_sam_dir, cache_dir, capfd):
    seg = Segmenter.load(str(tiny_sam_dir), device="cpu", backend="auto")
    err = capfd.readouterr().err
    assert "backend auto on this CPU: torch" in err and "onnxruntime" in err and "openvino" in err
    records = list((cache_dir / "exports").glob("*/auto.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    (entry,) = record.values()
    assert entry["choice"] == min(entry["seconds"], key=entry["seconds"].get) == seg.model.backend
    Segmenter.load(str(tiny_sam_dir), device="cpu", backend="auto")
    assert "backend auto on this CPU" not in capfd.readouterr().err  # the measurement is reused


def test_backend_errors(tiny_sam_dir, tiny_sam2_dir):
    with pytest.raises(PromptError, match="int8 needs --backend onnxruntime or openvino"):
        Segmenter.load(str(tiny_sam_dir), device="cpu", precision="int8")
    with pytest.raises(PromptError, match="unknown backend 'tensorrt'"):
        Segmenter.load(str(tiny_sam_dir), device="cpu", backend="tensorrt")
    with pytest.raises(PromptError, match="runs SAM / SlimSAM image encoders"):
        Segmenter.load(str(tiny_sam2_dir), device="cpu", backend="openvino")


def run_vfm(*args):
    return subprocess.run([sys.executable, "-m", "vfm.cli", *map(str, args)], capture_output=True, text=True, timeout=300,
                          env={**os.environ})


def test_cli_backend_and_int8(tiny_sam_dir, image_path, image_array):
    got = run_vfm("segment", image_path, "--model", tiny_sam_dir, "--point", "60,40", "--json", "--backend", "openvino",
                  "--precision", "fp32")
    assert got.returncode == 0, got.stderr
    doc = json.loads(got.stdout)
    ref = Segmenter.load(str(tiny_sam_dir), device="cpu", precision="fp32").predict(points=[(60, 40)], image=image_array)
    from pycocotools import mask as mask_utils

    seg = doc["annotations"][0]["segmentation"]
    assert mask_iou(mask_utils.decode({"size": seg["size"], "counts": seg["counts"].encode()}).astype(bool), ref.masks[0]) >= 0.99
    bad = run_vfm("segment", image_path, "--model", tiny_sam_dir, "--point", "60,40", "--precision", "int8")
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1 and "int8 needs --backend" in bad.stderr


# ------------------------------------------------------------------ the decoder the page runs
def test_served_decoder_in_onnxruntime_equals_the_servers_decode(tiny_sam_dir):
    from pycocotools import mask as mask_utils

    from vfm.server import ServerConfig, create_app
    from vfm.server.testing import serve_in_thread
    from test_server_api import png_bytes

    app = create_app(ServerConfig(segmenter=str(tiny_sam_dir), device="cpu", precision="fp32"))
    with serve_in_thread(app) as url:
        for h, w in ((120, 200), (301, 157)):
            pixels = make_image(h, w, seed=h)
            image_id = requests.post(f"{url}/v1/images", files={"file": ("a.png", png_bytes(pixels), "image/png")}).json()["image_id"]
            r = requests.get(f"{url}/v1/models/segmenter/decoder.onnx")
            assert r.status_code == 200 and r.headers["cache-control"].startswith("public, max-age=")
            assert requests.get(f"{url}/v1/models/segmenter/decoder.onnx",
                                headers={"If-None-Match": r.headers["etag"]}).status_code == 304
            session = ort.InferenceSession(r.content, providers=["CPUExecutionProvider"])
            e = requests.get(f"{url}/v1/images/{image_id}/embedding?dtype=fp32")
            shape = [int(v) for v in e.headers["x-embedding-shape"].split(",")]
            ih, iw = (int(v) for v in e.headers["x-input-size"].split(","))
            assert [int(v) for v in e.headers["x-original-size"].split(",")] == [h, w]
            emb = np.frombuffer(e.content, "<f4").reshape(shape)
            half = requests.get(f"{url}/v1/images/{image_id}/embedding").content
            assert np.abs(np.frombuffer(half, "<f2").reshape(shape).astype(np.float32) - emb).max() < 1e-2  # fp16 by default
            low_side = shape[2] * 4
            previous = None
            for points in ([[w * 0.3, h * 0.4, 1]], [[w * 0.3, h * 0.4, 1], [w * 0.8, h * 0.2, 0], [w * 0.5, h * 0.9, 1]]):
                body = {"points": [p[:2] for p in points], "labels": [p[2] for p in points], "multimask": False}
                if previous is not None:
                    body["mask_input"] = previous["mask_input_id"]
                ann = requests.post(f"{url}/v1/images/{image_id}/segment", json=body).json()["annotations"][0]
                want = mask_utils.decode({"size": ann["segmentation"]["size"], "counts": ann["segmentation"]["counts"].encode()})
                feeds = {"image_embeddings": emb, "point_coords": np.array([[[p[0] * iw / w, p[1] * ih / h] for p in points]], np.float32),
                         "point_labels": np.array([[p[2] for p in points]], np.float32),
                         "mask_input": np.zeros((1, 1, low_side, low_side), np.float32) if previous is None else previous["low"],
                         "has_mask_input": np.array([0.0 if previous is None else 1.0], np.float32),
                         "input_size": np.array([ih, iw], np.int64), "orig_size": np.array([h, w], np.int64)}
                masks, iou_pred, low = session.run(None, feeds)
                got = masks[0, 0] > 0
                assert got.shape == (h, w)
                assert mask_iou(got, want.astype(bool)) == 1.0
                assert float(iou_pred[0, 0]) == pytest.approx(ann["score"], abs=1e-4)
                previous = {"mask_input_id": ann["mask_input_id"], "low": low}
        assert requests.get(f"{url}/v1/models/other/decoder.onnx").status_code == 404
        assert requests.get(f"{url}/v1/images/nope/embedding").status_code == 404
        assert requests.get(f"{url}/v1/images/{image_id}/embedding?dtype=int4").status_code == 422


def test_a_family_without_an_exported_decoder_is_501(tiny_sam2_dir):
    from vfm.server import ServerConfig, create_app
    from vfm.server.testing import serve_in_thread

    app = create_app(ServerConfig(segmenter=str(tiny_sam2_dir), device="cpu", precision="fp32"))
    with serve_in_thread(app) as url:
        r = requests.get(f"{url}/v1/models/segmenter/decoder.onnx")
        assert r.status_code == 501 and "no exported decoder" in r.json()["error"]
