"""Saving trained networks with a model card, and loading them back with checks.

``save_model("results/models/monet_classify.pt", model, card)`` writes the weights and
card to ``monet_classify.pt`` and the card alone, human-readable, to ``monet_classify.json``.
The card is a JSON-able dict; :func:`save_model` fills in ``architecture`` (``class``: the
model's class name, ``args``: ``model.hparams``), ``n_parameters`` and
``software_versions``. Callers add e.g. ``classes``, ``training`` (the TrainConfig as a
dict), ``data`` (file -> sha256, see :func:`sha256_file`), ``metrics``, ``notes``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from temflow.errors import TemflowError
from temflow.io import atomic_path, software_versions


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes (for the ``data`` entry of a model card)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def architecture_of(model: nn.Module) -> dict[str, Any]:
    """{"class": name, "args": constructor kwargs} from ``model.hparams``."""
    args = getattr(model, "hparams", None)
    if not isinstance(args, Mapping):
        raise TemflowError(f"{type(model).__name__}: a saved model needs an `hparams` dict")
    return {"class": type(model).__name__, "args": dict(args)}


def card_path(path_pt: str | Path) -> Path:
    return Path(path_pt).with_suffix(".json")


def save_model(path_pt: str | Path, model: nn.Module, card: Mapping[str, Any]) -> dict:
    """Write ``{net}.pt`` (state dict + card) and ``{net}.json`` (card), both atomically."""
    full = dict(card)
    full["architecture"] = architecture_of(model)
    full["n_parameters"] = int(sum(p.numel() for p in model.parameters()))
    full.setdefault("software_versions", software_versions())
    text = json.dumps(full, indent=2, sort_keys=True, default=_jsonable)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path_pt) as tmp:
        torch.save({"state_dict": state, "card": json.loads(text)}, tmp)
    with atomic_path(card_path(path_pt)) as tmp:
        tmp.write_text(text + "\n")
    return json.loads(text)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _mismatches(expected: Any, actual: Any, where: str) -> list[str]:
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return [f"{where}: expected a mapping, card has {actual!r}"]
        out = []
        for key, value in expected.items():
            if key not in actual:
                out.append(f"{where}.{key}: missing from the card")
            else:
                out += _mismatches(value, actual[key], f"{where}.{key}")
        return out
    if isinstance(expected, (list, tuple)):
        expected = list(expected)
    if expected != actual:
        return [f"{where}: expected {expected!r}, card has {actual!r}"]
    return []


#: What rebuilds a network from its card: one model class, or class name -> class.
Factory = Callable[..., nn.Module] | Mapping[str, Callable[..., nn.Module]]


def _builder(factory: Factory, class_name: str, path_pt: Path) -> Callable[..., nn.Module]:
    if not isinstance(factory, Mapping):
        return factory
    if class_name not in factory:
        raise TemflowError(
            f"{path_pt}: architecture {class_name!r} is not one of {sorted(factory)}"
        )
    return factory[class_name]


def load_model(
    path_pt: str | Path,
    factory: Factory,
    expected: Mapping[str, Any] | None = None,
    map_location: str | torch.device = "cpu",
) -> tuple[nn.Module, dict]:
    """Rebuild a saved network from its card; return (model in eval mode, card).

    ``factory`` builds the network from the card's ``architecture.args``: a model class,
    or a mapping from the card's ``architecture.class`` to classes (the caller's layer
    knows its networks; this one does not import them).

    ``expected`` is a nested subset of the card that must match exactly, e.g.
    ``{"architecture": {"class": "MoNet", "args": {"task": "classify"}},
    "classes": ["brownian", "fbm", "ctrw"]}``. The ``.json`` beside the ``.pt`` must equal
    the card inside it. Any mismatch, or weights that do not fit the architecture, raises
    TemflowError naming the file and the key.
    """
    path_pt = Path(path_pt)
    if not path_pt.is_file():
        raise TemflowError(f"{path_pt}: model file not found")
    try:
        blob = torch.load(path_pt, map_location=map_location, weights_only=True)
        card, state = blob["card"], blob["state_dict"]
    except Exception as err:  # noqa: BLE001 - any unreadable file is bad input
        raise TemflowError(f"{path_pt}: not a temflow model file ({err})") from err
    json_path = card_path(path_pt)
    if json_path.is_file() and json.loads(json_path.read_text()) != card:
        raise TemflowError(f"{json_path}: model card differs from the card inside {path_pt}")
    problems = _mismatches(expected or {}, card, "card")
    if problems:
        raise TemflowError(f"{path_pt}: " + "; ".join(problems))
    arch = card.get("architecture") or {}
    build = _builder(factory, arch.get("class", "?"), path_pt)
    try:
        model = build(**arch.get("args", {}))
        model.load_state_dict(state, strict=True)
    except (TypeError, RuntimeError) as err:
        raise TemflowError(
            f"{path_pt}: weights do not match the card's architecture: {err}"
        ) from err
    model.eval()
    return model, card
