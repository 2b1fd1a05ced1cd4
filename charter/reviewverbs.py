"""Review verbs of the `Charter` facade: the evaluators' queues and their verdicts on
sampled tasks (`charter.reviews`). Each verdict is one transaction."""

from __future__ import annotations

from collections.abc import Callable

from charter import reviews, tasks
from charter.authority import Authority
from charter.clock import Clock
from charter.dispatch import Dispatcher
from charter.governance import Snapshot
from charter.ledger import Ledger
from charter.org import Org
from charter.outcomes import Outcome
from charter.reviews import Review
from charter.store import Store


class ReviewVerbs:
    """Mixed into `Charter`; expects its store, ledger and clock."""

    store: Store
    ledger: Ledger
    clock: Clock
    _require_org: Callable[[], Org]
    _keep_org_handles: Callable[[], None]
    authority: Callable[[], Authority]
    _learn: Callable[[Outcome], None]
    _dispatcher: tuple[Snapshot, Dispatcher] | None = None

    def review_task(self, task_id: str, *, by: str, success: bool,
                    quality: float | None = None, comment: str = "") -> Review:
        """Record `by`'s verdict on a task sampled for review: a verified outcome for the
        member that did it (success, quality from 0 to 1) and the comment. Only the task
        type's evaluator, or a member the policies allow its evaluation action, may
        review; nobody reviews their own work; a task is reviewed once."""
        org = self._require_org()
        authority = self.authority()
        with self.store.transaction() as conn:
            task = tasks.get(conn, task_id)
            done, verdict = reviews.review(conn, self.ledger, org, authority, task, by=by,
                                           success=success, quality=quality,
                                           comment=comment, now=self.clock.now())
        self._keep_org_handles()  # a verified outcome may have moved autonomy
        self._learn(verdict)
        if self._dispatcher is not None and done.agreed is not None:
            self._dispatcher[1].observe_review(done.member, done.task_type, done.agreed)
        return done

    def reviews(self, *, evaluator: str | None = None, status: str | None = None,
                member: str | None = None, limit: int = 1000) -> list[Review]:
        """Review requests, oldest first: an evaluator's queue is
        `reviews(evaluator=..., status="pending")`."""
        with self.store.reading() as conn:
            return reviews.listing(conn, evaluator=evaluator, status=status, member=member,
                                   limit=limit)
