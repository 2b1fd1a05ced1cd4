"""Pydantic models of Charter's concepts, as the org file declares them."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

MemberKind = Literal["ai", "human"]
MemberStatus = Literal["active", "suspended"]
AutonomyLevel = Literal["supervised", "notify", "autonomous"]
ConflictRuleName = Literal["authority", "track_record", "escalate"]
BudgetPeriod = Literal["day", "week", "month", "quarter", "year", "total"]

AUTONOMY_ORDER: tuple[AutonomyLevel, ...] = ("supervised", "notify", "autonomous")

Identifier = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"),
]
"""An id: letters, digits, `_`, `.` and `-`, starting with a letter or digit, ≤ 64 long."""

ActionName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_\-]*(\.[A-Za-z][A-Za-z0-9_\-]*)*$"),
]
"""A Cedar action name such as `purchase.create`."""

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(value: Any) -> Any:
    """Accept `90s`, `15m`, `4h`, `2d`, `1h30m` or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text such as '15m', '4h'")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str) and not value.startswith("P"):
        match = _DURATION.match(value.strip())
        if not match or not value.strip():
            raise ValueError(f"not a duration: {value!r}; write it such as '15m', '4h', "
                             "'2d', '1h30m' or a number of seconds")
        days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    return value


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("a duration must be longer than zero")
    return value


def _plain_decimal(value: Decimal) -> Decimal:
    """One form per amount (10, 10.0 and 1E+1 are all `10`), so digests are stable."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


Duration = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_positive)]
CallableTarget = Annotated[str, StringConstraints(
    pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")]
"""A Python callable named `module:function`."""
SkillLevel = Annotated[float, Field(ge=0.0, le=1.0)]
MONEY_LIMIT = Decimal(10) ** 16
"""Amounts of money are below this (the database keeps 16 digits before the point)."""
Money = Annotated[Decimal, Field(ge=0, lt=MONEY_LIMIT, allow_inf_nan=False),
                  AfterValidator(_plain_decimal)]


class Model(BaseModel):
    """Base of the org's models: unknown fields are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


AttributeType = Annotated[str, StringConstraints(pattern=r"^(Long|String|Bool|Amount)\??$")]
"""A context or resource attribute's type: `Long`, `String`, `Bool` or `Amount` (a
non-negative amount of money, compared in whole units), optional with a trailing `?`."""

TypeName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z0-9_]{0,63}$")]
"""A resource type name, as Cedar writes it: `Vendor`, `Customer`."""


def _described(value: Any) -> Any:
    """A bare description is shorthand for `{description: ...}`."""
    return {"description": value} if isinstance(value, str) else value


class ActionSpec(Model):
    """A verb that policies permit or forbid, and the request context it takes."""

    description: str = ""
    context: dict[Identifier, AttributeType] = Field(default_factory=dict)
    resources: tuple[TypeName, ...] = Field(
        (), description="resource types it applies to (default: every declared type)")
    perform: CallableTarget | None = Field(
        None, description="`module:function` that carries the action out once Charter allows "
        "it (without one, an allowed action is recorded and its effect is that record)")


class ResourceType(Model):
    """A kind of thing actions apply to, with attributes policies may read."""

    description: str = ""
    attributes: dict[Identifier, AttributeType] = Field(default_factory=dict)
    items: dict[str, dict[Identifier, Any]] = Field(
        default_factory=dict, description="known resources and their attribute values")


ActionMap = dict[ActionName, Annotated[ActionSpec, BeforeValidator(_described)]]
ResourceMap = dict[TypeName, Annotated[ResourceType, BeforeValidator(_described)]]


class OrgInfo(Model):
    id: Identifier
    name: str = Field(min_length=1)
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")


class Team(Model):
    name: str = Field(min_length=1)
    department: Identifier


class CostModel(Model):
    """What a member costs: a fixed amount per task plus time spent."""

    per_task: Money = Decimal(0)
    per_hour: Money = Decimal(0)


class PythonEngine(Model):
    kind: Literal["python"]
    target: CallableTarget


class HttpEngine(Model):
    kind: Literal["http"]
    url: str = Field(pattern=r"^https?://\S+$")
    secret_env: str | None = None
    timeout: Duration = timedelta(seconds=30)
    retries: int = Field(2, ge=0, le=10)


