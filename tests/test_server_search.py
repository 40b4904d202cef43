"""POST /v1/embed, POST /v1/search and GET /v1/index/images/{n} on a real `vfm serve --db` over loopback."""

from __future__ import annotations

import numpy as np
import pytest
import requests
from PIL import Image

from tests.test_server_cli import start
from vfm.cli.main import main

pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from vfm.testing.tiny_clip import build_clip
    from vfm.testing.tiny_dinov2 import build_dinov2

    root = tmp_path_factory.mktemp("serve-search")
    clip, dino = build_clip(root / "clip"), build_dinov2(root / "dino")
    rng = np.random.default_rng(1)
    src = root / "imgs"
    src.mkdir()
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (30 + i, 40, 3), dtype=np.uint8)).save(src / f"p{i}.png")
    for model, db in ((clip, "db"), (dino, "dino_db")):
        assert main(["index", str(src), "--model", str(model), "--db", str(root / db), "--quiet"]) == 0
    return root, clip


def test_search_text_image_and_id_equal_the_cli(setup, capsys):
    root, clip = setup
    proc, url = start(["--db", str(root / "db"), "--classifier", str(clip), "--device", "cpu"])
    try:
        r = requests.post(f"{url}/v1/search", json={"text": "a small dog", "k": 3})
        assert r.status_code == 200, r.text
        doc = r.json()
        import json

        capsys.readouterr()
        assert main(["search", "--db", str(root / "db"), "a small dog", "--k", "3", "--json"]) == 0
        cli = json.loads(capsys.readouterr().out)
        assert [h["file_name"] for h in doc["hits"]] == [h["file_name"] for h in cli["hits"]]
        np.testing.assert_allclose([h["score"] for h in doc["hits"]], [h["score"] for h in cli["hits"]], atol=1e-6)
        assert "path" not in doc["hits"][0] and set(doc["timing_ms"]) == {"embed", "search"}
        # an uploaded image finds itself first
        files = {"file": ("q.png", (root / "imgs" / "p4.png").read_bytes(), "image/png")}
        image_id = requests.post(f"{url}/v1/images?embed=false", files=files).json()["image_id"]
        hit = requests.post(f"{url}/v1/search", json={"image_id": image_id, "k": 1}).json()["hits"][0]
        assert hit["file_name"] == "p4.png" and hit["score"] > 0.9999
        # by id: the entry itself is left out
        hits = requests.post(f"{url}/v1/search", json={"id": hit["id"], "k": 7}).json()["hits"]
        assert len(hits) == 7 and hit["id"] not in [h["id"] for h in hits]
        # the hit's bytes, for the page's grid and the segmentation view
        img = requests.get(f"{url}/v1/index/images/{hit['image_id']}")
        assert img.status_code == 200 and img.content == (root / "imgs" / "p4.png").read_bytes()
        # /v1/embed uses the index's model: the same vector as the index holds
        emb = requests.post(f"{url}/v1/embed", json={"image_id": image_id}).json()
        assert emb["kind"] == "image" and emb["dim"] == 24
        from vfm.search.db import IndexDB

        db = IndexDB(root / "db")
        np.testing.assert_allclose(emb["embeddings"][0], db.vectors_of([hit["id"]])[hit["id"]], atol=1e-6)
        db.close()
        texts = requests.post(f"{url}/v1/embed", json={"text": ["a", "b c"]}).json()
        assert np.allclose(np.linalg.norm(texts["embeddings"], axis=1), 1, atol=1e-5)
        for body, status, words in [({"text": "x", "k": 0}, 422, "positive"), ({"k": 3}, 422, "exactly one"),
                                    ({"text": "x", "id": 2}, 422, "exactly one"), ({"id": 999}, 422, "not an entry"),
                                    ({"text": "x", "kind": "video"}, 422, "'kind'"), ({"image_id": "nope"}, 404, ""),
                                    ({"text": "x", "extra": 1}, 422, "extra")]:
            r = requests.post(f"{url}/v1/search", json=body)
            assert r.status_code == status and words in r.json()["error"], (body, r.text)
        assert requests.get(f"{url}/v1/index/images/9999").status_code == 404
    finally:
        proc.kill()
        proc.wait()


def test_image_only_index_and_no_index(setup):
    root, clip = setup
    proc, url = start(["--db", str(root / "dino_db"), "--classifier", str(clip), "--device", "cpu"])
    try:
        r = requests.post(f"{url}/v1/search", json={"text": "a cat"})
        assert r.status_code == 422 and "image-only" in r.json()["error"]
        assert requests.post(f"{url}/v1/search", json={"id": 1, "k": 2}).status_code == 200
    finally:
        proc.kill()
        proc.wait()
    proc, url = start(["--classifier", str(clip), "--device", "cpu"])
    try:
        r = requests.post(f"{url}/v1/search", json={"text": "a cat"})
        assert r.status_code == 404 and "--db" in r.json()["error"]
        r = requests.post(f"{url}/v1/embed", json={"text": "a cat"})  # the classifier embeds without an index
        assert r.status_code == 200 and r.json()["dim"] == 24
    finally:
        proc.kill()
        proc.wait()


def test_serve_with_a_bad_db_is_one_line(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "vfm.cli", "serve", "--db", str(tmp_path / "nothing")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "does not exist" in r.stderr and r.stderr.count("\n") == 1
