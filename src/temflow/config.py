"""Config helpers for the workflow: the merged config, typed ``--config`` values, messages
naming the bad key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from temflow.errors import TemflowError


def load_schema(schema_path: str | Path) -> dict[str, Any]:
    """The config schema (config/schema.yaml) as a dict."""
    return yaml.safe_load(Path(schema_path).read_text())


#: Keys that were renamed: old dotted key -> (new dotted key, why). The schema rejects the
#: old key, and the message names the new one (:func:`renamed_key_error`).
RENAMED_KEYS: dict[str, tuple[str, str]] = {
    "hrtem.microscope.Cs_A": (
        "hrtem.microscope.Cs_um",
        "Cs is given in micrometres: tens of A of Cs change no 50 keV image",
    ),
}


def renamed_key_error(section: str, keys: Sequence[str]) -> str | None:
    """The message for the first of ``keys`` (in ``section``, dotted) that was renamed
    (:data:`RENAMED_KEYS`), or None."""
    for key in keys:
        old = f"{section}.{key}" if section else str(key)
        if old in RENAMED_KEYS:
            new, why = RENAMED_KEYS[old]
            return f"{old} was renamed {new} ({why}); use {new.rsplit('.', 1)[-1]}"
    return None


#: The Snakefile's ``configfile:`` (read first) and the schema, relative to the repository root.
DEFAULT_CONFIG = Path("config") / "config.yaml"
SCHEMA = Path("config") / "schema.yaml"


def load_config(
    configfiles: Sequence[str | Path] = (),
    overrides: Mapping[str, Any] | None = None,
    root: str | Path = ".",
) -> dict[str, Any]:
    """The config that ``snakemake --configfile CONFIGFILES --config OVERRIDES`` runs with.

    Built as Snakemake builds it: config/config.yaml, then each of ``configfiles`` merged
    over it, then ``overrides`` (mappings merge key by key, lists and single values
    replace: Snakemake's own ``update_config``); then typed (:func:`parse_string_values`)
    and validated against config/schema.yaml with its defaults filled in, as
    workflow/rules/common.smk does. Relative paths are below ``root``, the repository.
    """
    from snakemake.common.configfile import load_configfile
    from snakemake.utils import update_config

    root = Path(root)
    config: dict[str, Any] = {}
    for path in (DEFAULT_CONFIG, *configfiles):
        update_config(config, load_configfile(str(root / path)))
    update_config(config, dict(overrides or {}))
    return prepare_config(config, root / SCHEMA)


def prepare_config(config: Mapping[str, Any], schema_path: str | Path) -> dict[str, Any]:
    """``config`` as the workflow runs with it: typed (:func:`parse_string_values`), then
    validated against the schema with its defaults filled in. Raises TemflowError naming
    the first invalid key (:func:`describe_config_error`)."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    typed = parse_string_values(dict(config), load_schema(schema_path))
    try:
        validate(typed, str(schema_path))
    except WorkflowError:
        # Snakemake's message dumps the whole schema; name the key, in one line.
        raise TemflowError(describe_config_error(typed, schema_path)) from None
    return typed


def parse_string_values(config: Any, schema: Mapping[str, Any]) -> Any:
    """``config`` with every string the schema does not accept as a string YAML-parsed.

    Snakemake reads a nested ``--config`` value (``md="{temperature_K: 600}"``) with YAML's
    base loader, which makes every leaf a string (``'600'``). Parsing such a leaf again where
    its schema wants a number, integer, boolean, null, array or object gives it the type a
    config file would give it. Strings the schema accepts (paths, ``auto``) stay strings; a
    string YAML cannot parse is left for the validation to name. Returns a new structure.
    """
    return _parse(config, schema, schema)


def _parse(value: Any, node: Mapping[str, Any] | None, root: Mapping[str, Any]) -> Any:
    node = _resolve(node, root)
    if node is None:
        return value
    if isinstance(value, str):
        if _accepts_string(value, node, root):
            return value
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        if isinstance(parsed, str):
            return value
        return _parse(parsed, node, root)
    if isinstance(value, Mapping):
        return {k: _parse(v, _property_schema(node, k, root), root) for k, v in value.items()}
    if isinstance(value, list):
        return [_parse(v, _items_schema(node, root), root) for v in value]
    return value


def _resolve(node: Mapping[str, Any] | None, root: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Follow a local ``$ref`` (``#/$defs/range``); the other keys of the node are kept."""
    if not isinstance(node, Mapping) or "$ref" not in node:
        return node if isinstance(node, Mapping) else None
    target: Any = root
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return {**_resolve(target, root), **{k: v for k, v in node.items() if k != "$ref"}}


def _branches(node: Mapping[str, Any], root: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [_resolve(b, root) for b in (*node.get("oneOf", ()), *node.get("anyOf", ()))]


def _accepts_string(value: str, node: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    """Whether ``value`` may stay a string here (type, ``const`` and ``enum`` allow it)."""
    branches = _branches(node, root)
    if branches and not any(_accepts_string(value, b, root) for b in branches):
        return False
    types = node.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        if "string" not in types:
            return False
    if "const" in node and node["const"] != value:
        return False
    if "enum" in node and value not in node["enum"]:
        return False
    return True


def _property_schema(node: Mapping[str, Any], key: str, root: Mapping[str, Any]):
    for candidate in (node, *_branches(node, root)):
        if key in candidate.get("properties", {}):
            return candidate["properties"][key]
        extra = candidate.get("additionalProperties")
        if isinstance(extra, Mapping):
            return extra
    return None


def _items_schema(node: Mapping[str, Any], root: Mapping[str, Any]):
    for candidate in (node, *_branches(node, root)):
        if isinstance(candidate.get("items"), Mapping):
            return candidate["items"]
    return None


def describe_config_error(config: dict[str, Any], schema_path: str | Path) -> str:
    """One line naming the first invalid key of ``config`` and what was expected."""
    schema = load_schema(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return "config is invalid (no details available)"
    where = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        renamed = renamed_key_error(".".join(str(p) for p in error.absolute_path), extra)
        if renamed:
            return f"config error at {where}: {renamed}"
        return f"config error at {where}: {error.message}; allowed keys: {', '.join(allowed)}"
    return f"config error at {where}: {error.message}"
