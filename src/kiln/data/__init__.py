"""Loading, cleaning and splitting data."""

from kiln.data.cleaning import check_columns, clean_frame
from kiln.data.loading import as_frame, read_table
from kiln.data.splitting import kfold_indices, three_way_split

__all__ = ["as_frame", "check_columns", "clean_frame", "kfold_indices", "read_table", "three_way_split"]
