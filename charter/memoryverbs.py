"""Memory verbs of the `Charter` facade: remember, recall, list and forget, each
governed by the org's Cedar policies (`memory.write`, `memory.read`).

A refused request is logged as a decision (through the group-commit decision log), so
the ledger shows who tried to read or write what; allowed reads change nothing and are
not logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace

from charter import memory
from charter.authority import Authority
from charter.clock import Clock
from charter.decisionlog import DecisionLog
from charter.decisions import Decision
from charter.errors import InvalidInput, NotFound
from charter.ledger import EventDraft, Ledger
from charter.memory import Forgotten, Kind, Memory
from charter.store import Store, ids_starting
from charter.store.schema import memories as memories_table

log = logging.getLogger(__name__)


class MemoryVerbs:
    """Mixed into `Charter`; expects its store, ledger and clock."""

    store: Store
    ledger: Ledger
    clock: Clock
    _decisions: DecisionLog
    authority: Callable[[], Authority]
    _decision_draft: Callable[[Decision], EventDraft]
    """The ledger event recording a decision (GovernanceVerbs provides it)."""

    def remember(self, subject: str, text: str, *, by: str, kind: Kind = "note",
                 tags: Sequence[str] = (), private: bool = False) -> Memory:
        """Record a memory about `subject` (`Customer::42`). `by` needs Cedar
        `memory.write` on the subject; a private memory is read back by `by` only."""
        authority = self.authority()
        org = authority.org
        subject = memory.canonical_subject(org, subject, memory.WRITE)
        memory.check_member(org, by)
        text, kind, tags = (memory.check_text(text), memory.check_kind(kind),
                            memory.check_tags(tags))
        if not isinstance(private, bool):
            raise InvalidInput(f"private is true or false, got {private!r}")
        decision = self._permit(authority, by, memory.WRITE, subject)
        permitted_by = [p for reason in decision.reasons for p in reason.policies]
        with self.store.transaction() as conn:
            return memory.remember(conn, self.ledger, subject=subject, text=text, by=by,
                                   kind=kind, tags=tags, private=private,
                                   permitted_by=permitted_by)

    def recall(self, subject: str, query: str = "", *, by: str,
               limit: int = 10) -> list[Memory]:
        """`subject`'s memories most relevant to `query` (any of its words), best first,
        each with its score; an empty query lists the latest. `by` needs Cedar
        `memory.read` on the subject and sees shared memories and its own private ones."""
        authority = self.authority()
        org = authority.org
        subject = memory.canonical_subject(org, subject, memory.READ)
        memory.check_member(org, by)
        terms = memory.query_terms(query)
        memory.check_limit(limit)
        self._permit(authority, by, memory.READ, subject)
        with self.store.reading() as conn:
            return memory.search(conn, self.store.dialect, subject, terms, reader=by,
                                 limit=limit)

    def memories(self, subject: str, *, by: str, limit: int = 50) -> list[Memory]:
        """`subject`'s latest memories that `by` may see, newest first (`memory.read`)."""
        return self.recall(subject, "", by=by, limit=limit)

    def memory_page(self, subject: str, *, by: str, before: int | None = None,
                    limit: int = 50) -> list[Memory]:
        """`subject`'s memories that `by` may see (`memory.read`), newest first, stored
        before ledger seq `before` (that of the last one seen): keyset pages."""
        authority = self.authority()
        org = authority.org
        subject = memory.canonical_subject(org, subject, memory.READ)
        memory.check_member(org, by)
        memory.check_limit(limit)
        if before is not None and (isinstance(before, bool) or not isinstance(before, int)):
            raise InvalidInput(f"before is a ledger seq (a whole number), not {before!r}")
        self._permit(authority, by, memory.READ, subject)
        with self.store.reading() as conn:
            return memory.page(conn, subject, reader=by, before=before, limit=limit)

    def forget(self, memory_id: str, *, by: str, reason: str) -> Forgotten:
        """Erase a memory everywhere: from the read tables and the full-text index, and
        from the payload of the ledger event that stored it (redacted; the chain still
        verifies and names the redaction). On SQLite the write-ahead log is then
        checkpointed and truncated, so the text is not left in the database's files.

        Who may forget: the member who wrote the memory, or a member permitted
        `memory.write` on its subject (e.g. to carry out an erasure request). A private
        memory exists only for its author: nobody else may forget it (or see it).
        """
        authority = self.authority()
        org = authority.org
        memory.check_member(org, by)
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidInput("forgetting needs a reason (e.g. 'erasure request 118'); "
                               "it is recorded in the ledger")
        if not isinstance(memory_id, str) or not memory_id:
            raise InvalidInput(f"a memory id is text, got {memory_id!r}")
        with self.store.transaction() as conn:
            self.ledger.hold_head(conn)
            found = memory.get(conn, memory_id, lock=True)
            if found.private and found.by != by:
                raise NotFound(f"no memory {memory_id}")
            if found.by != by:
                self._permit(authority, by, memory.WRITE, found.subject,
                             why=f"forget memory {memory_id} (written by {found.by})")
            forgotten = memory.forget(conn, self.ledger, self.store.dialect, found, by=by,
                                      reason=reason.strip())
        flushed = self.store.dialect.flush_erasures(self.store.engine)
        if not flushed:
            log.warning("memory %s is forgotten, but the write-ahead log could not be "
                        "truncated yet (readers were active): the next checkpoint does",
                        memory_id)
        return replace(forgotten, flushed=flushed)

    def memory_ids(self, prefix: str) -> list[str]:
        """Ids of memories starting with `prefix` (two at most: enough to tell whether a
        short id is unique)."""
        with self.store.reading() as conn:
            return ids_starting(conn, memories_table.c.id, prefix)

    def _permit(self, authority: Authority, member: str, action: str, subject: str, *,
                why: str | None = None) -> Decision:
        """The allow decision for the request, or `Forbidden` with the decision's
        reasons (a refusal is logged in the ledger)."""
        decision = authority.decide(member, action, subject, {}, now=self.clock.now())
        if decision.outcome == "allow":
            return decision
        self._decisions.submit(self._decision_draft(decision))
        raise decision.refusal(why or f"{action} {subject}",
                               then="memory is not shared by approval: ask them")
