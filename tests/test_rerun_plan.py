"""Rerun decisions without a real run: a results directory whose jobs are recorded as
finished through Snakemake's own metadata (empty outputs, tests/workflow_api.py
--record-finished). The fast counterpart of test_regeneration's end-to-end checks."""

from __future__ import annotations

import pytest
from test_regeneration import EVALUATION_CHANGES, _plan, check_evaluation_change
from workflow_api import planned, query


@pytest.fixture(scope="module")
def recorded_results(tmp_path_factory):
    results = tmp_path_factory.mktemp("recorded")
    query(results, record_finished=True)
    return results


def test_recorded_run_is_complete(recorded_results):
    assert planned(query(recorded_results)) == set()


@pytest.mark.parametrize("key", list(EVALUATION_CHANGES))
def test_evaluation_setting_reruns_no_training_and_no_simulation(
    recorded_results, tmp_path, test_config, key
):
    check_evaluation_change(recorded_results, tmp_path, test_config, key)


def test_robustness_set_change_resimulates_only_that_set(recorded_results, tmp_path):
    """A robustness set's own sample keys reach its shards only: its shards are simulated
    again and the models scored on them, nothing is trained again."""
    change = {
        "hrtem": {
            "datasets": {"val_bare_carbon": {"sample": {"contamination_thickness_A": [1, 2]}}}
        }
    }
    jobs = _plan(recorded_results, tmp_path, change)
    shards = {job["wildcards"]["dataset"] for job in jobs if job["rule"] == "hrtem_shard"}
    assert shards == {"val_bare_carbon"}
    rules = planned({"jobs": jobs})
    assert "segmentation_evaluate_robustness" in rules and "segmentation_figures" in rules
    assert not rules & {"segmentation_train", "segmentation_calibrate", "segmentation_evaluate"}