class OpenAIEngine(Model):
    kind: Literal["openai"]
    base_url: str = Field(pattern=r"^https?://\S+$")
    model: str = Field(min_length=1)
    api_key_env: str | None = None
    input_price_per_1k: Money = Decimal(0)
    output_price_per_1k: Money = Decimal(0)
    actions: tuple[ActionName, ...] = Field(
        (), description="actions offered as tools besides the task type's own")
    max_turns: int = Field(8, ge=1, le=100, description="model calls per run, at most")
    timeout: Duration = timedelta(seconds=60)
    instructions: str = Field("", description="added to the system message")


class McpEngine(Model):
    kind: Literal["mcp"]
    server: str = Field(min_length=1, description="a command line (stdio) or an http(s) URL")
    tool: str = Field(min_length=1)
    timeout: Duration = timedelta(seconds=60)


EngineSpec = Annotated[
    PythonEngine | HttpEngine | OpenAIEngine | McpEngine, Field(discriminator="kind")
]


BREAKER_MAX_WINDOW = timedelta(hours=1)
"""The longest window a breaker counts over (it counts attempts second by second)."""


def _at_most(longest: timedelta, shown: str) -> Any:
    def check(value: timedelta) -> timedelta:
        if value > longest:
            raise ValueError(f"at most {shown}")
        return value
    return check


def _breaker_off(value: Any) -> Any:
    """`breaker: off` (or `false`) turns a member's breaker off."""
    return {"enabled": False} if value is False else value


class BreakerRule(Model):
    """When a member's engine is taken out of rotation for a while: its breaker opens
    on `failures` failed attempts, or on an `error_rate` of failed attempts once there
    are `min_calls`, within `window`; after `cool_down` one probe task goes through."""

    failures: int | None = Field(
        None, ge=1, le=10_000, description="failed attempts within `window` that open it")
    error_rate: float | None = Field(
        None, gt=0, le=1, description="share of failed attempts within `window` that opens "
        "it, once there are `min_calls` attempts")
    min_calls: int = Field(10, ge=1, le=1_000_000,
                           description="attempts within `window` before `error_rate` counts")
    window: Annotated[Duration, AfterValidator(_at_most(BREAKER_MAX_WINDOW, "1h (attempts "
                                                       "are counted second by second)"))] = \
        timedelta(minutes=10)
    cool_down: Annotated[Duration, AfterValidator(_at_most(timedelta(days=1), "1d"))] = \
        timedelta(minutes=1)
    enabled: bool = Field(True, description="false (or `breaker: off`) turns it off")

    @model_validator(mode="after")
    def _opens_on_something(self) -> BreakerRule:
        if self.enabled and self.failures is None and self.error_rate is None:
            raise ValueError("a breaker opens on `failures`, `error_rate` or both: give at "
                             "least one (or `breaker: off`)")
        return self


Breaker = Annotated[BreakerRule, BeforeValidator(_breaker_off)]


class Member(Model):
    """An AI agent or a person."""

    id: Identifier
    name: str = ""
    kind: MemberKind
    title: str = ""
    department: Identifier
    roles: tuple[Identifier, ...] = ()
    teams: tuple[Identifier, ...] = ()
    reports_to: Identifier | None = None
    skills: dict[Identifier, SkillLevel] = Field(default_factory=dict)
    capacity: int = Field(1, ge=0, description="tasks it can hold at once")
    cost: CostModel = CostModel()
    engine: EngineSpec | None = None
    autonomy: dict[Identifier, AutonomyLevel] = Field(
        default_factory=dict, description="starting autonomy per task type (agents start "
        "supervised otherwise); earned autonomy moves it up to the task type's ceiling")
    limits: dict[Identifier, Money] = Field(
        default_factory=dict, description="spending limits, offered to policies"
    )
    status: MemberStatus = "active"
    breaker: Breaker | None = Field(
        None, description="its circuit breaker, replacing the org's `breaker` (which "
        "covers AI members only); `off` for none")

    @model_validator(mode="after")
    def _engine_only_for_ai(self) -> Member:
        if self.kind == "human" and self.engine is not None:
            raise ValueError("a person has no engine: remove `engine` or set `kind: ai`")
        return self

    @property
    def display_name(self) -> str:
        return self.name or self.id


def _fallback_step(value: Any) -> Any:
    """Turn the file's short form (`retry: 1`, `escalate: supervisor`) into fields."""
    if isinstance(value, dict) and len(value) == 1 and "action" not in value:
        ((action, argument),) = value.items()
        if action == "escalate":
            return {"action": action, "to": argument}
        return {"action": action, "count": argument}
    return value


