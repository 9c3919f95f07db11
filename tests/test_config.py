"""Config schema: shipped configs validate; bad keys and values are named."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import ROOT, run_snakemake
from snakemake.cli import parse_config
from workflow_api import query

from temflow.config import describe_config_error, load_config, parse_string_values

SCHEMA_PATH = ROOT / "config" / "schema.yaml"


@pytest.fixture(scope="module")
def schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


@pytest.mark.parametrize("name", ["config.yaml", "test.yaml", "paper.yaml"])
def test_shipped_configs_validate(schema, name):
    # what a run sees: the file merged over config.yaml (load_config validates it too)
    config = load_config([f"config/{name}"], root=ROOT)
    jsonschema.Draft202012Validator(schema).validate(config)


@pytest.mark.parametrize("name", ["test.yaml", "paper.yaml"])
def test_override_files_hold_only_differences(name):
    """test.yaml and paper.yaml name only what differs from config.yaml: a value repeated
    there would hide which settings the file really changes."""
    default = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    override = yaml.safe_load((ROOT / "config" / name).read_text())

    def repeated(over, base, where=""):
        for key, value in over.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                yield from repeated(value, base[key], f"{where}{key}.")
            elif key in base and base[key] == value:
                yield f"{where}{key}"

    assert not list(repeated(override, default))


@pytest.mark.parametrize(
    ("configfiles", "overrides"),
    [
        (("config/test.yaml",), ()),
        (("config/paper.yaml",), ()),
        (("config/config.yaml",), ("seed=7", "md={temperature_K: 600}")),
    ],
)
def test_load_config_is_the_config_snakemake_runs_with(tmp_path, configfiles, overrides):
    """load_config (and so the test_config fixture) merges as Snakemake does: a key that
    config.yaml sets and test.yaml leaves out is inherited (e.g. test.yaml's
    segmentation.training.max_steps_per_epoch is config.yaml's 50)."""
    results = str(tmp_path / "r")
    seen = query(results, configfiles=configfiles, overrides=overrides)["config"]
    # items as Snakemake's --config parser reads them: nested values are YAML text
    expected = load_config(
        configfiles, {"results_dir": results, **parse_config(list(overrides))}, root=ROOT
    )
    assert seen == expected
    if configfiles == ("config/test.yaml",):
        assert seen["segmentation"]["training"]["max_steps_per_epoch"] == 50


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


def test_snakemake_names_the_new_key_of_a_renamed_one(tmp_path: Path, test_config):
    """hrtem.microscope.Cs_A (A) became Cs_um (micrometres): a config with the old key stops
    with one line naming the new key, and nothing is written."""
    config = yaml.safe_load(yaml.safe_dump(test_config))
    config["hrtem"]["microscope"]["Cs_A"] = config["hrtem"]["microscope"].pop("Cs_um")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    proc = run_snakemake("-n", results_dir=tmp_path / "r", configfile=str(bad), check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "hrtem.microscope.Cs_A was renamed hrtem.microscope.Cs_um" in output
    assert not (tmp_path / "r").exists()


def test_snakemake_stops_on_an_inverted_hrtem_range(tmp_path: Path, test_config):
    """A range the schema accepts but hrtem cannot use stops the run before any job, with
    one line naming the key; nothing is written."""
    config = yaml.safe_load(yaml.safe_dump(test_config))
    config["hrtem"]["microscope"]["Cs_um"] = [20, -20]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    proc = run_snakemake("-n", results_dir=tmp_path / "r", configfile=str(bad), check=False)
    assert proc.returncode != 0
    assert "hrtem.microscope.Cs_um: lo 20.0 > hi -20.0" in proc.stdout + proc.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("section", "key", "value", "where"),
    [
        ("sample", "contamination_thickness_A", [-1, 5], "hrtem.sample.contamination_thickness_A"),
        ("sample", "contamination_sides", ["top"], "hrtem.sample.contamination_sides"),
        ("microscope", "C21_nm", [-10, 10], "hrtem.microscope.C21_nm"),
        ("microscope", "angular_spread_mrad", [-1, 0], "hrtem.microscope.angular_spread_mrad"),
    ],
)
def test_bad_new_hrtem_values_are_named(test_config, section, key, value, where):
    config = yaml.safe_load(yaml.safe_dump(test_config))
    config["hrtem"][section][key] = value
    assert describe_config_error(config, SCHEMA_PATH).startswith(f"config error at {where}")


def test_task_augmentation_override_is_checked(test_config):
    config = yaml.safe_load(yaml.safe_dump(test_config))
    config["monet"]["task_augmentation"] = {"fbm_alpha": {"augment_noise_step_std": 1.5}}
    message = describe_config_error(config, SCHEMA_PATH)
    assert message.startswith("config error at monet.task_augmentation.fbm_alpha")
    config["monet"]["task_augmentation"] = {"segment": {"augment_rotate": True}}
    message = describe_config_error(config, SCHEMA_PATH)
    assert "'segment' was unexpected" in message
    config["monet"]["task_augmentation"] = {}
    config["monet"]["task_epochs"] = {"classify": 0}
    message = describe_config_error(config, SCHEMA_PATH)
    assert message.startswith("config error at monet.task_epochs.classify")


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


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"val_bare_carbon": {"sample": {"contamination_thickness_A": [5, 1]}}},
            "hrtem.datasets.val_bare_carbon (its own sample/microscope): "
            "hrtem.sample.contamination_thickness_A must be",
        ),
        (
            {"val_bare_carbon": {"microscope": {"dose_per_A2": [1, 2]}}},
            "hrtem.datasets.val_bare_carbon.microscope: unknown key(s) ['dose_per_A2']",
        ),
    ],
)
def test_snakemake_stops_on_a_bad_dataset_override(tmp_path: Path, test_config, change, message):
    """A dataset's own sample/microscope values are checked as the shared ones are, before
    any job, with one line naming the dataset; nothing is written."""
    config = yaml.safe_load(yaml.safe_dump(test_config))
    for name, entry in change.items():
        config["hrtem"]["datasets"][name].update(entry)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    proc = run_snakemake("-n", results_dir=tmp_path / "r", configfile=str(bad), check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert not (tmp_path / "r").exists()


def test_snakemake_stops_on_a_robustness_set_of_the_other_substrate(tmp_path: Path, test_config):
    config = yaml.safe_load(yaml.safe_dump(test_config))
    config["segmentation"]["datasets"]["bare"]["robustness"] = "val_graphene_carbon"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    proc = run_snakemake("-n", results_dir=tmp_path / "r", configfile=str(bad), check=False)
    assert proc.returncode != 0
    assert (
        "config error at segmentation.datasets.bare.robustness: dataset "
        "'val_graphene_carbon' is simulated on 'graphene', not 'bare'"
    ) in proc.stdout + proc.stderr
    assert not (tmp_path / "r").exists()


def test_dataset_section_replaces_only_the_datasets_own_keys(test_config):
    from temflow.hrtem.config import dataset_section

    hrtem = test_config["hrtem"]
    carbon = dataset_section(hrtem, "val_bare_carbon")
    assert carbon["sample"]["contamination_thickness_A"] == [0, 10]
    assert hrtem["sample"]["contamination_thickness_A"] == [0, 0]
    others = {k: v for k, v in carbon["sample"].items() if k != "contamination_thickness_A"}
    assert others == {k: hrtem["sample"][k] for k in others}
    assert carbon["microscope"] == hrtem["microscope"]
    assert dataset_section(hrtem, "val_bare")["sample"] == hrtem["sample"]
