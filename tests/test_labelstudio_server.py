"""A real Label Studio server (pip label-studio, on loopback, in its own virtual environment) with a real
`vfm serve` as its ML backend (issue 14): projects made through Label Studio's API, vfm connected with
"Connect model", predictions retrieved for imported tasks, interactive clicks and boxes asked for, and the
regions Label Studio stores decoded back to the masks vfm computes. Also `vfm label --format
labelstudio` imported with Label Studio's local files storage set up as printed (item 4).

Label Studio is found at $VFM_LABEL_STUDIO (its `label-studio` executable), on PATH, or in
.ci/lsvenv (made by .ci/run). Without it the test is skipped, unless VFM_REQUIRE_LABEL_STUDIO=1 (CI)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from conftest import make_image
from vfm.formats.ls_brush import decode_brush
from vfm.server.testing import free_port

pytestmark = pytest.mark.slow

LEGACY = "0123456789abcdef0123456789abcdef01234567"
BRUSH_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <BrushLabels name="brush" toName="image"><Label value="cat"/><Label value="dog"/></BrushLabels>
  <KeyPointLabels name="kp" toName="image" smart="true"><Label value="cat" smart="true"/><Label value="dog" smart="true"/></KeyPointLabels>
  <RectangleLabels name="rect" toName="image" smart="true"><Label value="cat" smart="true"/><Label value="dog" smart="true"/></RectangleLabels>
</View>"""


def label_studio_executable() -> str | None:
    candidates = [os.environ.get("VFM_LABEL_STUDIO"), shutil.which("label-studio"),
                  str(Path(__file__).resolve().parents[1] / ".ci" / "lsvenv" / "bin" / "label-studio")]
    return next((c for c in candidates if c and Path(c).is_file()), None)


def png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def wait_for(url: str, proc: subprocess.Popen, seconds: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{url} exited: {log.read_text()[-3000:] if log else ''}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not come up in {seconds:.0f} s: {log.read_text()[-3000:] if log else ''}")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Label Studio's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT, holding a folder to label."""
    root = tmp_path_factory.mktemp("ls-document-root")
    (root / "photos").mkdir()
    for i in range(2):
        Image.fromarray(make_image(160, 200, seed=20 + i)).save(root / "photos" / f"p{i}.png")
    return root


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory, root):
    exe = label_studio_executable()
    if exe is None:
        if os.environ.get("VFM_REQUIRE_LABEL_STUDIO") == "1":
            pytest.fail("Label Studio is not installed (VFM_REQUIRE_LABEL_STUDIO=1): run .ci/run or set VFM_LABEL_STUDIO")
        pytest.skip("Label Studio is not installed; .ci/run installs it in .ci/lsvenv")
    data = tmp_path_factory.mktemp("ls-data")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data), "LABEL_STUDIO_HOST": url,
           # the documented settings for an ML backend on this machine and for local files
           "ML_BLOCK_LOCAL_IP": "false", "SSRF_PROTECTION_ENABLED": "false",
           "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true", "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(root),
           "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "", "COLLECT_ANALYTICS": "false"}
    env.pop("PYTHONPATH", None)
    log = data / "label-studio.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([exe, "start", "--no-browser", "--host", "127.0.0.1", "--port", str(port),
                                 "--username", "admin@example.com", "--password", "vfm-test-1",
                                 "--user-token", LEGACY, "--enable-legacy-api-token"],
                                stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=data)
    try:
        wait_for(f"{url}/health", proc, 300, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def api(label_studio):
    session = requests.Session()
    session.headers["Authorization"] = f"Token {LEGACY}"

    def call(method, path, **kw):
        r = session.request(method, label_studio + path, timeout=120, **kw)
        assert r.status_code < 400, f"{method} {path}: {r.status_code} {r.text[:500]}"
        return r.json() if r.content else None

    return call


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_sam_dir):
    from vfm.testing.tiny_detectors import build_grounding_dino

    return {"segmenter": str(tiny_sam_dir),
            "detector": str(build_grounding_dino(tmp_path_factory.mktemp("models") / "gdino", seed=0))}


