"""The MoNet authors' released Keras networks, evaluated with h5py and numpy (no TensorFlow).

The public MoNet repository (vidajamali/MoNet, Jamali et al., PNAS 118:e2017616118,
2021) ships trained Keras 2 models such as ``Models/FINALmodel_300.h5``: a functional
graph (``model_config``) of Conv1D (causal or same padding, dilated, ReLU),
BatchNormalization, GlobalMaxPooling1D, Concatenate and Dense layers, with the weights
under ``model_weights/<layer>/<layer>/<name>:0``. :func:`load_keras_model` reads that
graph as the file describes it (the classifier's seventh branch, ``x7`` in their
training script, is not in the graph and is not used), and :meth:`KerasGraph.predict`
runs it in float64.

:func:`reference_class_probabilities` is their ``classification_on_file``: each axis
separately, ``dx = diff(x - mean x)`` divided by ``std(dx)``, the first ``L - 1``
increments, the two per-axis softmax outputs averaged; their class order (0 FBM,
1 Brownian, 2 CTRW) is returned as temflow's (brownian, fbm, ctrw).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from temflow.errors import TemflowError
from temflow.trajectories.io import CLASSES

#: Their class index of each of temflow's classes (brownian, fbm, ctrw).
REFERENCE_ORDER = {"fbm": 0, "brownian": 1, "ctrw": 2}
SUPPORTED = ("InputLayer", "Conv1D", "BatchNormalization", "GlobalMaxPooling1D")
SUPPORTED += ("Concatenate", "Dense")


@dataclass
class KerasLayer:
    kind: str
    name: str
    inputs: list[str]
    config: dict[str, Any]
    weights: dict[str, np.ndarray] = field(default_factory=dict)


def _activation(x: np.ndarray, name: str) -> np.ndarray:
    if name == "linear":
        return x
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    raise TemflowError(f"Keras activation {name!r} is not supported")


def _conv1d(x: np.ndarray, layer: KerasLayer) -> np.ndarray:
    """Keras Conv1D, channels last: x (N, T, C_in), kernel (K, C_in, C_out)."""
    cfg, kernel, bias = layer.config, layer.weights["kernel"], layer.weights.get("bias")
    k, d = kernel.shape[0], int(cfg["dilation_rate"][0])
    if int(cfg["strides"][0]) != 1:
        raise TemflowError(f"{layer.name}: strided Conv1D is not supported")
    total = (k - 1) * d
    pad = {"causal": (total, 0), "same": (total // 2, total - total // 2), "valid": (0, 0)}
    if cfg["padding"] not in pad:
        raise TemflowError(f"{layer.name}: padding {cfg['padding']!r} is not supported")
    xp = np.pad(x, ((0, 0), pad[cfg["padding"]], (0, 0)))
    t_out = xp.shape[1] - total
    out = np.zeros((x.shape[0], t_out, kernel.shape[2]))
    for j in range(k):
        out += xp[:, j * d : j * d + t_out] @ kernel[j]
    if bias is not None:
        out += bias
    return _activation(out, cfg.get("activation", "linear"))


def _apply(layer: KerasLayer, args: list[np.ndarray]) -> np.ndarray:
    cfg, w = layer.config, layer.weights
    if layer.kind == "Conv1D":
        return _conv1d(args[0], layer)
    if layer.kind == "BatchNormalization":
        scale = w.get("gamma", 1.0) / np.sqrt(w["moving_variance"] + cfg["epsilon"])
        return (args[0] - w["moving_mean"]) * scale + w.get("beta", 0.0)
    if layer.kind == "GlobalMaxPooling1D":
        return args[0].max(axis=1)
    if layer.kind == "Concatenate":
        return np.concatenate(args, axis=-1)
    if layer.kind == "Dense":
        out = args[0] @ w["kernel"] + (w["bias"] if "bias" in w else 0.0)
        return _activation(out, cfg.get("activation", "linear"))
    raise TemflowError(f"Keras layer {layer.kind} is not supported")


@dataclass
class KerasGraph:
    """A Keras functional model: layers in file order, its input and output layer."""

    layers: list[KerasLayer]
    input_name: str
    output_name: str
    input_length: int | None

    def predict(self, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Outputs of the model for inputs ``x`` (N, T, C), in batches, float64."""
        outs = []
        for start in range(0, len(x), batch_size):
            values = {self.input_name: np.asarray(x[start : start + batch_size], np.float64)}
            for layer in self.layers:
                if layer.kind != "InputLayer":
                    values[layer.name] = _apply(layer, [values[i] for i in layer.inputs])
            outs.append(values[self.output_name])
        return np.concatenate(outs)


def load_keras_model(path: str | Path) -> KerasGraph:
    """Read a Keras 2 functional model (HDF5 with ``model_config`` and ``model_weights``)
    of the layer kinds in :data:`SUPPORTED`; TemflowError naming the file otherwise."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise TemflowError(f"{path}: Keras model file not found")
    try:
        with h5py.File(path, "r") as f:
            cfg = json.loads(f.attrs["model_config"])["config"]
            layers = []
            for entry in cfg["layers"]:
                kind, name = entry["class_name"], entry["name"]
                if kind not in SUPPORTED:
                    raise TemflowError(f"{path}: layer {name} of kind {kind} is not supported")
                nodes = entry.get("inbound_nodes") or [[]]
                layer = KerasLayer(kind, name, [n[0] for n in nodes[0]], entry["config"])
                group = f["model_weights"].get(name)
                if group is not None:
                    for wname in group.attrs.get("weight_names", []):
                        wname = wname.decode() if isinstance(wname, bytes) else wname
                        key = wname.rsplit("/", 1)[-1].split(":")[0]
                        layer.weights[key] = np.asarray(group[wname], dtype=np.float64)
                layers.append(layer)
            inp, out = cfg["input_layers"][0][0], cfg["output_layers"][0][0]
    except (OSError, KeyError, ValueError) as err:
        raise TemflowError(f"{path}: not a Keras 2 functional model file ({err})") from err
    shape = next(lay.config.get("batch_input_shape") for lay in layers if lay.name == inp)
    length = None if shape is None or shape[1] is None else int(shape[1])
    return KerasGraph(layers, inp, out, length)


def reference_class_probabilities(model: KerasGraph, positions: np.ndarray) -> np.ndarray:
    """Class probabilities (N, 3) in temflow's order for tracks ``(N, L, 2)`` with the
    reference's normalisation (module docstring); ``L - 1`` must be at least the
    model's input length."""
    x = np.asarray(positions, dtype=np.float64)
    n_inc = model.input_length or x.shape[1] - 1
    if x.ndim != 3 or x.shape[1] - 1 < n_inc:
        raise TemflowError(
            f"reference MoNet: expected tracks (N, >= {n_inc + 1}, D), got {x.shape}"
        )
    dx = np.diff(x - x.mean(axis=1, keepdims=True), axis=1)
    std = dx.std(axis=1, keepdims=True)
    # A track that does not move on an axis stays zeros there, as in the reference.
    dx = dx / np.where(std > 0, std, 1.0)
    per_axis = [model.predict(dx[:, :n_inc, axis, None]) for axis in range(x.shape[2])]
    probs = np.mean(per_axis, axis=0)
    return probs[:, [REFERENCE_ORDER[c] for c in CLASSES]]
