"""The HTTP API over a real uvicorn server on loopback, with tiny offline models."""

from __future__ import annotations

import asyncio
import io
import json
import threading

import numpy as np
import pytest
import requests
from PIL import Image

from conftest import make_image
from vfm.server import ServerConfig, create_app
from vfm.server.testing import serve_in_thread


def png_bytes(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    from vfm.testing.tiny_clip import build_clip

    return build_clip(tmp_path_factory.mktemp("models") / "tiny-clip", seed=0)


@pytest.fixture(scope="module")
def config(tiny_sam_dir, gdino_dir, clip_dir):
    return ServerConfig(segmenter=str(tiny_sam_dir), detector=str(gdino_dir), classifier=str(clip_dir),
                        device="cpu", precision="fp32", max_upload_mb=0.5, max_pixels=400_000)


@pytest.fixture(scope="module")
def server(config):
    app = create_app(config)
    with serve_in_thread(app) as url:
        yield url, app


@pytest.fixture(scope="module")
def url(server):
    return server[0]


@pytest.fixture(scope="module")
def pixels():
    return make_image(160, 200, seed=3)  # grounding DINO's tiny model wants >= 128 px


@pytest.fixture(scope="module")
def image_id(url, pixels):
    r = requests.post(f"{url}/v1/images", files={"file": ("shapes.png", png_bytes(pixels), "image/png")})
    assert r.status_code == 200, r.text
    return r.json()["image_id"]


@pytest.fixture(scope="module")
def segmenter(tiny_sam_dir):
    """A separate Segmenter on the same checkpoint: the reference the server must agree with."""
    from vfm.tasks.segment import Segmenter

    return Segmenter.load(str(tiny_sam_dir), device="cpu", precision="fp32")


def without_handles(doc):
    doc = json.loads(json.dumps(doc))
    for ann in doc["annotations"]:
        ann.pop("mask_input_id", None)
    return doc


def reference_doc(segmenter, pixels, prompts, multimask=False):
    from vfm.formats.coco import instances_to_document

    res = segmenter.predict_batch(prompts, multimask=multimask, image=pixels, return_logits=False)
    return json.loads(json.dumps(instances_to_document(res)))


def post(url, path, body):
    return requests.post(f"{url}{path}", json=body)


# ---------------------------------------------------------------------------------------------- ops
def test_healthz_readyz_openapi_docs_page(url):
    assert requests.get(f"{url}/healthz").json() == {"status": "ok"}
    ready = requests.get(f"{url}/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert set(ready.json()["models"]) == {"segmenter", "detector", "classifier"}
    schema = requests.get(f"{url}/openapi.json").json()
    for path in ("/v1/images", "/v1/images/{image_id}/segment", "/v1/images/{image_id}/detect",
                 "/v1/images/{image_id}/ground", "/v1/images/{image_id}/classify", "/v1/images/{image_id}/tag",
                 "/v1/images/{image_id}/everything", "/healthz", "/readyz", "/metrics"):
        assert path in schema["paths"], path
    assert "multipart/form-data" in schema["paths"]["/v1/images"]["post"]["requestBody"]["content"]
    docs = requests.get(f"{url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    page = requests.get(f"{url}/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/static/app.js" in page.text
    assert requests.get(f"{url}/static/app.js").status_code == 200


def test_readyz_503_when_a_model_cannot_be_resolved(tmp_path):
    app = create_app(ServerConfig(segmenter=str(tmp_path / "missing"), device="cpu"))
    with serve_in_thread(app) as u:
        r = requests.get(f"{u}/readyz")
        assert r.status_code == 503
        assert r.json()["ready"] is False and "error" in r.json()["models"]["segmenter"]
        assert requests.get(f"{u}/healthz").status_code == 200
        # a request that needs the model: 503 with the reason, not a traceback
        files = {"file": ("a.png", png_bytes(make_image()), "image/png")}
        r = requests.post(f"{u}/v1/images", files=files)
        assert r.status_code == 503 and "segmenter cannot be loaded" in r.json()["error"]
        assert requests.get(f"{u}/metrics").json()["models"]["segmenter"]["loaded"] is False


def test_readyz_checks_that_alias_weights_are_reachable(tiny_sam_dir, monkeypatch):
    from vfm.models.registry import get_alias, is_cached

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    app = create_app(ServerConfig(segmenter=str(tiny_sam_dir), detector="grounding-dino-tiny", device="cpu"))
    with serve_in_thread(app) as u:
        r = requests.get(f"{u}/readyz")
        models = r.json()["models"]
        assert models["segmenter"]["loadable"] is True
        if not is_cached(get_alias("grounding-dino-tiny").hub_id):
            assert r.status_code == 503 and models["detector"]["loadable"] is False
            assert "cache" in models["detector"]["error"]


# ---------------------------------------------------------------------------------------------- upload
def test_upload_returns_id_and_size_and_same_pixels_same_id(url, pixels, image_id):
    r = requests.post(f"{url}/v1/images", files={"file": ("again.png", png_bytes(pixels), "image/png")})
    body = r.json()
    assert body["image_id"] == image_id and (body["width"], body["height"]) == (200, 160)
    assert body["embedded"] is True and body["file_name"] == "again.png"
    raw = requests.post(f"{url}/v1/images", data=png_bytes(pixels), headers={"Content-Type": "image/png"})
    assert raw.status_code == 200 and raw.json()["image_id"] == image_id
    info = requests.get(f"{url}/v1/images/{image_id}").json()
    assert (info["width"], info["height"]) == (200, 160)
    png = requests.get(f"{url}/v1/images/{image_id}/image.png")
    assert png.headers["content-type"] == "image/png"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png.content)).convert("RGB")), pixels)
    assert requests.get(f"{url}/v1/images/ffff/image.png").status_code == 404


