"""The OpenAPI document describes the API (issue 20 item 3): request bodies and their rules, one error
model, every status code answered, the bearer scheme when a key is set — checked by Schemathesis
(its CLI, all checks, bounded examples, loopback) against `vfm serve` with and without an API key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.test_server_cli import start

pytest.importorskip("schemathesis")
CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture(scope="module")
def models(tiny_sam_dir, tiny_vlm, tmp_path_factory):
    from vfm.testing.tiny_clip import build_clip
    from vfm.testing.tiny_detectors import build_grounding_dino

    root = tmp_path_factory.mktemp("openapi-models")
    return ["--segmenter", str(tiny_sam_dir), "--detector", str(build_grounding_dino(root / "gdino", seed=0)),
            "--classifier", str(build_clip(root / "clip", seed=0)), "--precision", "fp32", "--device", "cpu",
            "--captioner", str(tiny_vlm("florence2")), "--vlm", str(tiny_vlm("smolvlm")), "--max-new-tokens", "32"]


@pytest.fixture(scope="module")
def index_db(models, tmp_path_factory):
    """An index of three images made with the server's classifier (/v1/search is fuzzed against it)."""
    import numpy as np
    from PIL import Image

    from vfm.cli.main import main

    root = tmp_path_factory.mktemp("openapi-index")
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(root / f"i{i}.png")
    clip = models[models.index("--classifier") + 1]
    assert main(["index", str(root), "--model", clip, "--db", str(root / "db"), "--quiet"]) == 0
    return str(root / "db")


def test_document_declares_bodies_errors_and_statuses(models):
    proc, url = start(models + ["--api-key", "k3y"])
    try:
        doc = requests.get(f"{url}/openapi.json").json()
        assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer",
                                                                  "description": "vfm serve --api-key / VFM_API_KEY"}
        assert doc["components"]["schemas"]["Error"]["required"] == ["error"]
        assert "HTTPValidationError" not in doc["components"]["schemas"]
        for task in ("segment", "detect", "ground", "classify", "tag", "everything"):
            op = doc["paths"][f"/v1/images/{{image_id}}/{task}"]["post"]
            body = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert body == f"#/components/schemas/{task.capitalize()}Request"
            assert {"400", "401", "404", "413", "422"} <= set(op["responses"]) and op["security"] == [{"bearer": []}]
            assert op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/Error"
        everything = doc["components"]["schemas"]["EverythingRequest"]
        assert everything["additionalProperties"] is False
        assert everything["properties"]["points_per_side"]["anyOf"][0]["maximum"] == 64  # the server's cap
        # an unsupported method on /v1 is 405 even without the key; an unknown path 404
        assert requests.delete(f"{url}/v1/images").status_code == 405
        assert requests.get(f"{url}/v1/no-such-thing").status_code == 404
        assert requests.post(f"{url}/v1/images").status_code == 401
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("key", [None, "k3y"])
def test_schemathesis_finds_no_failure(models, index_db, key, tmp_path):
    # with the key, the server also has an index (/v1/search answers); without, /v1/search is 404
    proc, url = start(models + (["--api-key", key, "--db", index_db] if key else []))
    try:
        cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run", f"{url}/openapi.json",
               "--checks", "all", "--max-examples", "15", "--seed", "7", "--request-timeout", "30",
               "--generation-database", "none"]
        if key:
            cmd += ["-H", f"Authorization: Bearer {key}"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path,
                           env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
        assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
        assert " passed" in r.stdout and "failures" not in r.stdout.split("SUMMARY")[-1].lower()
    finally:
        proc.kill()
        proc.wait()
