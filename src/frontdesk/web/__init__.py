"""The HTTP adapter: protocol endpoints and server-rendered pages (Starlette)."""

from .app import create_app

__all__ = ["create_app"]
