"""POST with retries: connection errors, timeouts, 429 and 5xx are tried again with
exponential backoff; any other answer is final."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from charter.engines.base import EngineError

RETRIED_STATUS = frozenset({429, 500, 502, 503, 504})


async def post_with_retries(client: httpx.AsyncClient, url: str, *, retries: int,
                            backoff_seconds: float = 0.2, **request: Any) -> httpx.Response:
    """The first final answer (a 2xx), or `EngineError` saying what went wrong last."""
    problem = ""
    for attempt in range(retries + 1):
        if attempt:
            await asyncio.sleep(min(backoff_seconds * 2 ** (attempt - 1), 5.0))
        try:
            response = await client.post(url, **request)
        except httpx.TimeoutException:
            problem = f"{url} did not answer within {client.timeout.read}s"
            continue
        except httpx.TransportError as error:
            problem = f"cannot reach {url}: {error}"
            continue
        if response.status_code in RETRIED_STATUS:
            problem = f"{url} answered {response.status_code}: {response.text[:200]}"
            continue
        if response.is_error:
            raise EngineError(f"{url} answered {response.status_code}: "
                              f"{response.text[:300]}")
        return response
    raise EngineError(f"{problem} (tried {retries + 1} times)")
