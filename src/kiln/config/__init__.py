"""Generic config machinery: YAML reading, ${VAR} expansion, `--set` overrides, validation with
one-line errors. Each feature, model and task declares its own schema on top of `Section`."""

from kiln.config.loader import DEVICE, apply_overrides, data_dir, expand_path, raw_config, read_yaml, set_path, validate
from kiln.config.section import Section
from kiln.config.sections import SECTIONS, register_section, split_sections, validate_section

__all__ = ["DEVICE", "SECTIONS", "Section", "apply_overrides", "data_dir", "expand_path", "raw_config", "read_yaml", "register_section", "set_path", "split_sections", "validate", "validate_section"]