@pytest.fixture(scope="module")
def vfm(api, models, tmp_path_factory):
    """`vfm serve` holding a personal access token (made through Label Studio's API); the host is the
    one Label Studio sends to /setup."""
    pat = api("POST", "/api/token/")["token"]
    assert pat.count(".") == 2  # a JWT refresh token: vfm exchanges it for access tokens
    port = free_port()
    log = tmp_path_factory.mktemp("vfm") / "serve.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "vfm.cli", "serve", "--port", str(port), "--segmenter",
                                 models["segmenter"], "--detector", models["detector"], "--device", "cpu",
                                 "--precision", "fp32", "--label-studio-token", pat, "--log-level", "warning"],
                                stdout=fh, stderr=subprocess.STDOUT)
    try:
        wait_for(f"http://127.0.0.1:{port}/health", proc, 120, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def reference(models):
    from vfm.tasks.detect import Detector
    from vfm.tasks.ground import Grounder
    from vfm.tasks.segment import Segmenter

    seg = Segmenter.load(models["segmenter"], device="cpu", precision="fp32")
    return Grounder(Detector.load(models["detector"], device="cpu", precision="fp32"), seg)


def connect(api, project: int, vfm: str) -> dict:
    ml = api("POST", "/api/ml", json={"url": vfm, "project": project, "title": "vfm", "is_interactive": True,
                                      "extra_params": {"box_threshold": 0.0, "text_threshold": 0.0}})
    assert ml["readable_state"] == "Connected", ml
    assert ml["model_version"].startswith("vfm-")
    return ml


def click_mask(reference, pixels, points, labels=None, box=None):
    from vfm.tasks.prompts import Prompt

    one = box is None and len(points or []) == 1
    res = reference.segmenter.predict_batch([Prompt(points=points, labels=labels, box=box)], multimask=one,
                                            image=pixels, return_logits=False)
    return res.mask(int(np.argmax(res.scores)))


def test_label_studio_uses_vfm_for_predictions_and_interactive_brushes(api, vfm, reference, tmp_path):
    project = api("POST", "/api/projects", json={"title": "vfm brushes", "label_config": BRUSH_CONFIG})["id"]
    images = [make_image(160, 200, seed=3), make_image(160, 200, seed=4)]
    files = {f"file{i}": (f"img{i}.png", png(p), "image/png") for i, p in enumerate(images)}
    api("POST", f"/api/projects/{project}/import", files=files)
    tasks = sorted(api("GET", f"/api/tasks?project={project}")["tasks"], key=lambda t: t["id"])
    assert len(tasks) == 2 and all(t["data"]["image"].startswith("/data/upload/") for t in tasks)
    ml = connect(api, project, vfm)

    # pre-annotation: Label Studio asks vfm and stores one prediction per task
    api("POST", f"/api/dm/actions?id=retrieve_tasks_predictions&project={project}",
        json={"selectedItems": {"all": True, "excluded": []}})
    for task in tasks:
        pixels = images[int(Path(task["data"]["image"]).name.split("img")[-1][0])]
        (pred,) = api("GET", f"/api/predictions?task={task['id']}")
        assert pred["model_version"] == ml["model_version"]
        ref = reference.ground(pixels, ["cat", "dog"], box_threshold=0.0, text_threshold=0.0)
        assert len(pred["result"]) == len(ref) > 0
        for i, region in enumerate(pred["result"]):
            assert region["type"] == "brushlabels" and region["value"]["brushlabels"] == [ref.class_names[i]]
            assert np.array_equal(decode_brush(region["value"]["rle"], 160, 200), ref.mask(i))

    # interactive: a click, then a negative click; Label Studio relays vfm's region to the editor
    task = tasks[0]
    pixels = images[int(Path(task["data"]["image"]).name.split("img")[-1][0])]
    kp = {"type": "keypointlabels", "from_name": "kp", "to_name": "image", "original_width": 200,
          "original_height": 160, "image_rotation": 0, "value": {"x": 40, "y": 55, "width": 0.6, "keypointlabels": ["dog"]}}
    neg = {**kp, "is_positive": False, "value": {**kp["value"], "x": 75, "y": 25}}
    answer = api("POST", f"/api/ml/{ml['id']}/interactive-annotating",
                 json={"task": task["id"], "context": {"result": [{**kp, "is_positive": True}, neg]}})
    assert "errors" not in answer, answer
    (region,) = answer["data"]["result"]
    expected = click_mask(reference, pixels, [[80.0, 88.0], [150.0, 40.0]], [1, 0])
    assert np.array_equal(decode_brush(region["value"]["rle"], 160, 200), expected)
    # the annotator accepts it: the annotation Label Studio stores decodes to the same mask
    stored = api("POST", f"/api/tasks/{task['id']}/annotations", json={"result": answer["data"]["result"]})
    (saved,) = api("GET", f"/api/annotations/{stored['id']}")["result"]
    assert saved["value"]["brushlabels"] == ["dog"]
    assert np.array_equal(decode_brush(saved["value"]["rle"], 160, 200), expected)

    # Label Studio's own JSON export reads back with vfm convert --from labelstudio: the annotated task
    # gives the annotation's mask; the other has none (the export lists predictions by id only)
    export = api("GET", f"/api/projects/{project}/export?exportType=JSON&download_all_tasks=true")
    (tmp_path / "export.json").write_text(json.dumps(export))
    (tmp_path / "labelstudio_config.xml").write_text(BRUSH_CONFIG)
    for i, p in enumerate(images):  # a task without regions takes its size from the image file
        (tmp_path / f"img{i}.png").write_bytes(png(p))
    from vfm.formats.readers import read_dataset
    from vfm.results.rle import decode_rle

    ds = read_dataset(tmp_path / "export.json", "labelstudio")
    assert ds.categories == ["cat", "dog"]
    by_name = {name: anns for name, _w, _h, anns in ds.images}
    annotated = by_name[Path(task["data"]["image"]).name.split("-", 1)[1]]
    assert len(annotated) == 1 and annotated[0]["category"] == "dog"
    assert np.array_equal(decode_rle(annotated[0]["segmentation"]), expected)
    other = next(t for t in tasks if t["id"] != task["id"])
    assert by_name[Path(other["data"]["image"]).name.split("-", 1)[1]] == []


def test_vfm_label_output_imports_with_local_files_and_boxes_become_polygons(label_studio, api, vfm, reference, root,
                                                                            models, tmp_path):
    from vfm.cli.main import main
    from vfm.formats.yolo import mask_polygon

    out = tmp_path / "labels"
    assert main(["label", str(root / "photos"), "--classes", "cat, dog", "--out", str(out), "--format", "labelstudio",
                 "--ls-masks", "polygon", "--segmenter", models["segmenter"], "--detector", models["detector"],
                 "--box-threshold", "0", "--text-threshold", "0", "--device", "cpu", "--precision", "fp32",
                 "--quiet"]) == 0
    config = (out / "labelstudio_config.xml").read_text()
    written = json.loads((out / "labelstudio.json").read_text())
    assert {t["data"]["image"] for t in written} == {"/data/local-files/?d=photos/p0.png", "/data/local-files/?d=photos/p1.png"}
    # the local files storage, as vfm label prints it; then the task list imports with its predictions
    project = api("POST", "/api/projects", json={"title": "vfm local files", "label_config": config})["id"]
    api("POST", "/api/storages/localfiles", json={"project": project, "path": str(root / "photos"),
                                                   "use_blob_urls": True, "title": "photos"})
    api("POST", f"/api/projects/{project}/import", json=written)
    tasks = api("GET", f"/api/tasks?project={project}")["tasks"]
    assert len(tasks) == 2
    for task in tasks:
        name = task["data"]["image"].rsplit("/", 1)[-1]
        served = requests.get(label_studio + task["data"]["image"], headers={"Authorization": f"Token {LEGACY}"},
                              timeout=30)
        assert served.status_code == 200 and served.content == (root / "photos" / name).read_bytes()
        (pred,) = api("GET", f"/api/predictions?task={task['id']}")
        mine = next(t for t in written if t["data"]["image"] == task["data"]["image"])["predictions"][0]["result"]
        assert [r["value"]["points"] for r in pred["result"]] == [r["value"]["points"] for r in mine]

    # vfm as the backend of this project: a box drawn with a rectangle (no smart tool in vfm label's
    # config, so the context is sent directly) comes back as a polygon in percent of the image
    ml = connect(api, project, vfm)
    task = tasks[0]
    pixels = np.asarray(Image.open(root / "photos" / task["data"]["image"].rsplit("/", 1)[-1]).convert("RGB"))
    config_with_box = config.replace("</View>", '  <RectangleLabels name="box" toName="image" smart="true">'
                                                '<Label value="cat"/><Label value="dog"/></RectangleLabels>\n</View>')
    api("PATCH", f"/api/projects/{project}", json={"label_config": config_with_box})
    rect = {"type": "rectanglelabels", "from_name": "box", "to_name": "image", "original_width": 200,
            "original_height": 160, "image_rotation": 0,
            "value": {"x": 10, "y": 20, "width": 50, "height": 40, "rotation": 0, "rectanglelabels": ["cat"]}}
    answer = api("POST", f"/api/ml/{ml['id']}/interactive-annotating", json={"task": task["id"], "context": {"result": [rect]}})
    assert "errors" not in answer, answer
    (region,) = answer["data"]["result"]
    assert region["type"] == "polygonlabels" and region["value"]["polygonlabels"] == ["cat"]
    expected = mask_polygon(click_mask(reference, pixels, None, box=[20.0, 32.0, 120.0, 96.0])) * 100 / np.array([200, 160])
    stored = api("POST", f"/api/tasks/{task['id']}/annotations", json={"result": answer["data"]["result"]})
    (saved,) = api("GET", f"/api/annotations/{stored['id']}")["result"]
    assert np.allclose(saved["value"]["points"], expected, atol=1e-6)
