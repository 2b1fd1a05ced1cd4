"""A task's timeline as people read it: its own ledger events (submitted, assigned,
claimed, failed, fallback steps, outcomes…) and those of the approvals asked for it,
in ledger order, each with a one-line summary.

The events are read by subject (`task:{id}` and `approval:{id}`), which the ledger
indexes, so a task's timeline costs the same however long the ledger is."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, select

from charter.ledger import Event
from charter.store.schema import events
from charter.web.templating import when

LIMIT = 500
"""Events a timeline shows at most; the ledger keeps the rest (heartbeats pile up on a
long attempt, and are folded into one entry anyway)."""


@dataclass(frozen=True)
class Candidate:
    """A member the allocator weighed for the task, with its utility terms when it was
    eligible."""

    member: str
    picked: bool
    reason: str
    terms: dict[str, float] | None


@dataclass(frozen=True)
class Entry:
    """One line of the timeline: an event, or a run of heartbeats folded into one."""

    seq: int
    at: str
    kind: str
    actor: str
    summary: str
    tone: str = ""
    """`ok`, `warn` or `bad` (how the step went), or empty."""
    count: int = 1
    """How many events the entry stands for (heartbeats in a row are one entry)."""
    approval: str | None = None
    """The approval the event is about, to link to."""
    explanation: dict[str, Any] | None = None
    """For an assignment: the allocator's explanation as the ledger keeps it."""
    attempt: int | None = None
    """For a claim: the attempt it started."""
    detail: Any = None
    """What else is worth showing (a completion's result), as JSON."""
    candidates: tuple[Candidate, ...] = ()
    """For an assignment by the allocator: the pick first, then each eligible runner-up."""
    ineligible: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """For an assignment by the allocator: why the others could not take it, each
    reason with the members it kept out."""


def read_events(conn: Connection, task_id: str, approval_ids: Iterable[str],
                limit: int | None = None) -> tuple[list[Event], bool]:
    """The task's events and its approvals', oldest first; and whether there were more
    than `limit` (default `LIMIT`)."""
    limit = LIMIT if limit is None else limit
    subjects = [f"task:{task_id}", *(f"approval:{a}" for a in approval_ids)]
    query = (select(events).where(events.c.subject.in_(subjects))
             .order_by(events.c.seq).limit(limit + 1))
    found = [Event.from_row(row) for row in conn.execute(query)]
    return found[:limit], len(found) > limit


def timeline(history: Sequence[Event]) -> list[Entry]:
    """The entries for `history` (oldest first), heartbeats in a row folded into one."""
    entries: list[Entry] = []
    attempts = 0
    for event in history:
        if event.kind == "task.claimed":
            attempts += 1
        entry = entry_for(event, attempts)
        last = entries[-1] if entries else None
        if last is not None and entry.kind == last.kind == "task.heartbeat":
            entries[-1] = replace(entry, count=last.count + 1,
                                  summary=f"{last.count + 1} heartbeats; {entry.summary}")
            continue
        entries.append(entry)
    return entries


def entry_for(event: Event, attempt: int = 0) -> Entry:
    """One event as a timeline entry."""
    base = Entry(event.seq, event.at, event.kind, event.actor, "")
    payload = event.payload
    if payload is None:
        return replace(base, summary="its payload was erased (a redaction); the ledger "
                                     "keeps its digest")
    describe = _SUMMARIES.get(event.kind)
    if describe is None:
        describe = _fallback if event.kind.startswith("task.fallback.") else _anything
    entry = describe(base, payload)
    if event.kind == "task.claimed":
        entry = replace(entry, attempt=attempt, summary=f"attempt {attempt}: {entry.summary}")
    return entry


def _why(payload: dict[str, Any]) -> str:
    return str((payload.get("set") or {}).get("reason") or "")


