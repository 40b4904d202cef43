"""`vfm serve` as a user starts it: a subprocess on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

from vfm.server.testing import free_port


def start(args, env=None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "vfm.cli", "serve", "--port", str(port), "--log-level", "warning",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read())
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("vfm serve did not start")


def test_vfm_serve_with_env_api_key_and_segment(tiny_sam_dir, image_path):
    proc, url = start(["--segmenter", str(tiny_sam_dir), "--device", "cpu", "--precision", "fp32", "--threads", "1"],
                      env={"VFM_API_KEY": "envkey"})
    try:
        files = {"file": ("image.png", image_path.read_bytes(), "image/png")}
        assert requests.post(f"{url}/v1/images", files=files).status_code == 401
        auth = {"Authorization": "Bearer envkey"}
        up = requests.post(f"{url}/v1/images", files=files, headers=auth).json()
        r = requests.post(f"{url}/v1/images/{up['image_id']}/segment", json={"points": [[20, 30]]}, headers=auth)
        assert r.status_code == 200 and len(r.json()["annotations"]) == 1
        assert requests.get(f"{url}/openapi.json").json()["info"]["title"] == "vfm"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert "http://127.0.0.1" in proc.stdout.read()


@pytest.mark.parametrize("args, words", [
    (["--port", "70000"], "--port"),
    (["--max-upload-mb", "0"], "--max-upload-mb"),
    (["--max-pixels", "-5"], "--max-pixels"),
    (["--threads", "0"], "--threads"),
])
def test_bad_flags_one_line_error(args, words):
    r = subprocess.run([sys.executable, "-m", "vfm.cli", "serve", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in r.stderr
