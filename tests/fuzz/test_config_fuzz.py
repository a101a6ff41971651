"""Property: any mutation of a valid example config (types, ranges, nesting, unknown keys, bytes of
the YAML file) validates, or is refused with ONE KilnError line; never another exception."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from _oneline import ok_or_one_line
from hypothesis import given
from hypothesis import strategies as st

from kiln.api import load_task_config
from kiln.config import read_yaml

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
CONFIGS = {p.stem: yaml.safe_load(p.read_text()) for p in EXAMPLES}

SPECIAL = [0, -1, 1, 2, 2**31, 2**63, 2**70, 10**9, 1e308, -1e308, 0.5, 1.5, -0.1, float("inf"), float("nan"), True, False,
           None, "", "auto", "full", "bpe", "mlp", "gpt", "transformer", "\x00", "\ud800", "é" * 3, [0], [-1], [], {}, {"type": "x"},
           [[[[[]]]]], "${NOT_SET_ANYWHERE}", "sklearn:digits"]
VALUES = st.one_of(
    st.sampled_from(SPECIAL),
    st.integers(min_value=-(2**90), max_value=2**90),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(min_value=-5, max_value=10**7), max_size=4),
    st.dictionaries(st.text(max_size=6), st.integers(), max_size=3),
    st.recursive(st.integers(), lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2), max_leaves=30),
)


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += paths(value, (*prefix, i))
    return out


@st.composite
def mutated_config(draw: st.DrawFn) -> dict:
    config = copy.deepcopy(CONFIGS[draw(st.sampled_from(sorted(CONFIGS)))])
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(paths(config)[1:]))
        *parents, last = path
        node = config
        for part in parents:
            node = node[part]
        op = draw(st.sampled_from(["replace", "replace", "replace", "delete", "unknown", "nest"]))
        if op == "replace":
            node[last] = draw(VALUES)
        elif op == "delete":
            del node[last]
        elif op == "unknown" and isinstance(node[last], dict):
            node[last][draw(st.text(min_size=1, max_size=8))] = draw(VALUES)
        elif op == "nest":
            node[last] = {"nested": node[last]} if draw(st.booleans()) else [node[last]]
    return config


@given(config=mutated_config())
def test_mutated_example_configs_validate_or_are_one_line(config, tried):
    tried()
    ok_or_one_line(lambda: load_task_config(config))


@given(config=mutated_config(), cuts=st.lists(st.tuples(st.integers(min_value=0), st.binary(max_size=8)), max_size=4),
       encoding=st.sampled_from(["utf-8", "utf-8", "utf-16", "latin-1", "utf-32"]))
def test_mutated_config_files_read_or_are_one_line(tmp_path_factory, config, cuts, encoding, tried):
    tried()
    text = yaml.safe_dump(config, allow_unicode=True, sort_keys=False) if _dumpable(config) else str(config)
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        data = text.encode("utf-8", "surrogatepass")
    for position, junk in cuts:  # splice random bytes in
        position %= len(data) + 1
        data = data[:position] + junk + data[position:]
    path = tmp_path_factory.mktemp("cfg") / "config.yaml"
    path.write_bytes(data)
    ok_or_one_line(lambda: load_task_config(read_yaml(path)))


def _dumpable(config: Any) -> bool:
    try:
        yaml.safe_dump(config)
        return True
    except yaml.YAMLError:
        return False
