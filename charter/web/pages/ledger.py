"""The ledger: search its events by kind, subject and actor (newest first, in cursor
pages), read one event whole (its payload, digest, hash and neighbours), and verify the
hash chain on demand.

Who sees what mirrors `/v1/ledger`: payloads carry what members wrote, so a member reads
only the events it is the actor of and an admin reads them all; any member may verify."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import Connection, func, select

from charter.api.auth import SystemDep
from charter.api.routes.ledger import MAX_SEQ
from charter.errors import Forbidden, InvalidInput, NotFound
from charter.ledger import REDACTED, Event, VerifyReport
from charter.store.schema import events
from charter.system import Charter
from charter.web.session import ActingViewerDep, Viewer, ViewerDep
from charter.web.templating import render

router = APIRouter()

PAGE_SIZE = 50
KNOWN_KINDS = 200
"""The most event kinds the search offers (kinds are names in code: a few dozen)."""
SCAN_WINDOW = 100_000
"""The most seqs one page of a search combining filters looks through: the indexes
lead to each filter's events, not to where two filters meet."""
REDACTIONS_LOOKED_AT = 100
REDACTIONS_SHOWN = 20
"""Redacted seqs a verify result lists (it counts them all)."""

NO_NUL = r"^[^\x00]*$"
Seq = Annotated[int | None, Query(ge=1, le=MAX_SEQ)]
Kind = Annotated[str, Query(max_length=64, pattern=NO_NUL)]
Subject = Annotated[str, Query(max_length=256, pattern=NO_NUL)]
Actor = Annotated[str, Query(max_length=128, pattern=NO_NUL)]

ENTITY_PAGES = {"task": "/tasks/", "approval": "/approvals/", "member": "/members/"}
"""Subjects `prefix:id` that have a dashboard page of their own."""


def subject_page(subject: str) -> str | None:
    """The dashboard page of what an event is about (`task:…`, `approval:…`,
    `member:…`), or None."""
    prefix, _, identifier = subject.partition(":")
    page = ENTITY_PAGES.get(prefix)
    return None if page is None or not identifier else page + quote(identifier, safe="")


def may_read(viewer: Viewer, event: Event) -> bool:
    """As over the API: an admin reads every event, a member those it is the actor of."""
    return viewer.admin or event.actor == viewer.member


@dataclass(frozen=True)
class Search:
    """What the viewer searches for: exact kind, subject and actor (None: any)."""

    kind: str | None = None
    subject: str | None = None
    actor: str | None = None

    @classmethod
    def of(cls, viewer: Viewer, kind: str, subject: str, actor: str) -> Search:
        """The search a viewer may make: a member other than an admin searches only
        its own events (asking for another's is refused, as over the API)."""
        whose = actor.strip() or None
        if not viewer.admin:
            if whose not in (None, viewer.member):
                raise Forbidden(f"you are signed in as {viewer.member}; reading the events "
                                f"of {whose} needs an admin")
            whose = viewer.member
        return cls(kind.strip() or None, subject.strip() or None, whose)

    @property
    def filters(self) -> int:
        """How many fields the search sets."""
        return sum(value is not None for value in (self.kind, self.subject, self.actor))

    def narrowed(self, **exact: str) -> str:
        """The URL of this search with some fields set, e.g. `narrowed(kind="…")`."""
        return replace(self, **exact).link()

    def link(self, **bounds: int | None) -> str:
        """This search's URL, with a page bound (`before` or `after`) if given."""
        params = {name: value for name, value in (("kind", self.kind),
                                                  ("subject", self.subject),
                                                  ("actor", self.actor)) if value}
        params.update({name: str(value) for name, value in bounds.items()
                       if value is not None})
        return "/ledger" + (f"?{urlencode(params)}" if params else "")


