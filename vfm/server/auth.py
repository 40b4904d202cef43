"""Bearer-token check for /v1 routes when an API key is configured."""

from __future__ import annotations

import hmac


def authorized(header: str | None, api_key: str | None) -> bool:
    """True when no key is configured, or ``header`` is ``Bearer <key>``."""
    if not api_key:
        return True
    if not header:
        return False
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), api_key.encode())