def _submitted(entry: Entry, p: dict[str, Any]) -> Entry:
    deadline = f", deadline {when(p['deadline'])}" if p.get("deadline") else ""
    return replace(entry, summary=(f"submitted by {entry.actor}: {p.get('type')} on "
                                   f"{p.get('subject')}, priority {p.get('priority')}, "
                                   f"value {p.get('value')}{deadline}"))


def _assigned(entry: Entry, p: dict[str, Any]) -> Entry:
    member, strategy = p.get("member"), p.get("strategy")
    explained = p.get("explanation") or {}
    how = ("by hand" if strategy == "manual"
           else f"by strategy `{strategy}`, picked with probability "
                f"{float(p.get('probability') or 0):.2f}")
    if strategy == "nobody-eligible":
        how = "to a person's queue: nobody eligible could take it"
    candidates = _candidates(str(member), explained)
    kept_out: dict[str, list[str]] = {}
    for candidate in candidates:
        if candidate.terms is None and candidate.reason and not candidate.picked:
            kept_out.setdefault(candidate.reason, []).append(candidate.member)
    grouped = explained.get("ruled_out")  # a batch groups those it could not choose
    for why, who in (grouped.items() if isinstance(grouped, dict) else ()):
        if isinstance(who, list):
            kept_out.setdefault(str(why), []).extend(map(str, who))
    return replace(entry, summary=f"assigned to {member} {how}",
                   explanation=explained or None,
                   candidates=tuple(c for c in candidates
                                    if c.picked or c.terms is not None or not c.reason),
                   ineligible=tuple((why, tuple(who)) for why, who in kept_out.items()))


def _candidates(member: str, explained: dict[str, Any]) -> tuple[Candidate, ...]:
    runners = explained.get("runners_up")
    if not isinstance(runners, list):
        return ()
    picked = Candidate(member, True, "picked", _terms(explained.get("terms")))
    others = tuple(Candidate(str(r.get("member")), False, str(r.get("reason") or ""),
                             _terms(r.get("terms")))
                   for r in runners if isinstance(r, dict))
    return (picked, *others)


def _terms(value: Any) -> dict[str, float] | None:
    if not isinstance(value, dict):
        return None
    return {key: float(number) for key, number in value.items()
            if isinstance(number, int | float)}


def _claimed(entry: Entry, p: dict[str, Any]) -> Entry:
    until = (p.get("set") or {}).get("lease_until")
    return replace(entry, summary=(f"started by {p.get('member')} with fencing token "
                                   f"{p.get('fencing')}; lease until {when(until)}"))


def _heartbeat(entry: Entry, p: dict[str, Any]) -> Entry:
    until = (p.get("set") or {}).get("lease_until")
    return replace(entry, summary=f"lease extended to {when(until)}")


def _completed(entry: Entry, p: dict[str, Any]) -> Entry:
    return replace(entry, summary=f"completed by {entry.actor}", tone="ok",
                   detail=p.get("result"))


def _failed(entry: Entry, p: dict[str, Any]) -> Entry:
    return replace(entry, summary=f"attempt by {entry.actor} failed: {p.get('reason')}",
                   tone="bad")


def _cancelled(entry: Entry, p: dict[str, Any]) -> Entry:
    return replace(entry, summary=f"cancelled by {entry.actor}: {p.get('reason')}",
                   tone="bad")


def _lease_expired(entry: Entry, p: dict[str, Any]) -> Entry:
    return replace(entry, summary=(f"the lease of {p.get('member')} (fencing token "
                                   f"{p.get('fencing')}) expired without a heartbeat"),
                   tone="bad")


def _fallback(entry: Entry, p: dict[str, Any]) -> Entry:
    step = entry.kind.removeprefix("task.fallback.").replace("_", " ")
    return replace(entry, summary=f"fallback, {step}: {_why(p)}", tone="warn")


def _awaiting(entry: Entry, p: dict[str, Any]) -> Entry:
    waiting = p.get("approvals") or []
    return replace(entry, summary=f"paused by {entry.actor} until approved ({_why(p)})",
                   tone="warn", approval=str(waiting[0]) if waiting else None)


