"""Config schema: shipped configs validate; bad keys and values are named."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import ROOT, run_snakemake

from temflow.config import describe_config_error

SCHEMA_PATH = ROOT / "config" / "schema.yaml"


@pytest.fixture(scope="module")
def schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


@pytest.mark.parametrize("name", ["config.yaml", "test.yaml", "paper.yaml"])
def test_shipped_configs_validate(schema, name):
    config = yaml.safe_load((ROOT / "config" / name).read_text())
    jsonschema.Draft202012Validator(schema).validate(config)


def test_every_schema_key_is_documented(schema):
    readme = (ROOT / "config" / "README.md").read_text()

    def keys(node, prefix=""):
        for key, sub in node.get("properties", {}).items():
            yield f"{prefix}{key}"
            yield from keys(sub, f"{prefix}{key}.")

    missing = [k for k in keys(schema) if f"`{k}`" not in readme]
    assert not missing, f"config/README.md does not document: {missing}"


def test_misspelled_key_is_named(test_config):
    config = yaml.safe_load(yaml.safe_dump(test_config))
    config["md"]["temperatur_K"] = config["md"].pop("temperature_K")
    message = describe_config_error(config, SCHEMA_PATH)
    assert "md" in message and "'temperatur_K' was unexpected" in message


def test_out_of_range_value_is_named(test_config):
    config = yaml.safe_load(yaml.safe_dump(test_config))
    config["md"]["temperature_K"] = -5
    message = describe_config_error(config, SCHEMA_PATH)
    assert message.startswith("config error at md.temperature_K")


def test_snakemake_stops_on_misspelled_key(tmp_path: Path, test_config):
    config = yaml.safe_load(yaml.safe_dump(test_config))
    config["md"]["n_rusn"] = 2
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    proc = run_snakemake("-n", results_dir=tmp_path / "r", configfile=str(bad), check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "config error at md" in output and "'n_rusn' was unexpected" in output
    assert not (tmp_path / "r").exists()


def test_task_augmentation_override_is_checked(test_config):
    config = yaml.safe_load(yaml.safe_dump(test_config))
    config["monet"]["task_augmentation"] = {"fbm_alpha": {"augment_noise_step_std": 1.5}}
    message = describe_config_error(config, SCHEMA_PATH)
    assert message.startswith("config error at monet.task_augmentation.fbm_alpha")
    config["monet"]["task_augmentation"] = {"segment": {"augment_rotate": True}}
    message = describe_config_error(config, SCHEMA_PATH)
    assert "'segment' was unexpected" in message