def test_upload_errors(url):
    corrupt = requests.post(f"{url}/v1/images", files={"file": ("x.png", b"\x89PNG\r\n\x1a\nnot really", "image/png")})
    assert corrupt.status_code == 415 and "error" in corrupt.json()
    text = requests.post(f"{url}/v1/images", files={"file": ("x.txt", b"hello world", "text/plain")})
    assert text.status_code == 415
    empty = requests.post(f"{url}/v1/images", files={"file": ("x.png", b"", "image/png")})
    assert empty.status_code == 415
    no_field = requests.post(f"{url}/v1/images", files={"image": ("x.png", b"abc", "image/png")})
    assert no_field.status_code == 422 and "'file'" in no_field.json()["error"]
    # 0.5 MB limit: refused from Content-Length ...
    big = np.random.RandomState(0).randint(0, 255, (600, 600, 3), dtype=np.uint8)
    data = png_bytes(big)
    assert len(data) > 600_000
    r = requests.post(f"{url}/v1/images", files={"file": ("big.png", data, "image/png")})
    assert r.status_code == 413 and "limit" in r.json()["error"]

    # ... and by counting bytes when there is no Content-Length (chunked upload)
    def chunks():
        for i in range(0, len(data), 65536):
            yield data[i:i + 65536]

    r = requests.post(f"{url}/v1/images", data=chunks(), headers={"Content-Type": "image/png"})
    assert r.status_code == 413
    # more pixels than --max-pixels (400k) but a small file
    huge = np.zeros((700, 700, 3), np.uint8)
    r = requests.post(f"{url}/v1/images", files={"file": ("huge.png", png_bytes(huge), "image/png")})
    assert r.status_code == 413 and "pixels" in r.json()["error"]


# ---------------------------------------------------------------------------------------------- segment
def test_segment_matches_the_library_and_cli_document(url, image_id, pixels, segmenter):
    from vfm.tasks.prompts import Prompt

    body = {"points": [[60.5, 40.0], [120, 90]], "labels": [1, 0], "multimask": False}
    doc = post(url, f"/v1/images/{image_id}/segment", body).json()
    assert all(isinstance(a["mask_input_id"], str) for a in doc["annotations"])
    ref = reference_doc(segmenter, pixels, [Prompt(points=[[60.5, 40.0], [120, 90]], labels=[1, 0])])
    assert without_handles(doc) == ref
    assert doc["image"] == {"width": 200, "height": 160}
    from pycocotools import mask as mask_utils

    seg = doc["annotations"][0]["segmentation"]
    decoded = mask_utils.decode({"size": seg["size"], "counts": seg["counts"].encode()})
    assert decoded.shape == (160, 200) and int(decoded.sum()) == doc["annotations"][0]["area"]


