"""The image of a Label Studio task, from the URL in its data.

Label Studio hands an ML backend the task's ``data`` as stored, so the image is one of:

* ``/data/upload/<project>/<file>`` — an uploaded file: fetched from the Label Studio host;
* ``/data/local-files/?d=<path>`` — local files storage: read from ``root / path`` when vfm runs
  beside Label Studio (``vfm serve --label-studio-root``, by default Label Studio's own
  ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT``), else fetched from the host;
* any other ``/...`` path (e.g. ``/tasks/<id>/presign?fileuri=...`` for cloud storage with proxying)
  — fetched from the host;
* ``http(s)://...`` — fetched as is (the token is sent only to the Label Studio host itself);
* ``data:image/...;base64,...`` — decoded in place.

The host and token are ``vfm serve --label-studio-url/--label-studio-token`` (env ``LABEL_STUDIO_URL``
/ ``LABEL_STUDIO_API_KEY``), else the ``hostname`` / ``access_token`` Label Studio sent to ``/setup``.
A token with two dots is a personal access token (a JWT refresh token): it is exchanged at
``/api/token/refresh/`` for short-lived access tokens, sent as ``Authorization: Bearer``; any other
token is a legacy token, sent as ``Authorization: Token``.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from vfm.errors import ImageError
from vfm.io.image import LoadedImage, load_image

TIMEOUT_S = 30.0


class ImageFetchError(ImageError):
    """A task's image could not be fetched or read."""

    http_status = 422


@dataclass(frozen=True)
class Host:
    url: str | None = None
    token: str | None = None

    @property
    def origin(self) -> str | None:
        if not self.url:
            return None
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}".lower()


def _jwt_expiry(token: str) -> float:
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims.get("exp", 0))
    except (ValueError, IndexError, binascii.Error, AttributeError, TypeError):
        return 0.0


