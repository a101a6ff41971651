"""kiln's user-facing error: one line, no traceback, exit code 2 from the CLI."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class KilnError(Exception):
    """An error in the user's input (config, data, paths) with a one-line message: line breaks that
    come in with a quoted user value are escaped, so the message stays one line."""

    def __init__(self, message: object = "", *args: object) -> None:
        text = str(message)
        if "\n" in text or "\r" in text:
            text = text.replace("\r", "\\r").replace("\n", "\\n")
        super().__init__(text, *args)


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """Return ` (did you mean 'x'?)` for the closest option, or an empty string."""
    match = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""
