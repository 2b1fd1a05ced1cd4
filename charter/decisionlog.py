"""The group-commit writer for decisions that change nothing.

A bare `authorize` changes no state, so its ledger event need not cost a transaction of
its own: events queue here and a background thread appends them in batches, at least
every `interval` seconds, and on `flush` or `close`. A failed write keeps the events
queued and is retried on the next round; a failure no retry can mend (Charter is not
configured right, e.g. the server secret is missing) is raised by `flush` at once.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from charter.canonical import canonical_json
from charter.errors import ConfigurationError
from charter.ledger import EventDraft, Ledger

log = logging.getLogger(__name__)


class DecisionLog:
    """Batches ledger events from many callers into few transactions."""

    def __init__(self, ledger: Ledger, interval: float = 0.05) -> None:
        self.ledger = ledger
        self.interval = interval
        self.last_error: BaseException | None = None
        self._misconfigured: ConfigurationError | None = None
        self._queue: deque[EventDraft] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._written = threading.Condition(self._lock)
        self._submitted = 0
        self._flushed = 0
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, draft: EventDraft) -> None:
        """Queue an event; it reaches the ledger within `interval` seconds."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the decision log is closed")
            self._queue.append(draft)
            self._submitted += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="charter-decision-log",
                                                daemon=True)
                self._thread.start()

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until everything submitted so far is in the ledger."""
        with self._lock:
            target = self._submitted
            self._wake.set()
            if not self._written.wait_for(
                    lambda: self._flushed >= target or self._misconfigured is not None,
                    timeout):
                raise TimeoutError(f"decisions were not written within {timeout}s: "
                                   f"{self.last_error!r}")
            if self._flushed < target and self._misconfigured is not None:
                raise self._misconfigured

    def close(self) -> None:
        """Write what is queued and stop the writer."""
        try:
            if self._thread is not None:
                self.flush()
        finally:
            with self._lock:
                self._closed = True
                if self._misconfigured is not None:
                    self._queue.clear()  # nothing can write them: let the writer stop
            self._wake.set()
            if self._thread is not None:
                self._thread.join(timeout=5)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            with self._lock:
                if self._closed and not self._queue:
                    return
                batch = list(self._queue)
            if batch:
                self._write(batch)

    def _drop_unwritable(self, batch: list[EventDraft]) -> None:
        """Drop events no retry can write (not canonical JSON, or not UTF-8), so they
        cannot block the queue; the rest stay queued."""
        bad = []
        for draft in batch:
            try:
                canonical_json([draft.actor, draft.subject, draft.payload]).encode("utf-8")
            except (TypeError, ValueError):
                bad.append(draft)
        if not bad:
            return
        log.error("dropping %d decision events that are not JSON: %r", len(bad), bad)
        with self._lock:
            for draft in bad:
                self._queue.remove(draft)
            self._flushed += len(bad)
            self._written.notify_all()

    def _write(self, batch: list[EventDraft]) -> None:
        try:
            with self.ledger.store.transaction() as conn:
                self.ledger.append_many(conn, batch)
        except ConfigurationError as error:  # kept queued, but waiting will not mend it
            self.last_error = error
            with self._lock:
                if self._misconfigured is None:
                    log.error("cannot write decisions to the ledger: %s", error.message)
                self._misconfigured = error
                self._written.notify_all()
            return
        except Exception as error:  # kept queued; retried on the next round
            self.last_error = error
            log.exception("writing %d decisions to the ledger failed; will retry", len(batch))
            self._drop_unwritable(batch)
            return
        with self._lock:
            for _ in batch:
                self._queue.popleft()
            self._flushed += len(batch)
            self.last_error = None
            self._misconfigured = None
            self._written.notify_all()
