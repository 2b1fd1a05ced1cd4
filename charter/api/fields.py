"""Field types shared by the API's request models: text and JSON a database can store.

PostgreSQL refuses the NUL character in text, and no database stores a lone surrogate
or NaN as JSON text; a request carrying one is refused as invalid (422), never failed.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    JsonValue,
    StringConstraints,
)

from charter.canonical import canonical_json

NO_NUL = r"^[^\x00]*$"
"""Text a database can store: PostgreSQL refuses the NUL character."""
MAX_WHOLE = 2**62
"""The largest whole number a request may carry (the databases' BIGINT, with room)."""


def storable(value: Any) -> Any:
    """`value`, when it can be written as canonical JSON in UTF-8 (no NaN, infinity, lone
    surrogate or NUL), else a validation error."""
    try:
        text = canonical_json(value)
        text.encode("utf-8")
    except ValueError as error:  # UnicodeEncodeError among them
        raise ValueError(f"not storable as JSON text: {error}") from None
    if "\\u0000" in text:
        raise ValueError("not storable: text may not contain the NUL character")
    return value


def _not_true_or_false(value: Any) -> Any:
    """JSON's true and false are not numbers (Python would read them as 1 and 0)."""
    if isinstance(value, bool):
        raise ValueError(f"a number is expected, not {str(value).lower()}")
    return value


Whole = Annotated[int, BeforeValidator(_not_true_or_false)]
"""A whole number in a request body (true and false are refused)."""
Number = Annotated[float, BeforeValidator(_not_true_or_false)]
"""A number in a request body (true and false are refused)."""
Subject = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=NO_NUL)]
"""A resource or subject, `Type::id` (e.g. `Customer::42`)."""
Key = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=NO_NUL)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=NO_NUL)]
ShortText = Annotated[str, StringConstraints(max_length=2000, pattern=NO_NUL)]
PathId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=NO_NUL)]
StorableJson = Annotated[JsonValue, AfterValidator(storable)]
Context = Annotated[dict[Annotated[str, StringConstraints(max_length=256)], JsonValue],
                    AfterValidator(storable)]
"""A Cedar request context: attribute name → value."""


class Body(BaseModel):
    """A request body: unknown fields are refused (a body never names who acts)."""

    model_config = ConfigDict(extra="forbid")
