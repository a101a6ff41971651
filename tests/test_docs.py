"""Every whole config shown in README.md and docs/*.md (a ```yaml block with input/output features or a
`task:`) validates, read the way `kiln train` reads a file: docs stay true to the schema."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import kiln.api  # noqa: F401  (registers every task)
from kiln.tasks import load_task_config

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```yaml\n(.*?)```", re.S)


def config_blocks() -> list[tuple[str, str]]:
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            block = match.group(1)
            keys = set(re.findall(r"^([a-z_]+):", block, re.M))
            if "task" in keys or {"input_features", "output_features"} <= keys:
                found.append((f"{page.name}:{text[: match.start()].count(chr(10)) + 2}", block))
    return found


@pytest.mark.parametrize(("where", "block"), config_blocks(), ids=[w for w, _ in config_blocks()])
def test_doc_config_validates(where: str, block: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILN_DATA", str(tmp_path))
    path = tmp_path / "config.yaml"
    path.write_text(block, encoding="utf-8")
    load_task_config(path)
