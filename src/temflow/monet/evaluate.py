"""MoNet predictions on held-out trajectory sets and the summary tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from temflow.evaluation.calibration import apply_temperature, expected_calibration_error
from temflow.evaluation.classification import accuracy, confusion_matrix, mae_by_range
from temflow.io import atomic_path
from temflow.monet.card import load_monet
from temflow.monet.data import inputs_of
from temflow.monet.tasks import get_task
from temflow.training import predict
from temflow.trajectories.io import CLASSES, read_trajectories

#: Alpha ranges of the MAE-by-range table.
ALPHA_EDGES = (0.0, 0.25, 0.5, 0.75, 1.0, 2.0)


def card_temperature(card: dict) -> float:
    """The calibration temperature of a classifier's card (1 for a card without one)."""
    return float((card.get("calibration") or {}).get("temperature", 1.0))


def evaluate_task(
    task: str,
    model_pt: str | Path,
    test_h5: str | Path,
    out_csv: str | Path,
    device: str = "auto",
    batch_size: int = 256,
) -> pd.DataFrame:
    """Predictions on a held-out set, one row per trajectory, written to ``out_csv``;
    a classifier's probabilities with its card's calibration temperature."""
    spec = get_task(task)
    model, card = load_monet(model_pt, task)
    data = read_trajectories(test_h5)
    x = inputs_of(data, model.noise_input)
    out = predict(model, x, batch_size=batch_size, device=device).numpy()
    frame = pd.DataFrame(
        {
            "index": np.arange(len(data)),
            "label": data.label,
            "class": [CLASSES[i] for i in data.label],
            "alpha": data.alpha,
        }
    )
    if spec.is_classifier:
        probs = apply_temperature(out, card_temperature(card))
        for i, name in enumerate(CLASSES):
            frame[f"p_{name}"] = probs[:, i]
        frame["predicted"] = probs.argmax(1)
        frame["predicted_class"] = [CLASSES[i] for i in frame["predicted"]]
    else:
        frame["alpha_predicted"] = out
    with atomic_path(out_csv) as tmp:
        frame.to_csv(tmp, index=False)
    return frame


def class_probabilities(frame: pd.DataFrame) -> np.ndarray:
    """The ``p_{class}`` columns of an evaluation table, (N, 3)."""
    return frame[[f"p_{c}" for c in CLASSES]].to_numpy(dtype=float)


def _ece(frame: pd.DataFrame) -> float:
    return expected_calibration_error(class_probabilities(frame), frame.label.to_numpy())


def summarise(
    classify: pd.DataFrame | None,
    noisy: pd.DataFrame | None,
    fbm: pd.DataFrame | None,
    ctrw: pd.DataFrame | None,
) -> tuple[pd.DataFrame, ...]:
    """(summary rows metric/value, confusion matrix table, MAE by alpha range table);
    the rows include the expected calibration error (``ece``, ``ece_noisy``)."""
    rows, conf, ranges = [], pd.DataFrame(), []
    if classify is not None:
        rows.append(
            {
                "metric": "accuracy",
                "value": accuracy(classify.label, classify.predicted),
                "n": len(classify),
            }
        )
        rows.append({"metric": "ece", "value": _ece(classify), "n": len(classify)})
        cm = confusion_matrix(classify.label, classify.predicted, len(CLASSES))
        conf = pd.DataFrame(
            cm, index=[f"true_{c}" for c in CLASSES], columns=[f"pred_{c}" for c in CLASSES]
        )
    if noisy is not None:
        rows.append(
            {
                "metric": "accuracy_noisy",
                "value": accuracy(noisy.label, noisy.predicted),
                "n": len(noisy),
            }
        )
        rows.append({"metric": "ece_noisy", "value": _ece(noisy), "n": len(noisy)})
    for name, frame in (("fbm", fbm), ("ctrw", ctrw)):
        if frame is None:
            continue
        err = np.abs(frame.alpha_predicted - frame.alpha)
        rows.append({"metric": f"{name}_alpha_mae", "value": float(err.mean()), "n": len(frame)})
        table = mae_by_range(frame.alpha, frame.alpha_predicted, ALPHA_EDGES)
        table.insert(0, "process", name)
        ranges.append(table[table.n > 0])
    by_range = pd.concat(ranges, ignore_index=True) if ranges else pd.DataFrame()
    return pd.DataFrame(rows), conf, by_range
