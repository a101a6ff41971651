"""YAML reading that a hostile file cannot turn into a memory or stack bomb: nesting depth and the
size of the loaded value (counting every alias expansion, as validation would copy it) are bounded,
and a file that is not UTF-8 text is one line."""

from __future__ import annotations

from typing import Any

import yaml

from kiln.errors import KilnError

MAX_DEPTH = 64  # nested mappings/lists; real configs use < 6
MAX_NODES = 200_000  # values after alias expansion; real configs have < 1000


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses deep nesting while composing (PyYAML's composer recurses per level)."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise KilnError(f"nesting deeper than {MAX_DEPTH} levels at line {mark.line + 1}, column {mark.column + 1}")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml_text(text: str, where: str) -> Any:
    """Parse YAML text with bounded depth and expanded size; errors are one KilnError line naming `where`."""
    try:
        data = yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 (a SafeLoader subclass)
    except KilnError as exc:
        raise KilnError(f"{where}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise KilnError(f"malformed YAML in {where}{at}: {problem}") from None
    except RecursionError:
        raise KilnError(f"{where}: nesting too deep") from None
    _check_size(data, where)
    return data


def _check_size(data: Any, where: str) -> None:
    """Walk the value as validation would (aliases expanded); stop at MAX_NODES or MAX_DEPTH."""
    count = 0
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise KilnError(f"{where}: more than {MAX_NODES:,} values once aliases (*name) are expanded; "
                            "a YAML alias bomb? Write the values out or use fewer aliases")
        if depth > MAX_DEPTH:
            raise KilnError(f"{where}: nesting deeper than {MAX_DEPTH} levels (a recursive alias?)")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for pair in node.items() for v in pair)
        elif isinstance(node, (list, tuple, set)):
            stack.extend((v, depth + 1) for v in node)


def decode_config(raw: bytes, where: str) -> str:
    """UTF-8 (a UTF-8 BOM is allowed); anything else is one line saying what the file seems to be."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise KilnError(f"{where} is UTF-16 text; save it as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise KilnError(f"{where} is not UTF-8 text (invalid byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                        "save it as UTF-8") from None
