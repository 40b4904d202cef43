"""API key check for /v1 and the Label Studio routes when an API key is configured."""

from __future__ import annotations

import base64
import binascii
import hmac


def authorized(header: str | None, api_key: str | None) -> bool:
    """True when no key is configured, or ``header`` is ``Bearer <key>`` or Basic auth with the key as
    password (what Label Studio's ML backend connection sends; any user name)."""
    if not api_key:
        return True
    if not header:
        return False
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() == "basic":
        try:
            token = base64.b64decode(token, validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, ValueError):
            return False
    elif scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.encode(), api_key.encode())
