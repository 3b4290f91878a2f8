"""From the network a user wrote to the one every analysis reads: the same function, in the layout's form.

``analysis_form(config, state)`` returns a config and state dict that compute
exactly what the imported ones do, rewritten so that ``Layout`` accepts them:

* batch normalisation (eval mode) folded into the Linear or Conv2d layer
  right before it: ``W' = W * g``, ``b' = (b - running_mean) * g + beta`` with
  ``g = gamma / sqrt(running_var + eps)``, per output channel;
* max-pooling written before a non-decreasing activation moved after it
  (``max(f(x)) == f(max(x))``, exactly), and a Flatten written before an
  element-wise activation or dropout moved after them;
* a layer without a bias given a zero bias, so every unit has one.

What cannot be rewritten exactly (average pooling before an activation,
max-pooling before GELU or SiLU, batch normalisation anywhere but right
after its layer) is refused with the reason. The card keeps what was
imported; the notes say what was rewritten.
"""

from __future__ import annotations

import dataclasses

import torch

from .config import (
    MONOTONE,
    Activation,
    BatchNorm,
    ConfigError,
    Conv2d,
    Dropout,
    Flatten,
    LayerSpec,
    Linear,
    NetConfig,
    Pool,
)

StateDict = dict[str, torch.Tensor]


def analysis_form(config: NetConfig, state: StateDict) -> tuple[NetConfig, StateDict, list[str]]:
    """``(config, state, notes)`` of the same function in the form analyses read (module docstring)."""
    notes: list[str] = []
    layers, state = _fold_batchnorm(list(config.layers), dict(state), notes)
    layers = _reorder(layers, notes)
    layers, state = _with_biases(layers, state, notes)
    return NetConfig(tuple(layers), config.normalization), state, notes


def _fold_batchnorm(layers: list[LayerSpec], state: StateDict, notes: list[str]) -> tuple[list[LayerSpec], StateDict]:
    out: list[LayerSpec] = []
    for spec in layers:
        if not isinstance(spec, BatchNorm):
            out.append(spec)
            continue
        previous = out[-1] if out else None
        if not isinstance(previous, Linear | Conv2d):
            where = f"after {previous.describe()}" if previous is not None else "on the input"
            raise ConfigError(f"batch normalisation {spec.name} comes {where}: MechMNISTic folds batch "
                              "normalisation into the Linear or Conv2d layer right before it, and there is none")
        state = fold_batchnorm_into(previous, spec, state)
        out[-1] = dataclasses.replace(previous, bias=True)
        notes.append(f"batch normalisation {spec.name} folded into {previous.name} (eval mode: running statistics)")
    return out, state


def fold_batchnorm_into(layer: Linear | Conv2d, bn: BatchNorm, state: StateDict) -> StateDict:
    """The state with ``bn``'s parameters folded into ``layer``'s weight and bias (and ``bn``'s keys gone)."""
    weight = state[f"{layer.name}.weight"].double()
    bias = state.get(f"{layer.name}.bias")
    bias = torch.zeros(weight.shape[0], dtype=torch.float64) if bias is None else bias.double()
    mean, var = state[f"{bn.name}.running_mean"].double(), state[f"{bn.name}.running_var"].double()
    gamma = state.get(f"{bn.name}.weight")
    beta = state.get(f"{bn.name}.bias")
    gamma = torch.ones_like(mean) if gamma is None else gamma.double()
    beta = torch.zeros_like(mean) if beta is None else beta.double()
    scale = gamma / torch.sqrt(var + bn.eps)
    folded = {k: v for k, v in state.items() if not k.startswith(f"{bn.name}.")}
    shape = (-1,) + (1,) * (weight.dim() - 1)
    folded[f"{layer.name}.weight"] = (weight * scale.reshape(shape)).float()
    folded[f"{layer.name}.bias"] = ((bias - mean) * scale + beta).float()
    return folded


def _reorder(layers: list[LayerSpec], notes: list[str]) -> list[LayerSpec]:
    """Swap neighbours into the layout's order where they commute exactly (module docstring)."""
    layers = list(layers)
    changed = True
    while changed:
        changed = False
        for i in range(len(layers) - 1):
            a, b = layers[i], layers[i + 1]
            if isinstance(a, Flatten) and isinstance(b, Activation | Dropout):
                layers[i], layers[i + 1] = b, a
                changed = True
            elif isinstance(a, Pool) and isinstance(b, Activation):
                if a.kind != "max" or b.function not in MONOTONE:
                    raise ConfigError(f"{a.describe()} before {b.describe()}: pooling before the activation can be "
                                      "moved after it only for max-pooling and a non-decreasing activation")
                layers[i], layers[i + 1] = b, a
                notes.append(f"{a.describe()} written before {b.describe()}: moved after it (they commute)")
                changed = True
            elif isinstance(a, Pool) and isinstance(b, Dropout):
                layers[i], layers[i + 1] = b, a  # dropout is the identity at inference
                changed = True
    return layers


def _with_biases(layers: list[LayerSpec], state: StateDict, notes: list[str]) -> tuple[list[LayerSpec], StateDict]:
    out = []
    for spec in layers:
        if isinstance(spec, Linear | Conv2d) and not spec.bias:
            size = spec.out_features if isinstance(spec, Linear) else spec.out_channels
            state = {**state, f"{spec.name}.bias": torch.zeros(size)}
            spec = dataclasses.replace(spec, bias=True)
            notes.append(f"{spec.name} has no bias: given a zero bias")
        out.append(spec)
    return out, state
