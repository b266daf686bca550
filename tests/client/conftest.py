"""The client's tests use a real daemon with its WebSocket port open."""

from tests.web.conftest import web, web_settings

__all__ = ["web", "web_settings"]
