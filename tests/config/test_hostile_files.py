"""Hostile config files: alias bombs, deep nesting, non-UTF-8 and UTF-16 text are one line, quickly."""

from __future__ import annotations

import pytest
from cli_helpers import one_line_error, run_cli

from kiln.config import read_yaml
from kiln.errors import KilnError

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
) + "input_features: *i\n"


def test_an_alias_bomb_is_refused_without_expanding_it(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    assert len(BOMB) < 1500
    with pytest.raises(KilnError, match="aliases"):
        read_yaml(path)


def test_a_recursive_alias_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("model: &m {type: mlp, inner: *m}\n")
    with pytest.raises(KilnError):
        read_yaml(path)


@pytest.mark.parametrize("text", ["a: " + "[" * 10_000 + "]" * 10_000 + "\n", "a:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(2000))])
def test_deep_nesting_is_one_line(tmp_path, text):
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    with pytest.raises(KilnError, match="nesting"):
        read_yaml(path)


@pytest.mark.parametrize(("data", "fact"), [
    ("model: {type: mlp}\n".encode("utf-16"), "UTF-16"),
    (b"model: {type: \xff\xfe mlp}\n", "not UTF-8"),
    (b"\xef\xbb\xbfmodel: {type: mlp}\n", None),  # a UTF-8 BOM is fine
])
def test_encodings(tmp_path, data, fact):
    path = tmp_path / "c.yaml"
    path.write_bytes(data)
    if fact is None:
        assert read_yaml(path) == {"model": {"type": "mlp"}}
        return
    with pytest.raises(KilnError, match=fact):
        read_yaml(path)


def test_the_cli_prints_one_line_for_a_bomb(tmp_path, capsys, monkeypatch):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    one_line_error(run_cli(capsys, monkeypatch, "train", path), "bomb.yaml", "aliases")


def test_set_values_are_bounded_too(tmp_path, capsys, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text("model: {type: mlp}\n")
    one_line_error(run_cli(capsys, monkeypatch, "train", path, "--set", "model.hidden=" + "[" * 5000 + "]" * 5000), "--set model.hidden")
