"""Production monitoring: training statistics, masked request sampling, drift (PSI, KS, prediction shift)."""

from __future__ import annotations

from kiln.monitor.masking import mask_text, mask_value
from kiln.monitor.stats import STATS_FILE, training_stats, write_training_stats

__all__ = ["STATS_FILE", "mask_text", "mask_value", "training_stats", "write_training_stats"]