def test_segment_box_boxes_and_multimask(url, image_id, pixels, segmenter):
    from vfm.tasks.prompts import Prompt

    doc = post(url, f"/v1/images/{image_id}/segment", {"box": [10, 20, 120, 150], "multimask": True}).json()
    assert len(doc["annotations"]) == 3
    assert without_handles(doc) == reference_doc(segmenter, pixels, [Prompt(box=[10, 20, 120, 150])], multimask=True)
    doc = post(url, f"/v1/images/{image_id}/segment",
               {"points": [[50, 50]], "box": [10, 20, 120, 150], "boxes": [[100, 10, 190, 100], [0, 0, 60, 60]]}).json()
    assert len(doc["annotations"]) == 3
    ref = reference_doc(segmenter, pixels, [Prompt(points=[[50, 50]], box=b) for b in
                                            ([10, 20, 120, 150], [100, 10, 190, 100], [0, 0, 60, 60])])
    assert without_handles(doc) == ref


def test_segment_refines_with_mask_input_id_and_rle(url, image_id, pixels, segmenter):
    from vfm.results.rle import decode_rle
    from vfm.tasks.prompts import Prompt

    first = post(url, f"/v1/images/{image_id}/segment", {"points": [[60, 40]]}).json()["annotations"][0]
    body = {"points": [[60, 40], [150, 120]], "labels": [1, 1], "mask_input": first["mask_input_id"]}
    refined = post(url, f"/v1/images/{image_id}/segment", body).json()
    seg_first = segmenter.predict(points=[[60, 40]], image=pixels)
    logits = seg_first.data["low_res_logits"][0]
    ref = reference_doc(segmenter, pixels, [Prompt(points=[[60, 40], [150, 120]], labels=[1, 1], mask_input=logits)])
    assert without_handles(refined) == ref
    # the same handle also works as {"mask_input_id": ...}
    alt = post(url, f"/v1/images/{image_id}/segment", {**body, "mask_input": None,
                                                         "mask_input_id": first["mask_input_id"]}).json()
    assert without_handles(alt) == ref
    # a COCO RLE of a previous mask (e.g. from an export) is accepted too
    rle_body = {"points": [[60, 40]], "mask_input": first["segmentation"]}
    from_rle = post(url, f"/v1/images/{image_id}/segment", rle_body).json()
    mask = decode_rle(first["segmentation"])
    assert without_handles(from_rle) == reference_doc(segmenter, pixels, [Prompt(points=[[60, 40]], mask_input=mask)])


@pytest.mark.parametrize("body, status, words", [
    ({"points": [[500, 40]]}, 422, "outside"),
    ({"points": [[10, -1]]}, 422, "outside"),
    ({"box": [10, 10, 5, 50]}, 422, "box"),
    ({"box": [10, 10, 50]}, 422, "4 numbers"),
    ({"points": [[10, "a"]]}, 422, "number"),
    ({"points": [[10, 10]], "labels": [1, 0]}, 422, "labels"),
    ({"points": [[10, 10]], "labels": [2]}, 422, "labels"),
    ({}, 422, "at least one"),
    ({"points": [[10, 10]], "mask_input": "no-such-handle"}, 422, "mask_input_id"),
    ({"points": [[10, 10]], "mask_input": {"size": [10, 10], "counts": "abc"}}, 422, "image is"),
    ({"points": [[10, 10]], "mask_input": [1, 2]}, 422, "RLE"),
    ({"points": [[10, 10]], "multimask": "yes"}, 422, "multimask"),
    ({"point": [[10, 10]]}, 422, "unknown field"),
])
def test_segment_bad_prompts_are_422(url, image_id, body, status, words):
    r = post(url, f"/v1/images/{image_id}/segment", body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]


