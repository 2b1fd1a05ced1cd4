"""A cap on the size of a request's body, answered with 413 before the body is read
(by its declared length) or as soon as it runs past the cap (a body sent in chunks)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from charter.api.errors import error_response

MAX_BODY_BYTES = 8 * 2**20
"""The largest request body: room for an org file of a million characters as JSON."""


class BodyLimit:
    """ASGI middleware refusing request bodies over `limit` bytes."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if declared.isdigit() and int(declared) > self.limit:
                await self._refuse(scope, receive, send, int(declared))
                return
            await self.app(scope, receive, send)
            return
        # No declared length: read the body first, refusing it once it is too large.
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(scope, receive, send, size)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: int) -> None:
        answer = error_response(413, "TooLarge", f"the request body is too large: {size:,} "
                                                 f"bytes or more, and a request may carry at "
                                                 f"most {self.limit:,}")
        await answer(scope, receive, send)
