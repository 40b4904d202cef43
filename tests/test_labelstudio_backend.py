"""vfm serve as Label Studio's ML backend (issue 14 item 1), over a real uvicorn server on loopback with
tiny offline models: the labeling config, interactive clicks and boxes → brush RLE / polygons equal to
what the segmenter computes, negative clicks, pre-annotation equal to the grounder, images from a
Label Studio host (a real HTTP server), a local root and data: URIs, and every bad request a 4xx.
The end-to-end run against a real Label Studio server is tests/test_labelstudio_server.py."""

from __future__ import annotations

import base64
import http.server
import io
import subprocess
import sys
import threading

import numpy as np
import pytest
import requests
from PIL import Image

from conftest import make_image
from vfm.formats.ls_brush import decode_brush
from vfm.labelstudio.config import LabelConfig, LabelConfigError
from vfm.server import ServerConfig, create_app
from vfm.server.testing import serve_in_thread

BRUSH_CONFIG = """<View>
  <Image name="image" value="$image" zoom="true"/>
  <BrushLabels name="brush" toName="image"><Label value="cat"/><Label value="dog"/></BrushLabels>
  <KeyPointLabels name="kp" toName="image" smart="true"><Label value="cat" smart="true"/><Label value="dog" smart="true"/></KeyPointLabels>
  <RectangleLabels name="rect" toName="image" smart="true"><Label value="cat"/><Label value="dog"/></RectangleLabels>
</View>"""

POLYGON_CONFIG = """<View>
  <Image name="img" value="$photo"/>
  <PolygonLabels name="poly" toName="img"><Label value="cat"/><Label value="dog"/></PolygonLabels>
  <RectangleLabels name="box" toName="img" smart="true"><Label value="cat"/><Label value="dog"/></RectangleLabels>
</View>"""

# Label Studio's Advanced SAM convention: keypoint aliases k / -k prompt the k-th brush label
ALIAS_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <BrushLabels name="brush" toName="image"><Label value="cat"/><Label value="dog"/></BrushLabels>
  <KeypointLabels name="kp" toName="image">
    <Label value="(+1)" alias="1"/><Label value="(-1)" alias="-1"/><Label value="(+2)" alias="2"/><Label value="(-2)" alias="-2"/>
  </KeypointLabels>
</View>"""

RECT_ONLY_CONFIG = """<View><Image name="image" value="$image"/>
  <RectangleLabels name="label" toName="image"><Label value="feline" predicted_values="cat, kitten"/><Label value="dog"/></RectangleLabels>
