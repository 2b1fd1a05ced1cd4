"""The web dashboard: server-rendered pages (Jinja2 and htmx, vendored static files, no
build step) over the same Charter and the same tokens as the API."""

from charter.web.app import install_dashboard

__all__ = ["install_dashboard"]
