"""`vfm mcp` as a real subprocess, driven by the official MCP client over stdio and streamable HTTP.

Every tool runs on tiny random-weight checkpoints (conftest) and its JSON is compared with what
vfm's Python API (or `vfm <task> --json`) gives for the same input; overlays must decode as PNGs of
the image's size; bad input must come back as one-line tool errors, and the server must keep
serving. One server process per transport is shared by the module's tests.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import importlib.util
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_image

pytest.importorskip("mcp")

from mcp import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

HAS_FAISS = importlib.util.find_spec("faiss") is not None
HAS_AV = importlib.util.find_spec("av") is not None
TOOLS = ["segment", "everything", "detect", "ground", "classify", "tag", "caption", "ask", "read", "search", "track"]
H, W = 120, 200  # the test image (make_image's default)
VW, VH, VN = 160, 96, 6  # the test video
ENV = {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "PYTHONHASHSEED": "0",
       "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


# ------------------------------------------------------------------------------ a client in a thread
class Client:
    """An MCP ClientSession kept open on its own event loop; ``call``/``list`` block until answered."""

    def __init__(self, connect):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._ready: concurrent.futures.Future = concurrent.futures.Future()
        self._main = asyncio.run_coroutine_threadsafe(self._serve(connect), self.loop)
        try:
            self.session: ClientSession = self._ready.result(timeout=120)
        except BaseException:
            self._main.cancel()
            raise

    async def _serve(self, connect):
        self._stop = asyncio.Event()
        try:
            async with connect() as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    self._ready.set_result(session)
                    await self._stop.wait()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            raise

    def run(self, coro, timeout: float = 300):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def call(self, name: str, arguments: dict | None = None):
        return self.run(self.session.call_tool(name, arguments))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        try:
            self._main.result(timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)


def doc_of(result) -> dict:
    assert not result.is_error, result.content[0].text
    texts = [c for c in result.content if c.type == "text"]
    assert len(texts) == 1
    doc = json.loads(texts[0].text)
    assert result.structured_content == doc
    return doc


def pngs_of(result) -> list[Image.Image]:
    out = []
    for c in result.content:
        if c.type == "image":
            assert c.mime_type == "image/png"
            im = Image.open(io.BytesIO(base64.b64decode(c.data)))
            assert im.format == "PNG"
            out.append(im)
    return out


def error_of(result) -> str:
    assert result.is_error, f"expected a tool error, got {result.content[0].text[:200]}"
    assert len(result.content) == 1 and result.content[0].type == "text"
    text = result.content[0].text
    assert "\n" not in text and "Traceback" not in text, text
    return text


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """A root folder (image, corrupt file, a symlink out, a video, images to index) and a folder outside it."""
    base = tmp_path_factory.mktemp("mcp")
    root, outside = base / "root", base / "outside"
    root.mkdir()
    outside.mkdir()
    Image.fromarray(make_image(H, W, seed=0)).save(root / "img.png")
    Image.fromarray(make_image(H, W, seed=1)).save(outside / "secret.png")
    (root / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 8)
    (root / "link.png").symlink_to(outside / "secret.png")
    library = root / "library"
    library.mkdir()
    for i in range(4):
        Image.fromarray(make_image(48 + 4 * i, 64, seed=10 + i)).save(library / f"pic{i}.png")
    if HAS_AV:
        from vfm.testing.synthetic_video import write_video

        write_video(root / "clip.mp4", VN, VW, VH)
    return {"root": root, "outside": outside}


@pytest.fixture(scope="module")
def index_db(media, clip_dir, tmp_path_factory):
    if not HAS_FAISS:
        return None
    from vfm.cli.main import main

    db = tmp_path_factory.mktemp("mcp-index") / "db"
    assert main(["index", str(media["root"] / "library"), "--model", str(clip_dir), "--db", str(db),
                 "--device", "cpu", "--quiet"]) == 0
    return db


@pytest.fixture(scope="module")
def not_a_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("not-a-model")
    (d / "config.json").write_text('{"model_type": "no-such-architecture"}')
    return d


@pytest.fixture(scope="module")
def server_args(media, tiny_sam_dir, tiny_gdino_dir, clip_dir, tiny_sam2_video_dir, index_db, not_a_model, tiny_vlm):
    args = ["mcp", "--root", str(media["root"]), "--segmenter", str(tiny_sam_dir), "--detector", str(tiny_gdino_dir),
            "--classifier", str(clip_dir), "--classifier", str(not_a_model), "--tracker", str(tiny_sam2_video_dir),
            "--captioner", str(tiny_vlm("florence2")), "--captioner", str(tiny_vlm("blip")),
            "--vlm", str(tiny_vlm("smolvlm")), "--vlm", str(tiny_vlm("llava")), "--device", "cpu", "--precision", "fp32"]
    if index_db is not None:
        args += ["--db", str(index_db)]
    return args


@pytest.fixture(scope="module")
def stdio(server_args, tmp_path_factory):
    """One `vfm mcp` over stdio for the module; ``.log()`` is its stderr so far."""
    log_path = tmp_path_factory.mktemp("mcp-log") / "stdio.err"
    errlog = open(log_path, "w")
    params = StdioServerParameters(command=sys.executable, args=["-m", "vfm.cli.main", *server_args], env=ENV)
    client = Client(lambda: stdio_client(params, errlog=errlog))
    client.log = lambda: log_path.read_text()
    yield client
    client.close()
    errlog.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def http(server_args, media, tmp_path_factory):
    """One `vfm mcp --transport http` on a free loopback port, started in the root with no --root (the
    default root is the current directory)."""
    args = [a for i, a in enumerate(server_args) if a != "--root" and (i == 0 or server_args[i - 1] != "--root")]
    port = _free_port()
    log_path = tmp_path_factory.mktemp("mcp-log") / "http.err"
    errlog = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "vfm.cli.main", *args, "--transport", "http", "--port", str(port)],
                            cwd=media["root"], env={**os.environ, **ENV}, stdout=subprocess.DEVNULL, stderr=errlog)
    try:
        deadline = time.monotonic() + 120
        while True:  # wait until it answers
            assert proc.poll() is None, f"vfm mcp exited: {log_path.read_text()}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "vfm mcp --transport http did not start listening"
                time.sleep(0.2)
        client = Client(lambda: streamable_http_client(f"http://127.0.0.1:{port}/mcp"))
        client.log = lambda: log_path.read_text()
        yield client
        client.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        errlog.close()


def _loads(log: str, role: str, name) -> int:
    return len(re.findall(rf"vfm mcp: loaded {role} '{re.escape(str(name))}' in [\d.]+ s \(\d+ model\(s\) loaded\)", log))


# ------------------------------------------------------------------------------ listing
def test_tools_listed_with_schemas(stdio, tiny_sam_dir, clip_dir, not_a_model):
    tools = {t.name: t for t in stdio.run(stdio.session.list_tools()).tools}
    assert list(tools) == TOOLS
    for t in tools.values():
        schema = t.input_schema
        assert t.description and schema["type"] == "object" and schema["additionalProperties"] is False
        for name, prop in schema["properties"].items():
            assert prop.get("description"), f"{t.name}.{name} has no description"
            assert "type" in prop, f"{t.name}.{name} has no type"
    assert tools["segment"].input_schema["required"] == ["image"]
    assert tools["detect"].input_schema["required"] == ["image", "classes"]
    assert tools["track"].input_schema["required"] == ["video", "objects"]
    assert "required" not in tools["search"].input_schema
    assert tools["segment"].input_schema["properties"]["model"]["enum"] == [str(tiny_sam_dir)]
    assert tools["classify"].input_schema["properties"]["model"]["enum"] == [str(clip_dir), str(not_a_model)]
    assert tools["detect"].input_schema["properties"]["classes"]["items"] == {"type": "string", "minLength": 1}


def test_docs_list_every_tool_and_argument(stdio):
    doc = (Path(__file__).resolve().parents[1] / "docs" / "agents.md").read_text()
    for t in stdio.run(stdio.session.list_tools()).tools:
        assert f"### `{t.name}`" in doc, f"docs/agents.md has no section for {t.name}"
        section = doc.split(f"### `{t.name}`", 1)[1].split("\n### ", 1)[0]
        for name in t.input_schema["properties"]:
            assert f"`{name}`" in section, f"docs/agents.md does not describe {t.name}'s argument {name}"
        for name in t.input_schema.get("required", []):
            assert re.search(rf"`{name}`[^\n]*required", section), f"docs/agents.md does not say {t.name}.{name} is required"


# ------------------------------------------------------------------------------ each tool vs the Python API
def _image():
    from vfm.io.image import load_image

    return load_image(make_image(H, W, seed=0), name="img.png")


@pytest.fixture(scope="module")
def segmenter(tiny_sam_dir):
    from vfm.tasks.segment import Segmenter

    return Segmenter.load(str(tiny_sam_dir), device="cpu", precision="fp32")


def _same_instances(got: dict, want: dict) -> None:
    assert got["image"] == want["image"]
    assert got.get("categories") == want.get("categories")
    assert len(got["annotations"]) == len(want["annotations"])
    for a, b in zip(got["annotations"], want["annotations"]):
        assert a.get("segmentation") == b.get("segmentation")
        assert a.get("category_name") == b.get("category_name")
        np.testing.assert_allclose(a["bbox"], b["bbox"], atol=1e-3)
        assert a["score"] == pytest.approx(b["score"], abs=1e-4)


def test_segment_equals_the_python_api(stdio, segmenter):
    from vfm.formats.coco import instances_to_document
    from vfm.tasks.prompts import Prompt

    args = {"image": "img.png", "points": [[60, 40], [150, 100]], "labels": [1, 0], "boxes": [[20, 30, 180, 110], [5, 5, 90, 60]]}
    res = stdio.call("segment", args)
    doc = doc_of(res)
    pts, lab = np.array(args["points"], float), np.array(args["labels"])
    want = segmenter.predict_batch([Prompt(points=pts, labels=lab, box=b) for b in args["boxes"]], image=_image(),
                                   return_logits=False)
    _same_instances(doc, instances_to_document(want, file_name="img.png"))
    assert len(doc["annotations"]) == 2
    assert [im.size for im in pngs_of(res)] == [(W, H)]
    multi = doc_of(stdio.call("segment", {"image": "img.png", "box": [20, 30, 180, 110], "multimask": True}))
    assert len(multi["annotations"]) == 3


def test_base64_and_data_url_give_the_same_answer(stdio, media):
    raw = base64.b64encode((media["root"] / "img.png").read_bytes()).decode()
    by_path = doc_of(stdio.call("segment", {"image": "img.png", "points": [[60, 40]]}))
    for image in (raw, "data:image/png;base64," + raw, "\n".join(raw[i:i + 76] for i in range(0, len(raw), 76))):
        res = stdio.call("segment", {"image": image, "points": [[60, 40]]})
        doc = doc_of(res)
        assert "file_name" not in doc["image"]
        assert doc["annotations"] == by_path["annotations"]
        assert [im.size for im in pngs_of(res)] == [(W, H)]


def test_everything_equals_the_python_api(stdio, segmenter):
    from vfm.formats.coco import instances_to_document
    from vfm.tasks.everything import MaskGenerator

    opts = {"points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
    res = stdio.call("everything", {"image": "img.png", **opts})
    doc = doc_of(res)
    want = instances_to_document(MaskGenerator(segmenter, **opts).generate(_image()), file_name="img.png")
    assert len(want["annotations"]) > 0
    _same_instances(doc, want)
    assert [im.size for im in pngs_of(res)] == [(W, H)]


def test_detect_equals_vfm_detect_json(stdio, media, tiny_gdino_dir, capsys):
    from vfm.cli.main import main

    res = stdio.call("detect", {"image": "img.png", "classes": ["cat", "person: astronaut"], "box_threshold": 0.0,
                                "max_detections": 3})
    doc = doc_of(res)
    assert main(["detect", str(media["root"] / "img.png"), "--model", str(tiny_gdino_dir), "--classes",
                 "cat, person: astronaut", "--box-threshold", "0", "--max-detections", "3", "--device", "cpu", "--precision", "fp32",
                 "--json"]) == 0
    want = json.loads(capsys.readouterr().out)
    assert doc["categories"] == [{"id": 1, "name": "cat"}, {"id": 2, "name": "astronaut"}]
    assert len(doc["annotations"]) == 3
    _same_instances(doc, want)
    assert [im.size for im in pngs_of(res)] == [(W, H)]


def test_ground_equals_the_python_api(stdio, segmenter, tiny_gdino_dir):
    from vfm.formats.coco import instances_to_document
    from vfm.tasks.detect import Detector
    from vfm.tasks.ground import Grounder

    res = stdio.call("ground", {"image": "img.png", "classes": ["cat", "dog"], "box_threshold": 0.0, "max_detections": 2})
    doc = doc_of(res)
    grounder = Grounder(Detector.load(str(tiny_gdino_dir), device="cpu", precision="fp32"), segmenter)
    want = grounder.ground(_image(), ["cat", "dog"], box_threshold=0.0, max_detections=2)
    _same_instances(doc, instances_to_document(want, categories=["cat", "dog"], file_name="img.png"))
    assert len(doc["annotations"]) == 2 and all("segmentation" in a for a in doc["annotations"])
    assert [im.size for im in pngs_of(res)] == [(W, H)]


def test_classify_and_tag_equal_the_python_api(stdio, clip_dir):
    from vfm.tasks.classify import Classifier
    from vfm.tasks.tag import Tagger

    clf = Classifier.load(str(clip_dir), device="cpu")
    res = stdio.call("classify", {"image": "img.png", "classes": ["cat", "dog", "remote control"], "top_k": 2})
    doc = doc_of(res)
    want = clf.classify(_image(), ["cat", "dog", "remote control"]).top(2)
    assert [lab["name"] for lab in doc["labels"]] == want.names
    np.testing.assert_allclose([lab["score"] for lab in doc["labels"]], want.scores, atol=1e-5)
    assert doc["activation"] == "softmax" and doc["model"] == str(clip_dir)
    assert doc["image"] == {"width": W, "height": H, "file_name": "img.png"}
    assert [im.size for im in pngs_of(res)] == [(W, H)]

    res = stdio.call("tag", {"image": "img.png", "threshold": 0.0, "top_k": 5})
    doc = doc_of(res)
    want = Tagger(clf).tag(_image(), threshold=0.0, top_k=5)
    assert [lab["name"] for lab in doc["labels"]] == want.names
    np.testing.assert_allclose([lab["score"] for lab in doc["labels"]], want.scores, atol=1e-5)
    assert doc["threshold"] == 0.0
    assert [im.size for im in pngs_of(res)] == [(W, H)]


@pytest.mark.skipif(not HAS_FAISS, reason="faiss (vfm[search]) is not installed")
def test_search_equals_the_python_api(stdio, index_db, media):
    from vfm.io.image import load_image
    from vfm.search.query import Searcher

    searcher = Searcher(str(index_db), device="cpu")
    try:
        for query, kw in (({"text": "a red square"}, {"text": "a red square"}), ({"id": 2}, {"entry_id": 2}),
                          ({"image": "library/pic1.png"}, {"image": load_image(str(media["root"] / "library" / "pic1.png")).pixels})):
            res = stdio.call("search", {**query, "k": 3})
            doc = doc_of(res)
            want = searcher.query(k=3, **kw)
            assert [(h["id"], h["file_name"]) for h in doc["hits"]] == [(h["id"], h["file_name"]) for h in want["hits"]]
            np.testing.assert_allclose([h["score"] for h in doc["hits"]], [h["score"] for h in want["hits"]], atol=1e-5)
            assert doc["query"] == want["query"] and doc["k"] == 3
            assert len(pngs_of(res)) == 1
    finally:
        searcher.close()
    assert "exactly one query" in error_of(stdio.call("search", {"text": "x", "id": 1}))


@pytest.mark.skipif(not HAS_AV, reason="PyAV (vfm[video]) is not installed")
def test_track_equals_the_python_api(stdio, media, tiny_sam2_video_dir):
    from vfm.testing.synthetic_video import frame_and_masks, object_box, object_centre
    from vfm.video.prompts import ObjectPrompt
    from vfm.video.reader import open_video
    from vfm.video.run import track_video
    from vfm.video.tracker import VideoTracker

    ids = frame_and_masks(0, VW, VH)[1]
    x, y = object_centre(ids, 1)
    box = [float(v) for v in object_box(ids, 2)]
    res = stdio.call("track", {"video": "clip.mp4", "objects": [{"points": [[x, y]]}, {"id": 7, "box": box}]})
    doc = doc_of(res)
    assert doc["objects"] == [1, 7]
    assert doc["video"]["width"] == VW and doc["video"]["height"] == VH
    assert [r["frame"] for r in doc["frames"]] == list(range(VN))

    tracker = VideoTracker.load(str(tiny_sam2_video_dir), device="cpu", precision="fp32")
    records = []
    track_video(tracker, open_video(str(media["root"] / "clip.mp4"), end=300), [
        ObjectPrompt(0, 1, points=[(x, y)], labels=[1]), ObjectPrompt(0, 7, box=tuple(box))],
        on_record=lambda rec, n: records.append(rec))
    assert len(records) == VN
    for got, want in zip(doc["frames"], records):
        assert [o["id"] for o in got["objects"]] == [o["id"] for o in want["objects"]]
        assert [o["segmentation"] for o in got["objects"]] == [o["segmentation"] for o in want["objects"]]
    assert [im.size for im in pngs_of(res)] == [(VW, VH), (VW, VH)]
    assert "start 50 is past the last frame (5)" in error_of(
        stdio.call("track", {"video": "clip.mp4", "objects": [{"box": box}], "start": 50}))
    assert "outside" in error_of(stdio.call("track", {"video": "clip.mp4", "objects": [{"points": [[500, 5]]}]}))


def test_caption_ask_read_equal_the_python_api(stdio, media, tiny_vlm, tiny_sam_dir):
    from vfm.tasks.answer_grounding import masks_for
    from vfm.tasks.segment import Segmenter
    from vfm.tasks.vlm import VisionLanguage

    florence, smol = VisionLanguage.load(str(tiny_vlm("florence2"))), VisionLanguage.load(str(tiny_vlm("smolvlm")))
    image = _image()
    res = stdio.call("caption", {"image": "img.png", "max_new_tokens": 8})
    doc = doc_of(res)
    assert doc["answer"] == florence.caption(image, max_new_tokens=8).text
    assert set(doc) >= {"answer", "model", "tokens", "seconds"} and pngs_of(res) == []
    blip = doc_of(stdio.call("caption", {"image": "img.png", "max_new_tokens": 8, "model": str(tiny_vlm("blip"))}))
    assert blip["answer"] == VisionLanguage.load(str(tiny_vlm("blip"))).caption(image, max_new_tokens=8).text

    res = stdio.call("ask", {"image": "img.png", "question": "What is this?", "max_new_tokens": 8, "ground": True})
    doc = doc_of(res)
    answer = smol.ask(image, "What is this?", max_new_tokens=8)
    assert doc["answer"] == answer.text and doc["question"] == "What is this?"
    found = masks_for(florence.ground_text(image, answer.text), image,
                      Segmenter.load(str(tiny_sam_dir), device="cpu", precision="fp32"))
    assert [a["category_name"] for a in doc["annotations"]] == (found.class_names or [])
    assert [im.size for im in pngs_of(res)] == [(W, H)]

    res = stdio.call("read", {"image": "img.png", "max_new_tokens": 40})
    doc = doc_of(res)
    lines = florence.read(image, max_new_tokens=40)
    assert [a["category_name"] for a in doc["annotations"]] == lines.class_names
    assert doc["text"] == "\n".join(lines.class_names)
    assert [im.size for im in pngs_of(res)] == [(W, H)]
    blip = str(tiny_vlm("blip"))
    assert "cannot read text with regions" in error_of(stdio.call("read", {"image": "img.png", "model": blip}))
    assert "'frames': 0 is less than the minimum of 1" in error_of(
        stdio.call("ask", {"image": "img.png", "question": "q", "frames": 0}))


@pytest.mark.skipif(not HAS_AV, reason="PyAV is not installed")
def test_ask_about_a_video(stdio, media, tiny_vlm):
    from vfm.tasks.vlm import VisionLanguage

    doc = doc_of(stdio.call("ask", {"video": "clip.mp4", "question": "What moves?", "frames": 3, "max_new_tokens": 6}))
    want = VisionLanguage.load(str(tiny_vlm("smolvlm"))).ask_video(str(media["root"] / "clip.mp4"), "What moves?",
                                                                   frames=3, max_new_tokens=6)
    assert doc["answer"] == want.text and doc["frames"] == want.frames == [0, 2, 5]
    assert doc["video"] == {"file_name": "clip.mp4"}
    llava = str(tiny_vlm("llava"))
    assert "cannot take a video" in error_of(stdio.call("ask", {"video": "clip.mp4", "question": "q", "model": llava}))


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("tool, arguments, expected", [
    ("ask", {"image": "img.png"}, "ask: missing argument 'question'"),
    ("ask", {"image": "img.png", "question": "   "}, "the question is empty"),
    ("ask", {"question": "q"}, "give exactly one of image and video"),
    ("ask", {"image": "img.png", "video": "clip.mp4", "question": "q"}, "give exactly one of image and video"),
    ("ask", {"video": "../outside/secret.png", "question": "q"}, "is outside the folders this server may read"),
    ("ask", {"image": "img.png", "question": "q", "max_new_tokens": 0}, "0 is less than the minimum of 1"),
    ("ask", {"image": "img.png", "question": "q", "temperature": "hot"}, "argument 'temperature' must be a number"),
    ("caption", {"image": "img.png", "detailed": "yes"}, "argument 'detailed' must be true or false"),
    ("read", {"image": "img.png", "model": "blip-base"}, "it must be one of"),

    ("segment", {"points": [[1, 1]]}, "segment: missing argument 'image'"),
    ("segment", {"image": 7, "points": [[1, 1]]}, "segment: argument 'image' must be a string, got 7"),
    ("segment", {"image": "img.png", "points": [[1, "a"]]}, "argument 'points[0][1]' must be a number"),
    ("segment", {"image": "img.png", "points": [[1, 2, 3]]}, "argument 'points[0]' must have exactly 2 items"),
    ("segment", {"image": "img.png", "point": [1, 2]}, "unknown argument(s) 'point'"),
    ("segment", {"image": "img.png"}, "give at least one of points, box, boxes"),
    ("segment", {"image": "img.png", "points": [[250, 10]]}, "point (250, 10) is outside the 200x120 image"),
    ("segment", {"image": "img.png", "box": [10, 10, 400, 50]}, "is not a box inside the 200x120 image"),
    ("segment", {"image": "img.png", "points": [[1, 1]], "labels": [1, 0]}, "1 points but 2 labels"),
    ("segment", {"image": "img.png", "points": [[1, 1]], "model": "sam-vit-huge"},
     "segment: argument 'model' is \"sam-vit-huge\"; it must be one of \""),
    ("segment", {"image": "img.png", "points": [[1, 1]], "labels": [2]}, "argument 'labels[0]' is 2; it must be one of 0, 1"),
    ("segment", {"image": "corrupt.png", "points": [[1, 1]]}, "image 'corrupt.png' is corrupt or truncated"),
    ("segment", {"image": "missing.png", "points": [[1, 1]]}, "image 'missing.png' does not exist under the allowed roots"),
    ("segment", {"image": "data:image/png;base64,@@@@", "points": [[1, 1]]}, "is not valid base64"),
    ("segment", {"image": "QUJD" * 40, "points": [[1, 1]]}, "image: 'base64 data' is not a readable image"),
    ("segment", {"image": "library", "points": [[1, 1]]}, "is a folder; give one image file"),
    ("detect", {"image": "img.png", "classes": []}, "argument 'classes': [] should be non-empty"),
    ("detect", {"image": "img.png", "classes": [" ", "  "]}, "the class list is empty"),
    ("detect", {"image": "img.png", "classes": "cat"}, "argument 'classes' must be a list, got \"cat\""),
    ("detect", {"image": "img.png", "classes": ["cat"], "box_threshold": 2}, "2 is greater than the maximum of 1"),
    ("classify", {"image": "img.png", "classes": ["a"], "template": "no slot"}, "{}"),
    ("everything", {"image": "img.png", "points_per_side": 0}, "0 is less than the minimum of 1"),
    ("tag", {"image": "img.png", "top_k": 2.5}, "argument 'top_k' must be a whole number, got 2.5"),
    ("nope", {}, "unknown tool 'nope'; this server has segment, everything"),
])
def test_bad_arguments_are_one_line_tool_errors(stdio, tool, arguments, expected):
    assert expected in error_of(stdio.call(tool, arguments))


def test_paths_outside_the_roots_are_refused(stdio, media):
    secret = media["outside"] / "secret.png"
    for image in ("../outside/secret.png", str(secret), "link.png", "library/../../outside/secret.png"):
        text = error_of(stdio.call("segment", {"image": image, "points": [[1, 1]]}))
        assert f"image '{image}' is outside the folders this server may read ({media['root'].resolve()})" in text
    if HAS_AV:
        (media["root"] / "frames").mkdir(exist_ok=True)
        link = media["root"] / "frames" / "00000.png"
        if not link.exists():
            link.symlink_to(secret)
        assert "a link to a file outside" in error_of(stdio.call("track", {"video": "frames", "objects": [{"box": [1, 1, 9, 9]}]}))
    # inside the root through '..' is fine
    assert not stdio.call("segment", {"image": "library/../img.png", "points": [[1, 1]]}).is_error


def test_a_model_that_cannot_load_is_a_tool_error_and_the_server_goes_on(stdio, not_a_model):
    text = error_of(stdio.call("classify", {"image": "img.png", "classes": ["a", "b"], "model": str(not_a_model)}))
    assert text.startswith(f"classify: the classifier '{not_a_model}' cannot be loaded:")
    assert not stdio.call("classify", {"image": "img.png", "classes": ["a", "b"]}).is_error


def test_models_stay_warm(stdio, tiny_sam_dir, clip_dir, not_a_model):
    for _ in range(2):
        doc_of(stdio.call("segment", {"image": "img.png", "points": [[30, 30]]}))
        doc_of(stdio.call("tag", {"image": "img.png", "top_k": 2}))
    log = stdio.log()
    assert _loads(log, "segmenter", tiny_sam_dir) == 1
    assert _loads(log, "classifier", clip_dir) == 1
    assert _loads(log, "classifier", not_a_model) == 0
    counts = [int(n) for n in re.findall(r"\((\d+) model\(s\) loaded\)", log)]
    assert counts == list(range(1, len(counts) + 1))  # one line per first load, never a reload
    assert "Traceback" not in log


# ------------------------------------------------------------------------------ streamable HTTP
def test_http_transport(http, tiny_sam_dir, segmenter):
    from vfm.formats.coco import instances_to_document
    from vfm.tasks.prompts import Prompt

    assert [t.name for t in http.run(http.session.list_tools()).tools] == TOOLS

    async def two_at_once():  # the first calls: both wait for one load
        return await asyncio.gather(*(http.session.call_tool("segment", {"image": "img.png", "points": [[60, 40]]})
                                      for _ in range(2)))

    first, second = http.run(two_at_once())
    want = instances_to_document(segmenter.predict_batch([Prompt(points=np.array([[60.0, 40.0]]))], image=_image(),
                                                         return_logits=False), file_name="img.png")
    _same_instances(doc_of(first), want)
    assert doc_of(second) == doc_of(first)
    assert [im.size for im in pngs_of(first)] == [(W, H)]
    assert _loads(http.log(), "segmenter", tiny_sam_dir) == 1
    # the default root is the current directory (the server was started in the root folder)
    assert "is outside the folders this server may read" in error_of(
        http.call("segment", {"image": "../outside/secret.png", "points": [[1, 1]]}))
    assert "missing argument 'image'" in error_of(http.call("segment", {}))
    assert "serving MCP (streamable HTTP) on http://127.0.0.1:" in http.log()


def _timeless(doc):
    """A tool's document without its wall-clock fields."""
    if isinstance(doc, dict):
        return {k: _timeless(v) for k, v in doc.items() if k not in ("seconds", "first_token_seconds", "timing_ms")}
    if isinstance(doc, list):
        return [_timeless(v) for v in doc]
    return doc


