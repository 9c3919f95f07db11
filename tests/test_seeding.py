"""Job seeds: one table (temflow.seeding.WORKFLOW_SEEDS), values fixed since the first run."""

from __future__ import annotations

import pytest

from temflow.seeding import WORKFLOW_SEEDS, derive_rng, derive_seed, workflow_seed_key

# (master seed, rule, wildcards) -> the seed the workflow has always given that job
PINNED = [
    (2026, "hrtem_shard", {"dataset": "train_bare", "shard": "0003"}, 463573321),
    (7, "trajectories_generate", {"set": "classify_test_noisy"}, 2767988568),
    (2026, "monet_train", {"task": "fbm_alpha"}, 26445145),
    (2026, "segmentation_train", {"net": "msdnet", "substrate": "graphene"}, 4163083167),
    (7, "md_run", {"system": "mos2_sheet", "run": "0"}, 87464227),
]


@pytest.mark.parametrize(("master", "rule", "wildcards", "seed"), PINNED)
def test_workflow_seeds_keep_their_values(master, rule, wildcards, seed):
    assert derive_seed(*workflow_seed_key(master, rule, wildcards)) == seed


def test_md_run_generator_keeps_its_stream():
    # md_run draws from derive_rng(master, "md_run", system, run), not from an integer seed
    rng = derive_rng(*workflow_seed_key(7, "md_run", {"system": "mos2_sheet", "run": "0"}))
    assert int(rng.integers(2**31)) == 588248102


def test_seed_keys_as_the_stages_wrote_them():
    assert workflow_seed_key(2026, "hrtem_shard", {"dataset": "val_bare", "shard": "0012"}) == (
        2026,
        "hrtem",
        "val_bare",
        12,
    )
    assert workflow_seed_key(3, "md_run", {"system": "graphene", "run": "2"}) == (
        3,
        "md_run",
        "graphene",
        2,
    )
    assert set(WORKFLOW_SEEDS) == {
        "md_run",
        "hrtem_shard",
        "trajectories_generate",
        "monet_train",
        "segmentation_train",
    }
    with pytest.raises(KeyError, match="md_figure"):
        workflow_seed_key(1, "md_figure", {})