def test_segment_bad_json_400_and_unknown_image_404(url, image_id):
    r = requests.post(f"{url}/v1/images/{image_id}/segment", data="{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]
    r = requests.post(f"{url}/v1/images/{image_id}/segment", json=[1, 2])
    assert r.status_code == 400 and "object" in r.json()["error"]
    r = requests.post(f"{url}/v1/images/{image_id}/segment", data="")
    assert r.status_code == 400
    bodies = {"segment": {"points": [[1, 1]]}, "detect": {"classes": "cat"}, "ground": {"classes": "cat"},
              "classify": {"labels": "cat"}, "tag": {}, "everything": {}}
    for path, body in bodies.items():
        r = post(url, f"/v1/images/0123abcd/{path}", body)
        assert r.status_code == 404 and "upload" in r.json()["error"], path
    r = post(url, f"/v1/images/{image_id}/detect", {"classes": "cat", "labels": "cat"})  # a field of another task
    assert r.status_code == 422 and "unknown field(s) ['labels']" in r.json()["error"]
    assert requests.get(f"{url}/v1/images/0123abcd").status_code == 404
    r = requests.get(f"{url}/no/such/route")
    assert r.status_code == 404 and "error" in r.json()


# ---------------------------------------------------------------------------------------------- tasks
def test_detect_and_ground_name_classes_by_the_class_side_of_a_mapping(url, image_id):
    body = {"classes": "cat: feline, dog", "box_threshold": 0.0, "text_threshold": 0.0}
    for task in ("detect", "ground"):
        doc = post(url, f"/v1/images/{image_id}/{task}", body).json()
        assert doc["categories"] == [{"id": 1, "name": "feline"}, {"id": 2, "name": "dog"}]
        assert doc["annotations"] and {a["category_name"] for a in doc["annotations"]} <= {"feline", "dog"}
    r = post(url, f"/v1/images/{image_id}/detect", {"classes": "cat:, dog"})
    assert r.status_code == 422 and "empty side" in r.json()["error"]


def test_detect_and_ground_match_the_library(url, image_id, pixels, gdino_dir, tiny_sam_dir, segmenter):
    from vfm.formats.coco import instances_to_document
    from vfm.tasks.detect import Detector
    from vfm.tasks.ground import Grounder

    det = Detector.load(str(gdino_dir), device="cpu", precision="fp32")
    body = {"classes": "cat, dog", "box_threshold": 0.0, "text_threshold": 0.0}
    doc = post(url, f"/v1/images/{image_id}/detect", body).json()
    ref = det.detect(pixels, ["cat", "dog"], box_threshold=0.0, text_threshold=0.0)
    assert doc == json.loads(json.dumps(instances_to_document(ref, categories=["cat", "dog"])))
    assert doc["categories"] == [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]
    assert len(doc["annotations"]) > 0
    gdoc = post(url, f"/v1/images/{image_id}/ground", {**body, "classes": ["cat", "dog"]}).json()
    gref = Grounder(det, segmenter).ground(pixels, ["cat", "dog"], box_threshold=0.0, text_threshold=0.0)
    assert gdoc == json.loads(json.dumps(instances_to_document(gref, categories=["cat", "dog"])))
    assert all("segmentation" in a for a in gdoc["annotations"])
    for path in ("detect", "ground"):
        r = post(url, f"/v1/images/{image_id}/{path}", {})
        assert r.status_code == 422 and "classes" in r.json()["error"]
        r = post(url, f"/v1/images/{image_id}/{path}", {"classes": "cat", "box_threshold": 2})
        assert r.status_code == 422


def test_classify_and_tag_match_the_library(url, image_id, pixels, clip_dir):
    from vfm.tasks.classify import Classifier
    from vfm.tasks.tag import Tagger

    clf = Classifier.load(str(clip_dir), device="cpu")
    doc = post(url, f"/v1/images/{image_id}/classify", {"labels": "cat, dog, car"}).json()
    ref = clf.classify(pixels, ["cat", "dog", "car"])
    assert doc["labels"] == ref.to_json()["labels"] and doc["activation"] == "softmax"
    assert abs(sum(x["score"] for x in doc["labels"]) - 1) < 1e-4
    top = post(url, f"/v1/images/{image_id}/classify", {"labels": ["cat", "dog", "car"], "top_k": 1}).json()
    assert top["labels"] == ref.to_json()["labels"][:1]
    tag = post(url, f"/v1/images/{image_id}/tag", {"threshold": 0.0, "top_k": 5}).json()
    tref = Tagger(clf).tag(pixels, threshold=0.0, top_k=5)
    assert tag["labels"] == tref.to_json()["labels"] and tag["threshold"] == 0.0
    assert requests.post(f"{url}/v1/images/{image_id}/tag").status_code == 200  # body optional
    assert post(url, f"/v1/images/{image_id}/classify", {"labels": 5}).status_code == 422
    assert post(url, f"/v1/images/{image_id}/classify", {"labels": "a", "top_k": 0}).status_code == 422
    assert post(url, f"/v1/images/{image_id}/tag", {"threshold": "high"}).status_code == 422


def test_everything(url, image_id, pixels, segmenter):
    try:
        import vfm.tasks.everything  # noqa: F401
    except ImportError:
        r = post(url, f"/v1/images/{image_id}/everything", {})
        assert r.status_code == 501 and "error" in r.json()
        return
    from vfm.formats.coco import instances_to_document
    from vfm.tasks.everything import MaskGenerator

    opts = {"points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
    r = post(url, f"/v1/images/{image_id}/everything", opts)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["image"] == {"width": 200, "height": 160}
    ref = MaskGenerator(segmenter, **opts).generate(pixels)
    assert doc == json.loads(json.dumps(instances_to_document(ref)))
    assert len(doc["annotations"]) > 0 and all("segmentation" in a for a in doc["annotations"])
    bad = post(url, f"/v1/images/{image_id}/everything", {"points_per_side": 0})
    assert bad.status_code == 422


# ---------------------------------------------------------------------------------------------- auth
def test_api_key(tiny_sam_dir, pixels):
    app = create_app(ServerConfig(segmenter=str(tiny_sam_dir), device="cpu", precision="fp32", api_key="s3cret"))
    with serve_in_thread(app) as u:
        files = {"file": ("a.png", png_bytes(pixels), "image/png")}
        r = requests.post(f"{u}/v1/images", files=files)
        assert r.status_code == 401 and "API key" in r.json()["error"]
        assert r.headers["www-authenticate"] == "Bearer"
        r = requests.post(f"{u}/v1/images", files=files, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401
        r = requests.post(f"{u}/v1/images", files=files, headers={"Authorization": "Basic s3cret"})
        assert r.status_code == 401
        ok = requests.post(f"{u}/v1/images", files=files, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        seg = requests.post(f"{u}/v1/images/{ok.json()['image_id']}/segment", json={"points": [[5, 5]]})
        assert seg.status_code == 401
        for open_path in ("/healthz", "/", "/static/app.js", "/openapi.json"):
            assert requests.get(f"{u}{open_path}").status_code == 200, open_path


# ---------------------------------------------------------------------------------------------- load
def test_concurrent_clicks_give_the_same_masks_as_sequential(url, image_id):
    rng = np.random.RandomState(0)
    bodies = [{"points": [[float(rng.randint(0, 200)), float(rng.randint(0, 160))]]} for _ in range(24)]
    sequential = [without_handles(post(url, f"/v1/images/{image_id}/segment", b).json()) for b in bodies]
    results: list = [None] * len(bodies)

    def worker(i):
        results[i] = without_handles(post(url, f"/v1/images/{image_id}/segment", bodies[i]).json())

    before = requests.get(f"{url}/metrics").json()["segment_batching"]
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == sequential
    # clicks that arrived while the segmenter was busy were decoded together, with the same answers
    after = requests.get(f"{url}/metrics").json()["segment_batching"]
    assert after["requests"] - before["requests"] == len(bodies)
    assert after["batches"] - before["batches"] < len(bodies)


def test_full_queue_is_503_not_unbounded():
    import time

    from vfm.server.models import BusyError, ModelHolder

    holder = ModelHolder("segmenter", "x", lambda: "model", concurrency=1, max_waiting=1)

    async def main():
        slow = lambda m: time.sleep(0.3) or m  # noqa: E731
        tasks = [asyncio.create_task(holder.run(slow)) for _ in range(3)]
        return await asyncio.gather(*tasks, return_exceptions=True)

    out = asyncio.run(main())
    assert out[0] == "model" and out[1] == "model"  # one running, one waiting
    assert isinstance(out[2], BusyError) and out[2].http_status == 503
    assert holder.rejected == 1


def test_metrics_count_requests_latency_and_cache(url, image_id):
    before = requests.get(f"{url}/metrics").json()
    route = "POST /v1/images/{image_id}/segment"
    n0 = before["routes"].get(route, {}).get("requests", 0)
    hits0 = before["cache"]["embedding_hits"]
    for _ in range(3):
        post(url, f"/v1/images/{image_id}/segment", {"points": [[20, 20]]})
    m = requests.get(f"{url}/metrics").json()
    assert m["routes"][route]["requests"] == n0 + 3
    assert set(m["routes"][route]["latency_ms"]) == {"p50", "p90", "p99"}
    assert m["cache"]["embedding_hits"] >= hits0 + 3 and m["cache"]["embeddings_cached"] >= 1
    assert m["cache"]["images"] >= 1 and m["models"]["segmenter"]["loaded"] is True
    text = requests.get(f"{url}/metrics", params={"format": "prometheus"}).text
    assert f'vfm_requests_total{{route="{route}",status="200"}}' in text
    assert "vfm_embedding_hits_total" in text and "vfm_embeddings_cached" in text


def test_model_calls_run_on_the_holders_own_thread():
    """Every call of a holder runs on its own worker thread(s): torch's OpenMP team stays warm."""
    import threading

    from vfm.server.config import ServerConfig
    from vfm.server.models import ModelHolder, Models, default_concurrency

    assert default_concurrency("cpu") == 1 and default_concurrency(None) in (1, 2)
    assert Models(ServerConfig(device="cpu")).segmenter._concurrency == 1
    assert Models(ServerConfig(device="cpu", concurrency=3)).segmenter._concurrency == 3
    holder = ModelHolder("segmenter", "x", lambda: "model", concurrency=1, max_waiting=8)

    async def main():
        first = await asyncio.gather(*[holder.run(lambda m: threading.get_ident()) for _ in range(6)])
        await asyncio.sleep(0.05)
        return first + [await holder.run(lambda m: threading.get_ident())]

    idents = asyncio.run(main())
    assert len(set(idents)) == 1 and idents[0] != threading.get_ident()


def test_batcher_runs_waiting_requests_together_and_isolates_failures():
    """Requests for one key that arrive while a call runs go as one batch; each gets its own result;
    a request that fails inside a batch fails alone; waiting is bounded (503)."""
    import time

    from vfm.server.batching import Batcher
    from vfm.server.models import BusyError, ModelHolder

    holder = ModelHolder("segmenter", "x", lambda: "model", concurrency=1, max_waiting=6)
    batcher = Batcher(holder, max_batch=4)
    calls: list[list] = []

    def fn(model, items):
        calls.append(list(items))
        time.sleep(0.2)
        if "bad" in items:
            raise ValueError("bad item")
        return [f"{model}:{i}" for i in items]

    async def main():
        first = asyncio.create_task(batcher.run("img", 0, fn))
        await asyncio.sleep(0.05)  # the first call is running: the next ones wait and batch
        other = asyncio.create_task(batcher.run("other image", 9, fn))  # its own key: goes at once
        await asyncio.sleep(0.01)
        rest = [asyncio.create_task(batcher.run("img", i, fn)) for i in (1, 2, "bad", 4, 5, 6)]
        await asyncio.sleep(0.01)  # six waiting: the limit
        try:
            await batcher.run("img", 7, fn)
        except BusyError as exc:
            busy = exc
        return await asyncio.gather(first, *rest, other, return_exceptions=True), busy

    out, busy = asyncio.run(main())
    assert out[0] == "model:0"
    assert out[1:3] == ["model:1", "model:2"] and isinstance(out[3], ValueError) and out[4:7] == ["model:4", "model:5", "model:6"]
    assert out[7] == "model:9"
    assert busy.http_status == 503
    assert calls[0] == [0] and [1, 2, "bad", 4] in calls and [5, 6] in calls and [9] in calls
    assert ["bad"] in calls and [1] in calls  # the failed batch was retried one by one
    assert batcher.waiting == 0


def test_batched_clicks_report_in_metrics(url, image_id):
    m = requests.get(f"{url}/metrics").json()["segment_batching"]
    assert set(m) == {"batches", "requests", "waiting"} and m["requests"] >= m["batches"] >= 1