def test_every_tool_over_http_equals_stdio(stdio, http, index_db):
    calls = {"segment": {"image": "img.png", "points": [[60, 40]]},
             "everything": {"image": "img.png", "points_per_side": 4},
             "detect": {"image": "img.png", "classes": ["cat", "remote control"]},
             "ground": {"image": "img.png", "classes": ["cat"]},
             "classify": {"image": "img.png", "classes": ["a cat", "a dog"]},
             "tag": {"image": "img.png", "top_k": 3},
             "caption": {"image": "img.png", "max_new_tokens": 6},
             "ask": {"image": "img.png", "question": "What is this?", "max_new_tokens": 6},
             "read": {"image": "img.png", "max_new_tokens": 30}}
    if index_db is not None:
        calls["search"] = {"text": "a photo", "k": 2}
    if HAS_AV:
        calls["track"] = {"video": "clip.mp4", "objects": [{"box": [20, 20, 80, 70]}]}
    for tool, arguments in calls.items():
        over_http, over_stdio = http.call(tool, arguments), stdio.call(tool, arguments)
        assert _timeless(doc_of(over_http)) == _timeless(doc_of(over_stdio)), tool
        assert [im.size for im in pngs_of(over_http)] == [im.size for im in pngs_of(over_stdio)], tool


