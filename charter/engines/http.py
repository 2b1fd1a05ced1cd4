"""The `http` engine: a webhook decides, Charter acts.

Charter POSTs the task as JSON to the member's `url`:

    {"task": {...}, "member": "buyer-bot-1", "handoff": {...} | null,
     "resume": {...} | null, "settled": [{...}, ...]}

signed with the secret in the environment variable `secret_env` (see
`charter.engines.signing`; without `secret_env` it is sent unsigned). The webhook
answers with what it decided:

    {"success": true, "outputs": ..., "reason": "", "cost": 0, "usage": {},
     "actions": [{"action": "purchase.create", "resource": "Vendor::globex",
                  "context": {"amount": 800}, "key": ""}],
     "resume": {...} | null}

The webhook never acts itself: Charter carries out each requested action through the
action gate, in order, so each is authorized and performed at most once. The first one
that is not performed (denied, waiting for approval, failed) stops the rest. A denied or
failed action fails the attempt; one waiting for approval pauses the task, and when it
is settled the webhook is called again with `settled` and the `resume` it returned.

Connection errors, timeouts, 429 and 5xx answers are retried `retries` times with
exponential backoff (retrying is safe: the webhook only decides, and what it asks for is
done by Charter, once per key); any other refusal, or a reply that does not match the
shape above, fails the attempt with a message saying what was wrong.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from charter.engines.base import ActionResult, EngineError, EngineResult, RunContext
from charter.engines.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from charter.handoff import HandoffPacket
from charter.tasks import Task
from charter.types import HttpEngine

FIRST_DELAY = 0.2
"""Seconds before the first retry; each later one waits twice as long as the last."""
MAX_DELAY = 5.0
"""The longest wait between two tries (also caps a server's `Retry-After`)."""
SHOWN = 300
"""How much of a refused request's body an error message quotes."""


class RequestedAction(BaseModel):
    """An action the webhook asks Charter to carry out."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(min_length=1)
    resource: str = Field(min_length=1)
    context: dict[str, Any] = Field(default_factory=dict)
    key: str = ""


class WebhookReply(BaseModel):
    """What a webhook answers."""

    model_config = ConfigDict(extra="forbid")

    success: StrictBool = True
    outputs: Any = None
    reason: str = ""
    cost: Decimal = Field(Decimal(0), ge=0, allow_inf_nan=False)
    usage: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    actions: list[RequestedAction] = Field(default_factory=list)
    resume: dict[str, Any] | None = None


class Webhook:
    """Runs a task by asking a webhook what to do, then doing it through Charter."""

    def __init__(self, spec: HttpEngine) -> None:
        self.spec = spec

    async def run(self, task: Task, handoff: HandoffPacket | None,
                  context: RunContext) -> EngineResult:
        secret = self._secret()
        body = json.dumps({
            "task": task.to_json(), "member": context.member.id,
            "handoff": None if handoff is None else handoff.to_json(),
            "resume": context.resume, "settled": [r.to_json() for r in context.settled],
        }, default=_plain, separators=(",", ":")).encode()
        reply = parse_reply(await self._post(body, secret), self.spec.url)
        done: list[ActionResult] = []
        for requested in reply.actions:
            result = await context.act(requested.action, requested.resource,
                                       requested.context, key=requested.key)
            done.append(result)
            if result.status != "performed":
                break
        refused = [r.message for r in done if r.status in ("denied", "failed", "rejected")]
        return EngineResult(success=reply.success and not refused, outputs=reply.outputs,
                            reason="; ".join(refused) or reply.reason, cost=reply.cost,
                            usage=reply.usage, actions=tuple(done), resume=reply.resume)

    def _secret(self) -> str | None:
        name = self.spec.secret_env
        if name is None:
            return None
        secret = os.environ.get(name)
        if not secret:
            raise EngineError(f"the webhook at {self.spec.url} signs with a secret from the "
                              f"environment variable {name}, which is not set: set {name} "
                              "in the worker's environment")
        return secret

    async def _post(self, body: bytes, secret: str | None) -> Any:
        """POST `body`, retrying what may pass; the reply's JSON."""
        tries = self.spec.retries + 1
        async with httpx.AsyncClient(timeout=self.spec.timeout.total_seconds()) as client:
            number = 0
            while True:
                number += 1
                try:
                    return await self._post_once(client, body, secret)
                except _Retryable as retry:
                    if number >= tries:
                        times = "once" if tries == 1 else f"{tries} times"
                        raise EngineError(f"the webhook at {self.spec.url} {retry} (tried "
                                          f"{times})") from None
                    backoff = min(FIRST_DELAY * 2 ** (number - 1), MAX_DELAY)
                    await asyncio.sleep(max(retry.wait, backoff))

    async def _post_once(self, client: httpx.AsyncClient, body: bytes,
                         secret: str | None) -> Any:
        url = self.spec.url
        seconds = self.spec.timeout.total_seconds()
        try:
            async with asyncio.timeout(seconds):
                response = await client.post(url, content=body, headers=_headers(body, secret))
        except TimeoutError:
            raise _Retryable(f"did not answer within {seconds:g}s") from None
        except httpx.TransportError as error:
            raise _Retryable(f"could not be reached ({type(error).__name__}: {error})") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise _Retryable(f"answered HTTP {response.status_code} {_quote(response.text)}",
                             _retry_after(response))
        if not response.is_success:
            raise EngineError(f"the webhook at {url} refused the task: HTTP "
                              f"{response.status_code} {_quote(response.text)}")
        try:
            return response.json()
        except ValueError:
            raise EngineError(f"the webhook at {url} answered with something that is not "
                              f"JSON: {_quote(response.text)}") from None


class _Retryable(Exception):
    """A try that may pass next time: the message says what went wrong."""

    def __init__(self, problem: str, wait: float = 0.0) -> None:
        super().__init__(problem)
        self.wait = wait


def parse_reply(data: Any, url: str) -> WebhookReply:
    """The webhook's reply, checked; `EngineError` naming each field that is wrong."""
    try:
        return WebhookReply.model_validate(data)
    except ValidationError as error:
        wrong = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'the reply'}: "
            f"{problem['msg']}" for problem in error.errors())
        raise EngineError(f"the webhook at {url} sent an invalid reply: {wrong}") from None


def _headers(body: bytes, secret: str | None) -> dict[str, str]:
    timestamp = int(time.time())
    headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: str(timestamp)}
    if secret is not None:
        headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
    return headers


def _retry_after(response: httpx.Response) -> float:
    """The server's `Retry-After` in seconds (capped), or 0 when it gave none."""
    try:
        seconds = float(response.headers.get("Retry-After", 0))
    except ValueError:
        return 0.0
    return min(seconds, MAX_DELAY) if math.isfinite(seconds) and seconds > 0 else 0.0


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= SHOWN else text[:SHOWN] + "…")


def _plain(value: Any) -> Any:
    """JSON for what the task's records may hold besides JSON types."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return list(value)
    return str(value)
