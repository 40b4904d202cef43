"""vfm as a service: a FastAPI app (``create_app``) with a click-to-segment web page at ``/``."""

from vfm.server.config import ServerConfig

__all__ = ["ServerConfig", "create_app"]


def create_app(config: ServerConfig | None = None):
    from vfm.server.app import create_app as _create

    return _create(config)
