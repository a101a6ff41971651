"""The property every fuzz test checks: a call succeeds or raises ONE KilnError line; nothing else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kiln.errors import KilnError


def ok_or_one_line(call: Callable[[], Any]) -> Any:
    """Run `call`; a KilnError must be one non-empty line. Any other exception propagates (a failure)."""
    try:
        return call()
    except KilnError as exc:
        message = str(exc)
        assert message and "\n" not in message and "Traceback" not in message, repr(message)
        return exc
