"""Run the `kiln` CLI in-process and check its one-line errors (shared by the CLI tests)."""

from __future__ import annotations

import sys

import pytest

from kiln.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    """Run `kiln ARGS` in-process; return (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["kiln", *map(str, args)])
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(result: tuple[int, str, str], *facts: str) -> str:
    """Assert exit code 2 and a single `error:` line on stderr containing every fact; return it."""
    code, _, err = result
    lines = err.strip().splitlines()
    assert code == 2, err
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fact in facts:
        assert fact in lines[0], f"{fact!r} not in {lines[0]!r}"
    return lines[0]
