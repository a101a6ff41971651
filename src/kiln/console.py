"""rich consoles that read well off a terminal too: in CI logs, `| tee` or `nohup`, lines are
never wrapped or cut at 80 columns (tables keep their natural width)."""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console

WIDE = 240  # columns assumed when the output is not a terminal


def console(stderr: bool = False, file: TextIO | None = None) -> Console:
    stream = file or (sys.stderr if stderr else sys.stdout)
    if getattr(stream, "isatty", lambda: False)():
        return Console(file=file, stderr=stderr)
    return Console(file=file, stderr=stderr, width=WIDE, soft_wrap=True)