class ImageFetcher:
    """Reads task images; ``max_bytes`` caps a download and ``max_pixels`` the decoded size."""

    def __init__(self, *, root: str | Path | None = None, max_bytes: int = 50 << 20, max_pixels: int | None = None):
        self.root = Path(root).expanduser().resolve() if root else None
        self.max_bytes = int(max_bytes)
        self.max_pixels = max_pixels
        self._access: dict[tuple[str, str], tuple[str, float]] = {}  # (origin, refresh) -> (access, expiry)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ entry point
    def load(self, ref: object, host: Host) -> LoadedImage:
        if not isinstance(ref, str) or not ref.strip():
            raise ImageFetchError(f"the task's image field holds {ref!r}, not an image URL")
        ref = ref.strip()
        if ref.startswith("data:"):
            return self._data_uri(ref)
        parts = urlsplit(ref)
        if parts.scheme in ("http", "https"):
            same = host.origin is not None and f"{parts.scheme}://{parts.netloc}".lower() == host.origin
            return self._decode(self._get(ref, host if same else Host()), ref)
        if parts.scheme or not ref.startswith("/"):
            raise ImageFetchError(
                f"cannot fetch '{ref[:200]}': vfm reads Label Studio URLs (/data/upload/..., /data/local-files/?d=...), "
                "http(s) URLs and data: URIs; for cloud storage turn on the storage's pre-signed URLs or proxying")
        if parts.path.rstrip("/") == "/data/local-files" and self.root is not None:
            path = self._local_path(parts.query, ref)
            if path.is_file() or not host.url:
                return self._decode(path, ref)
        if not host.url:
            raise ImageFetchError(
                f"cannot fetch '{ref[:200]}': no Label Studio host is known; start vfm serve with --label-studio-url URL "
                "--label-studio-token TOKEN (or --label-studio-root DIR for local files)")
        return self._decode(self._get(host.url.rstrip("/") + ref, host), ref)

    # ------------------------------------------------------------------ sources
    def _local_path(self, query: str, ref: str) -> Path:
        d = parse_qs(query).get("d")
        if not d or not d[0]:
            raise ImageFetchError(f"'{ref[:200]}' has no ?d=PATH; Label Studio local files URLs are /data/local-files/?d=PATH")
        path = (self.root / unquote(d[0]).lstrip("/")).resolve()
        if not path.is_relative_to(self.root):
            raise ImageFetchError(f"'{ref[:200]}' points outside --label-studio-root {self.root}")
        if not path.is_file() and path.exists():
            raise ImageFetchError(f"'{ref[:200]}' is not a file under --label-studio-root {self.root}")
        return path

    def _data_uri(self, ref: str) -> LoadedImage:
        head, sep, payload = ref.partition(",")
        if not sep or ";base64" not in head:
            raise ImageFetchError("a data: image URI must be base64 (data:image/png;base64,...)")
        if len(payload) * 3 // 4 > self.max_bytes:
            raise ImageFetchError(f"the data: image is over the server's {self.max_bytes / 1048576:g} MB upload limit")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise ImageFetchError("the data: image URI is not valid base64") from None
        return self._decode(data, "data: URI")

    def _decode(self, source, ref: str) -> LoadedImage:
        try:
            return load_image(source, max_pixels=self.max_pixels, name=ref[:200])
        except ImageError as exc:
            if isinstance(source, Path) and not source.exists():
                raise ImageFetchError(f"'{ref[:200]}' is not under --label-studio-root {self.root} ({source} is missing)") from None
            raise type(exc)(f"the image of '{ref[:200]}' cannot be read: {exc}") from None

    # ------------------------------------------------------------------ HTTP
    def _auth(self, host: Host, *, renew: bool = False) -> dict[str, str]:
        token = host.token
        if not token:
            return {}
        if token.count(".") != 2:
            return {"Authorization": f"Token {token}"}
        key = (host.origin or "", token)
        with self._lock:
            cached = self._access.get(key)
            if cached and not renew and cached[1] > time.time() + 10:
                return {"Authorization": f"Bearer {cached[0]}"}
        import httpx

        try:
            r = httpx.post(host.url.rstrip("/") + "/api/token/refresh/", json={"refresh": token}, timeout=TIMEOUT_S)
        except httpx.HTTPError as exc:
            raise ImageFetchError(f"cannot reach Label Studio at {host.url} to exchange the personal access token ({exc})") from None
        if r.status_code != 200 or "access" not in _json(r):
            raise ImageFetchError(f"Label Studio at {host.url} refused the personal access token ({r.status_code}); "
                                  "create a new one under Account & Settings and restart vfm serve with it")
        access = _json(r)["access"]
        with self._lock:
            self._access[key] = (access, _jwt_expiry(access) or time.time() + 240)
        return {"Authorization": f"Bearer {access}"}

    def _get(self, url: str, host: Host) -> bytes:
        import httpx

        for attempt in (0, 1):
            try:
                with httpx.stream("GET", url, headers=self._auth(host, renew=attempt == 1), timeout=TIMEOUT_S,
                                  follow_redirects=True) as r:
                    if r.status_code == 401 and attempt == 0 and host.token and host.token.count(".") == 2:
                        continue  # an expired access token: exchange the refresh token again
                    if r.status_code != 200:
                        raise ImageFetchError(_status_message(r.status_code, url, host))
                    length = r.headers.get("content-length")
                    if length and length.isdigit() and int(length) > self.max_bytes:
                        raise ImageFetchError(f"{url[:200]} is {int(length) / 1048576:.1f} MB, over the server's "
                                              f"{self.max_bytes / 1048576:g} MB limit (--max-upload-mb)")
                    body = bytearray()
                    for chunk in r.iter_bytes():
                        body += chunk
                        if len(body) > self.max_bytes:
                            raise ImageFetchError(f"{url[:200]} is over the server's {self.max_bytes / 1048576:g} MB "
                                                  "limit (--max-upload-mb)")
                    return bytes(body)
            except httpx.HTTPError as exc:
                raise ImageFetchError(f"cannot fetch {url[:200]} ({type(exc).__name__}: {exc}); is Label Studio "
                                      "running there? (vfm serve --label-studio-url)") from None
        raise ImageFetchError(_status_message(401, url, host))


def _json(response) -> dict:
    try:
        doc = response.json()
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _status_message(status: int, url: str, host: Host) -> str:
    if status in (401, 403):
        hint = ("give vfm serve --label-studio-token with a personal access token (Account & Settings), or enable "
                "legacy tokens for the organization") if host.token else "start vfm serve with --label-studio-token TOKEN"
        return f"Label Studio refused {url[:200]} ({status}); {hint}"
    if status == 404 and "/data/local-files" in url:
        return (f"{url[:200]} was not found (404): Label Studio serves local files only with "
                "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true and a local storage holding the file "
                "(or give vfm serve --label-studio-root DIR to read them from disk)")
    return f"{url[:200]} answered {status}, not an image"
