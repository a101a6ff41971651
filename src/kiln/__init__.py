"""kiln: one declarative config takes a dataset through train → evaluate → predict → serve."""

import os as _os

# Idle OpenMP threads must sleep, not spin, on small shared CPUs (set before torch loads).
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from kiln.api import Model, cross_validate, load, train  # noqa: E402
from kiln.errors import KilnError  # noqa: E402

__version__ = "0.1.0"
__all__ = ["KilnError", "Model", "cross_validate", "load", "train", "__version__"]
