"""The fault suite's helpers (_procs.py) are imported by path."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
