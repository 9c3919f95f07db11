"""Config validation messages that name the offending key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml


def describe_config_error(config: dict[str, Any], schema_path: str | Path) -> str:
    """One line naming the first invalid key of ``config`` and what was expected."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return "config is invalid (no details available)"
    where = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        return f"config error at {where}: {error.message}; allowed keys: {', '.join(allowed)}"
    return f"config error at {where}: {error.message}"