def test_missing_sdk_is_one_line(tmp_path):
    """Without the mcp package, vfm mcp says which extra to install (and other commands still work)."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "mcp.py").write_text("raise ImportError('No module named mcp')\n")
    env = {**os.environ, **ENV, "PYTHONPATH": f"{shadow}{os.pathsep}{ENV['PYTHONPATH']}"}
    proc = subprocess.run([sys.executable, "-m", "vfm.cli.main", "mcp"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("vfm mcp: error: this feature needs the optional package 'mcp'; install it with: "
                                   "pip install 'vfm[mcp]'")


def test_segmenter_backend_option(tiny_sam_dir, media, tmp_path):
    """vfm mcp --backend openvino: the segment tool's masks come from the OpenVINO encoder, equal to torch's."""
    pytest.importorskip("openvino")
    pytest.importorskip("onnx")
    params = StdioServerParameters(command=sys.executable, args=[
        "-m", "vfm.cli.main", "mcp", "--root", str(media["root"]), "--segmenter", str(tiny_sam_dir), "--backend", "openvino",
        "--device", "cpu", "--precision", "fp32"], env={**ENV, "VFM_CACHE_DIR": str(tmp_path / "cache")})
    client = Client(lambda: stdio_client(params, errlog=open(tmp_path / "err.log", "w")))
    try:
        doc = doc_of(client.call("segment", {"image": "img.png", "points": [[60, 40]]}))
    finally:
        client.close()
    from vfm.formats.coco import instances_to_document
    from vfm.tasks.prompts import Prompt
    from vfm.tasks.segment import Segmenter

    ref = Segmenter.load(str(tiny_sam_dir), device="cpu", precision="fp32")
    want = instances_to_document(ref.predict_batch([Prompt(points=np.array([[60.0, 40.0]]))], image=_image(),
                                                   return_logits=False), file_name="img.png")
    assert doc["annotations"][0]["segmentation"] == want["annotations"][0]["segmentation"]
    assert list((tmp_path / "cache" / "exports").glob("*/encoder.onnx"))
