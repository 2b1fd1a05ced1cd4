"""Charter's HTTP API: FastAPI under `/v1`, authenticated with bearer tokens."""

from charter.api.app import create_app

__all__ = ["create_app"]
