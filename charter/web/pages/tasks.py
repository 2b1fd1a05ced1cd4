"""Tasks: a filterable list (newest first, in cursor pages), and each task's page with
its fields, its timeline from the ledger (the allocator's explanation on each
assignment, attempts, approvals, outcomes) and the hand-off packet its next holder gets.
Its requester or an admin may cancel an open task, as over the API."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from charter.api.auth import SystemDep
from charter.api.pages import decode_cursor, encode_cursor
from charter.errors import Forbidden, InvalidInput
from charter.ledger import format_time
from charter.org import Org
from charter.tasks import OPEN_STATES, Task
from charter.types import Identifier
from charter.web import timeline
from charter.web.session import ActingViewerDep, Viewer, ViewerDep
from charter.web.templating import render

router = APIRouter()

PAGE_SIZE = 50
STATES = ("queued", "assigned", "running", "awaiting_approval", "done", "failed",
          "cancelled")
REASON_LIMIT = 2000
_LIMITS = {"assignee": 64, "requester": 128, "subject": 256}
"""The longest value each text filter can match (the columns' widths)."""


@dataclass(frozen=True)
class TaskFilters:
    """What the list is narrowed to; None leaves a column unfiltered."""

    state: str | None = None
    type: str | None = None
    assignee: str | None = None
    requester: str | None = None
    subject: str | None = None

    @property
    def active(self) -> bool:
        return any(value is not None for value in asdict(self).values())

    def query(self, **more: str) -> str:
        """The list's query string with these filters (and `more`, e.g. a cursor)."""
        given = {key: value for key, value in asdict(self).items() if value is not None}
        return urlencode({**given, **more})


def filters_from(org: Org, state: str | None, task_type: str | None,
                 assignee: str | None, requester: str | None,
                 subject: str | None) -> TaskFilters:
    """The filters a query string asks for, or `InvalidInput` naming the bad one. An
    empty field (a plain form sends every field) filters nothing."""
    def given(value: str | None) -> str | None:
        return None if value is None or not value.strip() else value.strip()

    state, task_type = given(state), given(task_type)
    if state is not None and state not in STATES:
        raise InvalidInput(f"unknown task state {state!r} in the filter: choose one of "
                           f"{', '.join(STATES)}, or leave it empty for every state")
    if task_type is not None and task_type not in org.task_types:
        raise InvalidInput(f"unknown task type {task_type!r} in the filter: org {org.id} "
                           f"declares {', '.join(org.task_types)}")
    texts = {"assignee": given(assignee), "requester": given(requester),
             "subject": given(subject)}
    for name, value in texts.items():
        if value is not None and (len(value) > _LIMITS[name] or "\x00" in value):
            raise InvalidInput(f"the {name} filter must be text of at most "
                               f"{_LIMITS[name]} characters (no NUL); got "
                               f"{len(value)} characters")
    return TaskFilters(state, task_type, **texts)


def page_key(cursor: str | None) -> tuple[str, str] | None:
    """The (created_at, id) a page link carries, or None for the first page."""
    try:
        key = decode_cursor(cursor, (str, str))
    except InvalidInput:
        raise InvalidInput("that page link is broken or was not made by Charter: open "
                           "the list again from its first page") from None
    return None if key is None else (key[0], key[1])


@router.get("/tasks")
def task_list(request: Request, system: SystemDep, viewer: ViewerDep,
              state: str | None = None, type: str | None = None,
              assignee: str | None = None, requester: str | None = None,
              subject: str | None = None, cursor: str | None = None) -> Response:
    org = system.org
    filters = filters_from(org, state, type, assignee, requester, subject)
    after = page_key(cursor)
    found = system.task_page(after=after, limit=PAGE_SIZE + 1, state=filters.state,
                             assignee=filters.assignee, task_type=filters.type,
                             requester=filters.requester, subject=filters.subject,
                             newest_first=True)
    shown = found[:PAGE_SIZE]
    next_cursor = (encode_cursor([shown[-1].created_at, shown[-1].id])
                   if len(found) > PAGE_SIZE else None)
    context: dict[str, Any] = {
        "tasks": shown, "filters": filters, "next_cursor": next_cursor,
        "paged": after is not None, "now": format_time(system.clock.now()),
        "open_states": OPEN_STATES}
    fragment = (request.headers.get("HX-Request") == "true"
                and request.headers.get("HX-Target") == "task-results"
                and not request.headers.get("HX-History-Restore-Request"))
    if fragment:  # the filter form or a pager link, enhanced: only the results change
        return render(request, "task_results.html", viewer, **context)
    return render(request, "tasks.html", viewer, section="tasks", title="Tasks",
                  states=STATES, task_types=sorted(org.task_types),
                  members=sorted(org.members), **context)


def may_cancel(task: Task, viewer: Viewer) -> bool:
    """The API's rule: the task's requester or an admin, while it is open."""
    return task.state in OPEN_STATES and (task.requester == viewer.member or viewer.admin)


@router.get("/tasks/{task_id}")
def task_page(task_id: Identifier, request: Request, system: SystemDep,
              viewer: ViewerDep, cancelled: str | None = None) -> Response:
    task = system.task(task_id)
    # As over the API: the packet the viewer would get, memories only as far as the
    # policies let the viewer read them.
    packet = system.handoff(task_id, holder=viewer.member)
    with system.store.reading() as conn:
        history, truncated = timeline.read_events(conn, task_id,
                                                  [a.id for a in packet.approvals])
    entries = timeline.timeline(history)
    outcome = next((e for e in reversed(history) if e.kind == "outcome.recorded"), None)
    assignment = next((e for e in reversed(history) if e.kind == "task.assigned"), None)
    return render(request, "task.html", viewer, section="tasks",
                  title=f"Task {task_id[:8]}", task=task, packet=packet,
                  entries=entries, truncated=truncated, limit=timeline.LIMIT,
                  latest_assignment=None if assignment is None else assignment.seq,
                  # Shown on the assignment it explains, unless the task waits to be
                  # (re)assigned: then it says who would get it now.
                  explain_apart=assignment is None or task.state == "queued",
                  outcome=None if outcome is None else outcome.payload,
                  explanation=None if task.state == "queued" else system.explain_task(task_id),
                  can_cancel=may_cancel(task, viewer),
                  flash="You cancelled this task." if cancelled is not None
                  and task.state == "cancelled" else None)


@router.get("/tasks/{task_id}/explanation")
def task_explanation(task_id: Identifier, request: Request, system: SystemDep,
                     viewer: ViewerDep) -> Response:
    """Why the task went to its member; for a queued one, who would get it now (the task
    page loads this after it shows, as the allocator may first need a while)."""
    task = system.task(task_id)
    explanation = system.explain_task(task_id)
    if request.headers.get("HX-Request") == "true":
        return render(request, "task_explanation.html", viewer, explanation=explanation)
    return render(request, "task_explained.html", viewer, section="tasks",
                  title=f"Task {task_id[:8]}", task=task, explanation=explanation)


@router.post("/tasks/{task_id}/cancel")
def cancel(task_id: Identifier, request: Request, system: SystemDep,
           viewer: ActingViewerDep,
           reason: Annotated[str, Form(max_length=REASON_LIMIT)] = "") -> Response:
    task = system.task(task_id)
    if task.requester != viewer.member and not viewer.admin:
        raise Forbidden(f"only {task.requester} (who asked for it) or an admin may cancel "
                        f"task {task_id}")
    if "\x00" in reason:
        raise InvalidInput("the reason may not contain the NUL character")
    system.cancel_task(task_id, actor=viewer.member,
                       reason=reason.strip() or "cancelled from the dashboard")
    target = f"/tasks/{task_id}?cancelled=1"
    if request.headers.get("HX-Request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)