@dataclass(frozen=True)
class EventPage:
    """Up to `PAGE_SIZE` events, newest first, with the bounds of the pages beside it."""

    events: list[Event]
    older: int | None = None
    """`before` for the next (older) page, if there is one."""
    newer: int | None = None
    """`after` for the previous (newer) page, if this is not the first."""
    searched: tuple[int, int] | None = None
    """The seqs searched, when a search combining filters stopped at `SCAN_WINDOW`
    events before filling the page (the pager continues beyond them)."""


def event_page(conn: Connection, system: Charter, search: Search, head: int, *,
               before: int | None = None, after: int | None = None) -> EventPage:
    """One page of matching events, read from the bound along one index (kind, subject
    or actor, else the seq key), stopping after a page and one. A search combining
    filters is also bounded to `SCAN_WINDOW` seqs, so one whose filters rarely meet
    costs no more than that."""
    window = SCAN_WINDOW if search.filters > 1 else None
    filters: dict[str, Any] = {"kind": search.kind, "subject": search.subject,
                               "actor": search.actor, "limit": PAGE_SIZE + 1}
    if after is not None:
        ceiling = None if window is None or after + window >= head else after + window
        found = list(system.ledger.read(conn, after=after, before=(
            None if ceiling is None else ceiling + 1), **filters))
        shown = found[:PAGE_SIZE][::-1]
        if len(found) > PAGE_SIZE:
            return EventPage(shown, older=shown[-1].seq, newer=shown[0].seq)
        return EventPage(shown, older=shown[-1].seq if shown else after + 1, newer=ceiling,
                         searched=None if ceiling is None else (after + 1, ceiling))
    top = head if before is None else min(before - 1, head)
    floor = 0 if window is None or top <= window else top - window
    found = list(system.ledger.read(conn, after=floor, before=before, newest_first=True,
                                    **filters))
    shown = found[:PAGE_SIZE]
    newer = None if before is None else (shown[0].seq if shown else before - 1)
    if len(found) > PAGE_SIZE:
        return EventPage(shown, older=shown[-1].seq, newer=newer)
    return EventPage(shown, older=floor + 1 if floor else None, newer=newer,
                     searched=(floor + 1, top) if floor else None)


def known_kinds(conn: Connection) -> list[str]:
    """The kinds of event the ledger holds, read by skipping through the kind index
    (one seek per kind, however many events there are)."""
    kinds = select(func.min(events.c.kind).label("kind")).cte("kinds", recursive=True)
    following = select(func.min(events.c.kind)).where(events.c.kind > kinds.c.kind)
    kinds = kinds.union_all(select(following.scalar_subquery())
                            .where(kinds.c.kind.is_not(None)))
    query = select(kinds.c.kind).where(kinds.c.kind.is_not(None)).limit(KNOWN_KINDS)
    return [str(kind) for kind in conn.execute(query).scalars()]


def _check_bounds(before: int | None, after: int | None) -> None:
    if before is not None and after is not None:
        raise InvalidInput("a page is bounded by `before` (older events) or `after` "
                           "(newer events), not both; follow the page links")


@router.get("/ledger")
def ledger_page(request: Request, system: SystemDep, viewer: ViewerDep,
                kind: Kind = "", subject: Subject = "", actor: Actor = "",
                before: Seq = None, after: Seq = None) -> Response:
    _check_bounds(before, after)
    search = Search.of(viewer, kind, subject, actor)
    with system.store.reading() as conn:
        head = system.ledger.checkpoint(conn)
        page = event_page(conn, system, search, head.seq, before=before, after=after)
        kinds = known_kinds(conn)
    return render(request, "ledger.html", viewer, section="ledger", title="Ledger",
                  search=search, page=page, kinds=kinds, head=head, paged=(before or after),
                  subject_page=subject_page, scan_window=SCAN_WINDOW)


# -- one event ------------------------------------------------------------------------

@dataclass(frozen=True)
class Redaction:
    """The event that erased a payload: its seq and time; its actor and reason only
    where the viewer may read that event."""

    seq: int
    at: str
    actor: str | None
    reason: str | None