def _set_reason(tone: str = "") -> Callable[[Entry, dict[str, Any]], Entry]:
    def describe(entry: Entry, p: dict[str, Any]) -> Entry:
        return replace(entry, summary=_why(p) or entry.kind, tone=tone)
    return describe


def _outcome(entry: Entry, p: dict[str, Any]) -> Entry:
    parts = [("success" if p.get("success") else "failure") + f" of {p.get('member')}",
             f"{'verified' if p.get('verified') else 'self-reported'} by {entry.actor}"]
    for key, label in (("quality", "quality"), ("cost", "cost"),
                       ("duration_s", "duration (s)")):
        if p.get(key) is not None:
            parts.append(f"{label} {p[key]}")
    return replace(entry, summary="outcome: " + ", ".join(parts),
                   tone="ok" if p.get("success") else "bad")


def _approval_requested(entry: Entry, p: dict[str, Any]) -> Entry:
    request = p.get("request") or {}
    approvers = ", ".join(p.get("approvers") or [])
    return replace(entry, approval=p.get("id"), tone="warn", summary=(
        f"approval asked: {request.get('action')} on {request.get('resource')} by "
        f"{p.get('requester')}; approvers {approvers}, quorum {p.get('quorum')}"))


def _approval_voted(entry: Entry, p: dict[str, Any]) -> Entry:
    comment = f": “{p['comment']}”" if p.get("comment") else ""
    return replace(entry, approval=p.get("id"),
                   summary=f"{entry.actor} voted {p.get('vote')}{comment}",
                   tone="ok" if p.get("vote") == "approve" else "bad")


def _approval_settled(verb: str, tone: str) -> Callable[[Entry, dict[str, Any]], Entry]:
    def describe(entry: Entry, p: dict[str, Any]) -> Entry:
        said = p.get("reason") or p.get("comment")
        why = f": {said}" if said else ""
        return replace(entry, approval=p.get("id"), tone=tone,
                       summary=f"approval {verb}{why}")
    return describe


def _approval_escalated(entry: Entry, p: dict[str, Any]) -> Entry:
    return replace(entry, approval=p.get("id"), tone="warn",
                   summary=f"approval escalated to {p.get('to')}: {p.get('reason')}")


def _redacted(entry: Entry, p: dict[str, Any]) -> Entry:
    return replace(entry, summary=f"the payload of event {p.get('seq')} was erased: "
                                  f"{p.get('reason')}")


def _anything(entry: Entry, p: dict[str, Any]) -> Entry:
    """An event kind this page has no words for: its reason, else its fields."""
    shown = {k: v for k, v in p.items() if k not in ("task", "set", "id")}
    return replace(entry, summary=_why(p) or ", ".join(f"{k} {v}" for k, v in shown.items()))


_SUMMARIES: dict[str, Callable[[Entry, dict[str, Any]], Entry]] = {
    "task.submitted": _submitted,
    "task.assigned": _assigned,
    "task.claimed": _claimed,
    "task.heartbeat": _heartbeat,
    "task.completed": _completed,
    "task.attempt_failed": _failed,
    "task.cancelled": _cancelled,
    "task.lease_expired": _lease_expired,
    "task.deadline_missed": _set_reason("bad"),
    "task.awaiting_approval": _awaiting,
    "task.resumed": _set_reason(),
    "task.released": _set_reason("warn"),
    "task.requeued": _set_reason("warn"),
    "outcome.recorded": _outcome,
    "approval.requested": _approval_requested,
    "approval.voted": _approval_voted,
    "approval.granted": _approval_settled("granted", "ok"),
    "approval.rejected": _approval_settled("rejected", "bad"),
    "approval.expired": _approval_settled("expired", "bad"),
    "approval.executed": _approval_settled("executed: the approved call was made", "ok"),
    "approval.withdrawn": _approval_settled("withdrawn", "bad"),
    "approval.escalated": _approval_escalated,
    "ledger.redacted": _redacted,
}
"""How each kind of event reads; other kinds show their reason or their fields."""
