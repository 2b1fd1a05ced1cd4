"""Every error the API answers has one shape: `{"error": {"type", "message", "details"}}`,
with the status its `CharterError` class carries."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from charter.errors import CharterError

log = logging.getLogger("charter.api")

REFUSALS = {401: "unauthenticated", 403: "forbidden", 429: "rate_limited"}
"""Statuses counted (and logged) as refused calls."""

ERROR_EXAMPLE: dict[str, Any] = {
    "error": {"type": "NotFound", "message": "no task 1b2c…", "details": None}}


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(description="The error's class, e.g. NotFound, Forbidden.")
    message: str = Field(description="What went wrong and how to fix it.")
    details: Any = Field(description="Structured detail (e.g. each invalid field), or null.")


class ErrorBody(BaseModel):
    """The one shape of every error the API answers."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [ERROR_EXAMPLE]})
    error: ErrorDetail


def error_response(status: int, kind: str, message: str, details: Any = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message, "details": details}},
                        status_code=status, headers=headers)


def answer(request: Request, status: int, kind: str, message: str, details: Any = None,
           headers: dict[str, str] | None = None) -> Response:
    """The error as JSON, or as a page where a dashboard page asked for one (it sets
    `request.state.error_page`)."""
    error_page = getattr(request.state, "error_page", None)
    if error_page is not None:
        page: Response = error_page(request, status, kind, message)
        return page
    return error_response(status, kind, message, details, headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CharterError)
    async def charter_error(request: Request, error: CharterError) -> Response:
        headers = getattr(error, "headers", None)
        if error.status in REFUSALS:
            app.state.metrics.refused.labels(REFUSALS[error.status]).inc()
            log.info("refused %s %s: %s", request.method, request.url.path, error.message)
        return answer(request, error.status, type(error).__name__, error.message,
                      _plain(error.details), headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        problems = [{"where": ".".join(str(part) for part in problem.get("loc", ())),
                     "problem": problem.get("msg", "")} for problem in error.errors()]
        summary = "; ".join(f"{p['where']}: {p['problem']}" for p in problems[:5])
        return answer(request, 422, "InvalidInput", f"the request is not valid: {summary}",
                      problems)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        kind = {404: "NotFound", 405: "MethodNotAllowed", 401: "Unauthenticated"}.get(
            error.status_code, "HTTPError")
        return answer(request, error.status_code, kind, str(error.detail),
                      headers=getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return answer(request, 500, "InternalError",
                      "Charter failed unexpectedly; the server log has the details")


def _plain(details: Any) -> Any:
    """Details as JSON can carry them."""
    from charter.canonical import json_safe
    return json_safe(details)