class FallbackStep(Model):
    """One step of a task type's fallback protocol."""

    action: Literal["retry", "reassign", "escalate"]
    count: int = Field(1, ge=1, le=100)
    to: str | None = Field(None, description="escalate: `supervisor` or a member id")

    @model_validator(mode="after")
    def _target_for_escalate(self) -> FallbackStep:
        if self.action == "escalate" and not self.to:
            raise ValueError("escalate needs a target: `supervisor` or a member id")
        if self.action != "escalate" and self.to is not None:
            raise ValueError(f"{self.action} takes a count, not a target")
        return self


class ConflictRule(Model):
    """How contradictory proposals on one subject and key are arbitrated."""

    rule: ConflictRuleName = "escalate"
    window: Duration = timedelta(hours=1)


class ApprovalRule(Model):
    """How long an escalation waits, and what happens when nobody answers."""

    sla: Duration = timedelta(hours=4)
    on_timeout: Literal["deny", "escalate"] = "escalate"
    expires: Duration = timedelta(days=7)


SampleRate = Annotated[float, Field(ge=0.0, le=1.0)]


def _rates(value: Any) -> Any:
    """A single rate is the rate at every autonomy level."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dict.fromkeys(AUTONOMY_ORDER, value)
    return value


class SampleRates(Model):
    """The share of completed tasks reviewed, by the autonomy level the member that did
    the task works at (people work at `autonomous`)."""

    supervised: SampleRate = 0.0
    notify: SampleRate = 0.0
    autonomous: SampleRate = 0.0


class Evaluation(Model):
    """Who reviews a sample of a task type's completed tasks, and how large a sample."""

    evaluator: Identifier = Field(description="the member (person or AI) who reviews")
    sample: Annotated[SampleRates, BeforeValidator(_rates)] = Field(
        description="one rate for every task, or a rate per autonomy level")
    action: ActionName | None = Field(
        None, description="a declared action: members the policies allow it on the "
        "task's subject may review too")


class TaskType(Model):
    """A kind of work or decision the org recognises."""

    id: Identifier
    description: str = ""
    action: ActionName
    skills: tuple[Identifier, ...] = ()
    value: Money
    timeout: Duration
    lease: Duration = timedelta(minutes=15)
    fallback: tuple[Annotated[FallbackStep, BeforeValidator(_fallback_step)], ...] = ()
    autonomy_ceiling: AutonomyLevel = "supervised"
    conflict: ConflictRule = ConflictRule()
    quorum: int = Field(1, ge=1, le=20, description="distinct approvers an escalation needs")
    approval: ApprovalRule = ApprovalRule()
    autonomy_threshold: float = Field(
        0.9, gt=0, lt=1, description="verified success rate an agent must show (Wilson "
        "bound) to be promoted, and stay above to keep its level")
    autonomy_min_outcomes: int = Field(
        20, ge=1, description="verified outcomes needed before a promotion")
    autonomy_window: int = Field(
        100, ge=1, description="how many of the latest verified outcomes are weighed")
    evaluation: Evaluation | None = Field(
        None, description="review a sample of its completed tasks (verified outcomes)")

    @model_validator(mode="after")
    def _escalate_last(self) -> TaskType:
        for step in self.fallback[:-1]:
            if step.action == "escalate":
                raise ValueError("`escalate` ends a fallback protocol: put it last")
        return self


class Budget(Model):
    """A spending envelope; children draw on their parent."""

    id: Identifier
    amount: Money
    period: BudgetPeriod = "month"
    owner: Identifier | None = Field(None, description="a member or team answerable for it")
    members: tuple[Identifier, ...] = Field(
        (), description="members who spend from it (default: its owner, if a member)")
    children: tuple[Budget, ...] = ()


class OrgSpec(Model):
    """The whole org file."""

    org: OrgInfo
    departments: dict[Identifier, str] = Field(min_length=1)
    roles: dict[Identifier, str] = Field(default_factory=dict)
    teams: dict[Identifier, Team] = Field(default_factory=dict)
    skills: dict[Identifier, str] = Field(default_factory=dict)
    actions: ActionMap = Field(default_factory=dict)
    resources: ResourceMap = Field(default_factory=dict)
    members: tuple[Member, ...] = Field(min_length=1)
    task_types: tuple[TaskType, ...] = ()
    budgets: tuple[Budget, ...] = ()
    breaker: Breaker | None = Field(
        None, description="the circuit breaker of every AI member that declares none")
    policies: str = "policies"