@dataclass(frozen=True)
class EventView:
    event: Event
    redaction: Redaction | None = None
    redacts: int | None = None
    """For a redaction event: the seq whose payload it erased."""
    previous: int | None = None
    next: int | None = None


def read_event(conn: Connection, seq: int) -> Event:
    row = conn.execute(select(events).where(events.c.seq == seq)).first()
    if row is None:
        head = conn.execute(select(func.max(events.c.seq))).scalar()
        raise NotFound(f"no ledger event with seq {seq} (the ledger runs from 1 to "
                       f"{head or 0})")
    return Event.from_row(row)


def redaction_of(conn: Connection, event: Event, viewer: Viewer) -> Redaction | None:
    """The redaction naming `event`: it has the same subject and comes after it."""
    query = (select(events).where(events.c.kind == REDACTED,
                                  events.c.subject == event.subject,
                                  events.c.seq > event.seq)
             .order_by(events.c.seq).limit(REDACTIONS_LOOKED_AT))
    for row in conn.execute(query):
        found = Event.from_row(row)
        payload = found.payload or {}
        if payload.get("seq") == event.seq:
            if not may_read(viewer, found):
                return Redaction(found.seq, found.at, None, None)
            return Redaction(found.seq, found.at, found.actor, str(payload.get("reason", "")))
    return None


def neighbours(conn: Connection, event: Event, viewer: Viewer) -> tuple[int | None,
                                                                        int | None]:
    """The events before and after `event` that the viewer may read: the chain's
    neighbours for an admin, else the member's own events either side."""
    if viewer.admin:
        head = conn.execute(select(func.max(events.c.seq))).scalar() or 0
        return (event.seq - 1 if event.seq > 1 else None,
                event.seq + 1 if event.seq < head else None)
    mine = events.c.actor == viewer.member
    previous = conn.execute(select(events.c.seq).where(mine, events.c.seq < event.seq)
                            .order_by(events.c.seq.desc()).limit(1)).scalar()
    following = conn.execute(select(events.c.seq).where(mine, events.c.seq > event.seq)
                             .order_by(events.c.seq).limit(1)).scalar()
    return previous, following


@router.get("/ledger/{seq}")
def event_detail(request: Request, system: SystemDep, viewer: ViewerDep,
                 seq: Annotated[int, Path(ge=1, le=MAX_SEQ)]) -> Response:
    with system.store.reading() as conn:
        event = read_event(conn, seq)
        if not may_read(viewer, event):
            raise Forbidden(f"event {seq} is not one of yours: a member reads only the "
                            "events it is the actor of, an admin reads them all")
        redaction = None if event.payload is not None else redaction_of(conn, event, viewer)
        previous, following = neighbours(conn, event, viewer)
    redacts = None
    if event.kind == REDACTED and event.payload is not None:
        target = event.payload.get("seq")
        redacts = target if isinstance(target, int) else None
    view = EventView(event, redaction, redacts, previous, following)
    return render(request, "ledger_event.html", viewer, section="ledger",
                  title=f"Event {seq}", view=view, subject_page=subject_page,
                  payload_text=None if event.payload is None else json.dumps(
                      event.payload, indent=2, sort_keys=True, ensure_ascii=False))


# -- verify ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Verification:
    """A verify run: the report and how long it took."""

    report: VerifyReport
    seconds: float

    @property
    def redacted_shown(self) -> tuple[int, ...]:
        return self.report.redacted[:REDACTIONS_SHOWN]


@router.post("/ledger/verify")
def verify(request: Request, system: SystemDep, viewer: ActingViewerDep) -> Response:
    """Recompute the whole chain and the signed head (as `/v1/ledger/verify`, which any
    member may call). It reads every event, so it is an action, not part of a page."""
    started = time.perf_counter()
    report = system.verify_ledger()
    verification = Verification(report, time.perf_counter() - started)
    template = ("ledger_verify_result.html" if request.headers.get("HX-Request")
                else "ledger_verify.html")
    return render(request, template, viewer, section="ledger", title="Ledger verified",
                  verification=verification)
