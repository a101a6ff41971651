"""kiln.runtime: the frozen heap around training (each case in a fresh interpreter, since this one froze
its heap when it imported kiln's API)."""

import subprocess
import sys

import pytest


def _run(code: str) -> None:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("case", [
    # nobody froze: the block freezes what is alive, and unfreezes it after
    "import gc; from kiln.runtime import frozen_heap\n"
    "assert gc.get_freeze_count() == 0\n"
    "with frozen_heap(): assert gc.get_freeze_count() > 1000\n"
    "assert gc.get_freeze_count() == 0",
    # kiln froze for good (the API's first import, a server): the block leaves it frozen
    "import gc; from kiln.runtime import freeze_heap, frozen_heap\n"
    "freeze_heap(); n = gc.get_freeze_count(); assert n > 1000\n"
    "with frozen_heap(): pass\n"
    "assert gc.get_freeze_count() == n",
    # someone else froze: the block leaves it frozen too
    "import gc; from kiln.runtime import frozen_heap\n"
    "gc.freeze(); n = gc.get_freeze_count()\n"
    "with frozen_heap(): pass\n"
    "assert gc.get_freeze_count() == n",
    # kiln's first API import freezes through kiln.runtime, so training knows without counting
    "import kiln; kiln.train; import kiln.runtime; assert kiln.runtime._heap_frozen_for_good",
], ids=["unfrozen", "kiln-froze", "other-froze", "api-import"])
def test_frozen_heap(case: str) -> None:
    _run(case)