</View>"""

ZERO = {"box_threshold": 0.0, "text_threshold": 0.0}


def png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def data_uri(pixels: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png(pixels)).decode()


@pytest.fixture(scope="module")
def pixels():
    return make_image(160, 200, seed=3)  # Grounding DINO's tiny model wants >= 128 px


class Host(http.server.BaseHTTPRequestHandler):
    """A Label Studio stand-in that serves uploads only with ``Authorization: Token secret``."""

    files: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802 - http.server's API
        if self.headers.get("Authorization") != "Token secret":
            self.send_response(401)
            self.end_headers()
            return
        body = self.files.get(self.path)
        self.send_response(200 if body else 404)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def host(pixels):
    Host.files = {"/data/upload/1/photo.png": png(pixels), "/data/upload/1/broken.png": b"\x89PNG\r\n\x1a\nbroken"}
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Host)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


@pytest.fixture(scope="module")
def local_root(tmp_path_factory, pixels):
    root = tmp_path_factory.mktemp("ls-root")
    (root / "photos").mkdir()
    (root / "photos" / "a b.png").write_bytes(png(pixels))
    return root


@pytest.fixture(scope="module")
def server(tiny_sam_dir, gdino_dir, host, local_root):
    config = ServerConfig(segmenter=str(tiny_sam_dir), detector=str(gdino_dir), device="cpu", precision="fp32",
                          label_studio_url=host, label_studio_token="secret", label_studio_root=str(local_root))
    app = create_app(config)
    with serve_in_thread(app) as url:
        yield url, app


@pytest.fixture(scope="module")
def url(server):
    return server[0]


@pytest.fixture(scope="module")
def segmenter(server):
    return server[1].state.models.segmenter.get()


@pytest.fixture(scope="module")
def grounder(server):
    return server[1].state.models.grounder.get()


def keypoint(x, y, label, *, positive=True, from_name="kp", to_name="image"):
    return {"id": "k", "type": "keypointlabels", "from_name": from_name, "to_name": to_name, "is_positive": positive,
            "original_width": 200, "original_height": 160, "image_rotation": 0,
            "value": {"x": x, "y": y, "width": 0.6, "keypointlabels": [label]}}


def rectangle(x, y, w, h, label, *, from_name="rect", to_name="image", rotation=0):
    return {"id": "r", "type": "rectanglelabels", "from_name": from_name, "to_name": to_name,
            "original_width": 200, "original_height": 160, "image_rotation": 0,
            "value": {"x": x, "y": y, "width": w, "height": h, "rotation": rotation, "rectanglelabels": [label]}}


def predict(url, tasks, config=BRUSH_CONFIG, context=None, project="7.100"):
    return requests.post(f"{url}/predict", json={"tasks": tasks, "label_config": config, "project": project,
                                                 "params": {"login": None, "password": None, "context": context}},
                         timeout=60)


def reference_mask(segmenter, pixels, points=None, labels=None, box=None):
    from vfm.tasks.prompts import Prompt

    prompt = Prompt(points=points, labels=labels, box=box)
    one_click = box is None and points is not None and len(points) == 1
    res = segmenter.predict_batch([prompt], multimask=one_click, image=pixels, return_logits=False)
    best = int(np.argmax(res.scores))
    return res.mask(best), float(res.scores[best])


# ---------------------------------------------------------------------------------------------- config
def test_labeling_config_is_read_as_label_studio_does():
    cfg = LabelConfig.parse(ALIAS_CONFIG.replace("<Image", "<image"))
    assert cfg.images == {"image": "image"}
    assert [(c.kind, c.name, c.to_name) for c in cfg.controls] == [("brushlabels", "brush", "image"),
                                                                    ("keypointlabels", "kp", "image")]
    assert [lab.alias for lab in cfg.control("kp").labels] == ["1", "-1", "2", "-2"]
    rect = LabelConfig.parse(RECT_ONLY_CONFIG).preannotation_output()
    assert rect.ontology_entries() == ["cat: feline", "kitten: feline", "dog"]
    assert LabelConfig.parse(BRUSH_CONFIG).preannotation_output().name == "brush"
    assert LabelConfig.parse(POLYGON_CONFIG).mask_output("img", "dog").name == "poly"
    bad = {
        "<View><Text name='t' value='$text'/><Labels name='l' toName='t'/></View>": "no <Image",
        "<View><Image name='i' value='$image'/><Choices name='c' toName='i'/></View>": "no BrushLabels",
        "<View><Image name='i' value='image'/></View>": "value=\"$key\"",
        "<View><Image name='i'": "not valid XML",
        "<!DOCTYPE x [<!ENTITY a 'b'>]><View/>": "DOCTYPE",
        "": "no labeling config",
    }
    for xml, words in bad.items():
        with pytest.raises(LabelConfigError, match=words.replace("(", r"\(").replace("$", r"\$")):
            LabelConfig.parse(xml)
    with pytest.raises(LabelConfigError, match="lists"):
        LabelConfig.parse("<View><Image name='i' value='$image'/><BrushLabels name='b' toName='i'/></View>").preannotation_output()


# ---------------------------------------------------------------------------------------------- protocol
def test_health_setup_webhook(url):
    h = requests.get(f"{url}/health").json()
    assert h["status"] == "UP" and h["model_version"].startswith("vfm-")
    r = requests.post(f"{url}/setup", json={"project": "7.100", "schema": BRUSH_CONFIG, "hostname": "http://ls:8080",
                                            "access_token": "x", "extra_params": ZERO})
    assert r.status_code == 200 and r.json() == {"model_version": h["model_version"]}
    assert requests.post(f"{url}/webhook", json={"action": "ANNOTATION_CREATED", "annotation": {"id": 1}}).json() == \
        {"status": "ok", "action": "ANNOTATION_CREATED", "trained": False}
    for body, words in [({"schema": "<View/>"}, "no <Image"), ({"project": "1", "schema": BRUSH_CONFIG,
                                                               "extra_params": {"box_threshold": 3}}, "box_threshold"),
                        ({"project": "1", "schema": BRUSH_CONFIG, "extra_params": {"nms": 0.5}}, "unknown extra_params"),
                        ({"project": 5, "schema": BRUSH_CONFIG}, "project")]:
        r = requests.post(f"{url}/setup", json=body)
        assert r.status_code == 422 and words in r.json()["error"], r.json()
    r = requests.post(f"{url}/webhook", json={"project": {}})
    assert r.status_code == 422 and "action" in r.json()["error"]
    r = requests.post(f"{url}/predict", data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400


# ---------------------------------------------------------------------------------------------- interactive
def test_click_comes_back_as_the_segmenters_mask_in_brush_rle(url, pixels, segmenter):
    r = predict(url, [{"id": 1, "data": {"image": data_uri(pixels)}}], context={"result": [keypoint(40.0, 55.0, "dog")]})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert len(doc["results"]) == 1 and doc["model_version"] == doc["results"][0]["model_version"]
    (region,) = doc["results"][0]["result"]
    assert (region["from_name"], region["to_name"], region["type"]) == ("brush", "image", "brushlabels")
    assert region["value"]["brushlabels"] == ["dog"] and region["value"]["format"] == "rle"
    assert (region["original_width"], region["original_height"]) == (200, 160)
    mask = decode_brush(region["value"]["rle"], 160, 200)
    ref, score = reference_mask(segmenter, pixels, points=[[80.0, 88.0]])
    assert mask.any() and np.array_equal(mask, ref)
    assert region["score"] == pytest.approx(score, abs=1e-6)


def test_negative_clicks_refine_by_flag_and_by_alias(url, pixels, segmenter):
    task = [{"id": 1, "data": {"image": data_uri(pixels)}}]
    ref, _ = reference_mask(segmenter, pixels, points=[[80.0, 88.0], [150.0, 40.0]], labels=[1, 0])
    r = predict(url, task, context={"result": [keypoint(40, 55, "cat"), keypoint(75, 25, "cat", positive=False)]})
    (region,) = r.json()["results"][0]["result"]
    assert region["value"]["brushlabels"] == ["cat"]
    assert np.array_equal(decode_brush(region["value"]["rle"], 160, 200), ref)
    # the same clicks through aliases: "(+2)" = a positive click for the 2nd brush label, "(-2)" a negative one
    r = predict(url, task, config=ALIAS_CONFIG, context={"result": [keypoint(40, 55, "(+2)"), keypoint(75, 25, "(-2)")]})
    (region,) = r.json()["results"][0]["result"]
    assert region["value"]["brushlabels"] == ["dog"]
    assert np.array_equal(decode_brush(region["value"]["rle"], 160, 200), ref)
    r = predict(url, task, config=ALIAS_CONFIG, context={"result": [keypoint(75, 25, "(-1)")]})
    assert r.status_code == 422 and "only negative" in r.json()["error"]


def test_box_comes_back_as_a_polygon_in_percent(url, pixels, segmenter):
    from vfm.formats.yolo import mask_polygon

    ctx = {"result": [rectangle(10, 20, 50, 40, "cat", from_name="box", to_name="img")]}
    r = predict(url, [{"id": 3, "data": {"photo": data_uri(pixels)}}], config=POLYGON_CONFIG, context=ctx)
    assert r.status_code == 200, r.text
    (region,) = r.json()["results"][0]["result"]
    assert (region["from_name"], region["to_name"], region["type"]) == ("poly", "img", "polygonlabels")
    ref, _ = reference_mask(segmenter, pixels, box=[20.0, 32.0, 120.0, 96.0])
    expected = mask_polygon(ref) * 100 / np.array([200, 160])
    assert np.allclose(region["value"]["points"], expected, atol=1e-9)
    assert region["value"]["polygonlabels"] == ["cat"]


@pytest.mark.parametrize("context, config, status, words", [
    ({"result": [keypoint(40, 55, "dog", from_name="nope")]}, BRUSH_CONFIG, 422, "from_name 'nope'"),
    ({"result": [keypoint(40, 55, "dog", to_name="other")]}, BRUSH_CONFIG, 422, "to_name 'other'"),
    ({"result": [keypoint(40, 55, "horse")]}, BRUSH_CONFIG, 422, "'horse' is not a label"),
    ({"result": [keypoint(140, 55, "dog")]}, BRUSH_CONFIG, 422, "outside the 200x160 image"),
    ({"result": [rectangle(10, 10, 20, 20, "dog", rotation=30)]}, BRUSH_CONFIG, 422, "rotated"),
    ({"result": [{"type": "brushlabels", "value": {}}]}, BRUSH_CONFIG, 422, "no KeyPointLabels"),
    ({"result": [keypoint(40, 55, "dog", from_name="brush")]}, BRUSH_CONFIG, 422, "brushlabels tag"),
    ({"result": [rectangle(10, 20, 50, 40, "cat")]},
     BRUSH_CONFIG.replace('<Label value="cat"/><Label value="dog"/></BrushLabels>', '<Label value="dog"/></BrushLabels>'),
     422, "has the label 'cat'"),
])
def test_bad_interactive_requests_are_4xx_with_the_reason(url, pixels, context, config, status, words):
    r = predict(url, [{"id": 1, "data": {"image": data_uri(pixels)}}], config=config, context=context)
    assert r.status_code == status and words in r.json()["error"], r.json()


# ---------------------------------------------------------------------------------------------- pre-annotation
def test_preannotation_is_text_to_masks_with_the_config_labels(url, pixels, grounder):
    assert requests.post(f"{url}/setup", json={"project": "8.1", "schema": BRUSH_CONFIG, "extra_params": ZERO}).ok
    other = make_image(160, 200, seed=9)
    r = predict(url, [{"id": 1, "data": {"image": data_uri(pixels)}}, {"id": 2, "data": {"image": data_uri(other)}}],
                project="8.1")
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 2
    for image, pred in zip((pixels, other), results):
        ref = grounder.ground(image, ["cat", "dog"], box_threshold=0.0, text_threshold=0.0)
        assert len(pred["result"]) == len(ref) > 0
        for i, region in enumerate(pred["result"]):
            assert region["type"] == "brushlabels" and region["value"]["brushlabels"] == [ref.class_names[i]]
            assert np.array_equal(decode_brush(region["value"]["rle"], 160, 200), ref.mask(i))
            assert region["score"] == pytest.approx(float(ref.scores[i]), abs=1e-6)
        assert pred["score"] == pytest.approx(np.mean([g["score"] for g in pred["result"]]), abs=1e-6)


def test_preannotation_of_a_rectangles_config_is_detector_boxes(url, pixels, grounder):
    assert requests.post(f"{url}/setup", json={"project": "9.1", "schema": RECT_ONLY_CONFIG, "extra_params": ZERO}).ok
    r = predict(url, [{"id": 1, "data": {"image": data_uri(pixels)}}], config=RECT_ONLY_CONFIG, project="9.1")
    regions = r.json()["results"][0]["result"]
    ref = grounder.detector.detect(pixels, ["cat: feline", "kitten: feline", "dog"], box_threshold=0.0, text_threshold=0.0)
    assert len(regions) == len(ref) > 0
    for region, box, name in zip(regions, ref.xyxy, ref.class_names):
        v = region["value"]
        assert region["type"] == "rectanglelabels" and v["rectanglelabels"] == [name] and name in ("feline", "dog")
        got = [v["x"] * 2, v["y"] * 1.6, (v["x"] + v["width"]) * 2, (v["y"] + v["height"]) * 1.6]
        assert np.allclose(got, box, atol=1e-6)


# ---------------------------------------------------------------------------------------------- images
def test_images_from_the_host_the_local_root_and_their_errors(url, pixels, segmenter):
    ref, _ = reference_mask(segmenter, pixels, points=[[80.0, 88.0]])
    ctx = {"result": [keypoint(40, 55, "dog")]}
    for ref_url in ("/data/upload/1/photo.png", "/data/local-files/?d=photos/a%20b.png"):
        r = predict(url, [{"id": 1, "data": {"image": ref_url}}], context=ctx)
        assert r.status_code == 200, r.text
        assert np.array_equal(decode_brush(r.json()["results"][0]["result"][0]["value"]["rle"], 160, 200), ref)
    bad = {
        "/data/upload/1/missing.png": "answered 404",
        "/data/upload/1/broken.png": "cannot be read",
        "/data/local-files/?d=../../etc/passwd": "outside --label-studio-root",
        "/data/local-files/?d=photos": "not a file",
        "/data/local-files/?x=1": "no ?d=PATH",
        "s3://bucket/a.png": "pre-signed URLs",
        "data:image/png;base64,@@@": "not valid base64",
        "http://127.0.0.1:9/a.png": "cannot fetch",
    }
    for ref_url, words in bad.items():
        r = predict(url, [{"id": 1, "data": {"image": ref_url}}], context=ctx)
        assert 400 <= r.status_code < 500 and words in r.json()["error"], (ref_url, r.json())
    r = predict(url, [{"id": 1, "data": {"picture": "x"}}], context=ctx)
    assert r.status_code == 422 and "no data field 'image'" in r.json()["error"]
    # in a batch, a broken task gets an empty prediction with its error; the others land
    assert requests.post(f"{url}/setup", json={"project": "10.1", "schema": BRUSH_CONFIG, "extra_params": ZERO}).ok
    r = predict(url, [{"id": 1, "data": {"image": "/data/upload/1/missing.png"}},
                      {"id": 2, "data": {"image": "/data/upload/1/photo.png"}}], project="10.1")
    first, second = r.json()["results"]
    assert r.status_code == 200 and first["result"] == [] and "task 1:" in first["error"] and "404" in first["error"]
    assert second["result"] and "error" not in second


def test_a_wrong_token_is_named(tiny_sam_dir, gdino_dir, host, pixels):
    app = create_app(ServerConfig(segmenter=str(tiny_sam_dir), detector=str(gdino_dir), device="cpu",
                                  precision="fp32", label_studio_url=host, label_studio_token="wrong"))
    with serve_in_thread(app) as url:
        r = predict(url, [{"id": 1, "data": {"image": "/data/upload/1/photo.png"}}],
                    context={"result": [keypoint(40, 55, "dog")]})
        assert r.status_code == 422 and "refused" in r.json()["error"] and "401" in r.json()["error"]
        # without flags, the host and token Label Studio sent to /setup are used
    app = create_app(ServerConfig(segmenter=str(tiny_sam_dir), detector=str(gdino_dir), device="cpu", precision="fp32"))
    with serve_in_thread(app) as url:
        assert requests.post(f"{url}/setup", json={"project": "3.3", "schema": BRUSH_CONFIG, "hostname": host,
                                                   "access_token": "secret"}).ok
        r = predict(url, [{"id": 1, "data": {"image": "/data/upload/1/photo.png"}}], project="3.3",
                    context={"result": [keypoint(40, 55, "dog")]})
        assert r.status_code == 200 and r.json()["results"][0]["result"]
        r = predict(url, [{"id": 1, "data": {"image": "/data/upload/1/photo.png"}}], project="4.4",
                    context={"result": [keypoint(40, 55, "dog")]})
        assert r.status_code == 422 and "no Label Studio host" in r.json()["error"]


def test_api_key_accepts_label_studios_basic_auth(tiny_sam_dir):
    app = create_app(ServerConfig(segmenter=str(tiny_sam_dir), device="cpu", api_key="k3y"))
    with serve_in_thread(app) as url:
        assert requests.get(f"{url}/health").status_code == 401
        assert requests.get(f"{url}/health", auth=("anyone", "k3y")).status_code == 200
        assert requests.get(f"{url}/health", auth=("anyone", "nope")).status_code == 401
        assert requests.get(f"{url}/health", headers={"Authorization": "Bearer k3y"}).status_code == 200
        assert requests.post(f"{url}/webhook", json={"action": "X"}).status_code == 401
        assert requests.get(f"{url}/healthz").status_code == 200


@pytest.mark.parametrize("args, words", [
    (["--label-studio-url", "localhost:8080"], "--label-studio-url"),
    (["--label-studio-root", "/no/such/dir"], "--label-studio-root"),
])
def test_bad_label_studio_flags_are_one_line(args, words):
    r = subprocess.run([sys.executable, "-m", "vfm.cli", "serve", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and words in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
