"""Config schema: shipped configs validate; bad keys and values are named."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import ROOT, run_snakemake

from temflow.config import describe_config_error, parse_string_values

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


def test_nested_config_strings_get_the_schema_types(schema):
    # what Snakemake's --config parser makes of md="{temperature_K: 600}" and friends
    cli = {
        "seed": 7,
        "results_dir": "600",
        "device": "cpu",
        "md": {"temperature_K": "600", "systems": ["graphene"], "cutoffs_A": {"C-C": "1.9"}},
        "plots": {"dpi": "100"},
        "hrtem": {"simulation": {"output_sampling_A": ["0.19", "0.21"]}},
        "segmentation": {
            "peak_threshold": "0.5",
            "crop_px": "null",
            "class_weights": "none",
            "training": {"ema_decay": "0.99", "patience": "null"},
            "figure": {"substrate": "bare"},
        },
        "monet": {"augment_rotate": "true", "training": {"max_steps_per_epoch": "[1, 2]"}},
    }
    typed = parse_string_values(cli, schema)
    assert typed == {
        "seed": 7,
        "results_dir": "600",  # the schema wants a string: left alone
        "device": "cpu",
        "md": {"temperature_K": 600, "systems": ["graphene"], "cutoffs_A": {"C-C": 1.9}},
        "plots": {"dpi": 100},
        "hrtem": {"simulation": {"output_sampling_A": [0.19, 0.21]}},
        "segmentation": {
            "peak_threshold": 0.5,
            "crop_px": None,
            "class_weights": "none",  # an enum value, not YAML's null
            "training": {"ema_decay": 0.99, "patience": None},
            "figure": {"substrate": "bare"},
        },
        # parsed, and then rejected by the validation (a list is no integer)
        "monet": {"augment_rotate": True, "training": {"max_steps_per_epoch": [1, 2]}},
    }
    assert cli["md"]["temperature_K"] == "600"  # a new structure; the input is unchanged
    assert parse_string_values({"segmentation": {"peak_threshold": "auto"}}, schema) == {
        "segmentation": {"peak_threshold": "auto"}
    }
    # what YAML does not turn into another type stays a string for the validation to name
    assert parse_string_values({"md": {"temperature_K": "hot"}}, schema) == {
        "md": {"temperature_K": "hot"}
    }
    assert describe_config_error(
        parse_string_values({"md": {"temperature_K": "hot"}}, schema), SCHEMA_PATH
    ).startswith("config error at md.temperature_K: 'hot' is not of type 'number'")
