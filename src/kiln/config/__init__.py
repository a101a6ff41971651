"""Config schema and loading."""

from kiln.config.loader import data_dir, expand_path, load_any_config, load_config, read_yaml
from kiln.config.schema import RunConfig

__all__ = ["RunConfig", "data_dir", "expand_path", "load_any_config", "load_config", "read_yaml"]
