"""The app `charter serve` runs: a Charter opened from the settings (`CHARTER_DB`…),
closed when the server stops. One per server process."""

from __future__ import annotations

from fastapi import FastAPI

from charter.api.app import create_app
from charter.settings import Settings
from charter.store import open_store
from charter.system import Charter


def app_from_settings() -> FastAPI:
    """The application factory uvicorn calls in each worker process."""
    settings = Settings()
    system = Charter(open_store(settings.db, settings), settings)
    return create_app(system, owns_system=True,
                      housekeeping=settings.housekeeping_interval)
