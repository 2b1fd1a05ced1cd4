"""Python callables named `module:function` in the org (engines, action performers)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache
from typing import Any, cast

from charter.errors import InvalidInput


@cache
def load_callable(target: str) -> Callable[..., Any]:
    """Import `module:function`; a clear error names what is missing."""
    module_name, _, name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise InvalidInput(f"cannot import {module_name!r} for {target!r}: {error}; "
                           "install it or fix the name") from None
    found = getattr(module, name, None)
    if not callable(found):
        raise InvalidInput(f"{module_name} has no callable {name!r} (named by {target!r})")
    return cast(Callable[..., Any], found)
