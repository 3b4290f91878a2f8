"""Direct logit attribution: how much each group of units adds to a logit (or a logit difference).

The output layer is linear, ``logits = W h + b``, so a target ``T`` (one
logit, or the difference of two) is exactly ``sum_u w_u h_u + b_T`` with
``w = W[a] - W[b]`` (or ``W[a]``). Summing ``w_u h_u`` over the units of each
group gives the group's contribution; the contributions plus the bias term sum
exactly to the target (tested). A group's contribution is also exactly the
change in the target when that group is zero-ablated.

The attributed layer is the one feeding the output layer
(``model.layout.feeds_logits``): the last hidden fully connected layer (its
activations; a unit is a neuron), or, for a CNN without hidden fully
connected layers, the last conv layer's output maps (a unit is a channel,
summed over its positions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import MechMNISTicError
from ..hooks import run_with_cache
from ..models.architectures import MNISTNet
from ..models.layout import UnitLayer
from .units import Groups, check_disjoint, select_units

Target = tuple[int, int | None]
OTHER_GROUP = "other units"


class AttributionError(MechMNISTicError, ValueError):
    """An attribution that cannot be computed as asked."""


def _attributed_layer(model: MNISTNet) -> UnitLayer:
    """The unit layer whose output the logit layer reads (``model.layout.feeds_logits``), or an error
    saying the model has none."""
    feeds = model.layout.feeds_logits
    if feeds is None:
        raise AttributionError("the model has no hidden layer feeding its output layer")
    return feeds


def default_target(model: MNISTNet) -> Target:
    """``(1, 0)`` (logit 1 minus logit 0) for two classes; otherwise a target must be chosen."""
    if model.n_classes == 2:
        return (1, 0)
    raise AttributionError(f"choose a target class (0..{model.n_classes - 1}), or a pair (a, b) for logit a - logit b")


def check_target(model: MNISTNet, target: Target | int | None) -> Target:
    if target is None:
        return default_target(model)
    pair = (target, None) if isinstance(target, int | np.integer) else tuple(target)
    if len(pair) != 2:
        raise AttributionError(f"a target is a class or a pair of classes, got {target!r}")
    a, b = pair
    for c in (a, b):
        if c is not None and not 0 <= int(c) < model.n_classes:
            raise AttributionError(f"class {c} is out of range (0..{model.n_classes - 1})")
    if b is not None and int(a) == int(b):
        raise AttributionError("a logit difference needs two different classes")
    return int(a), None if b is None else int(b)


def target_name(target: Target) -> str:
    a, b = target
    return f"logit {a}" if b is None else f"logit {a} - logit {b}"


@dataclass(frozen=True, eq=False)
class LogitAttribution:
    """Contributions of unit groups to a target on ``N`` images.

    ``contributions``: float64 ``[N, G]`` (columns in ``group_names`` order);
    ``bias``: the output bias term of the target; ``total`` = row sums + bias,
    which is the target logit (difference) itself.
    """

    layer: str
    target: Target
    group_names: tuple[str, ...]
    contributions: np.ndarray
    bias: float

    @property
    def total(self) -> np.ndarray:
        return self.contributions.sum(axis=1) + self.bias

    @property
    def target_name(self) -> str:
        return target_name(self.target)

    def subset(self, indices: np.ndarray) -> LogitAttribution:
        return LogitAttribution(self.layer, self.target, self.group_names, self.contributions[indices], self.bias)

    def sorted_sample(self, size: int, seed: int = 0, key: np.ndarray | None = None) -> np.ndarray:
        """Indices of ``size`` random images (seeded), sorted by ``key`` (default: the target itself).

        The data for a stacked bar: one bar per image, one segment per group.
        """
        count = len(self.contributions)
        chosen = np.random.default_rng(seed).choice(count, size=min(size, count), replace=False)
        values = self.total if key is None else np.asarray(key)
        return chosen[np.argsort(values[chosen], kind="stable")]


def _target_weights(model: MNISTNet, target: Target) -> tuple[torch.Tensor, float]:
    output = model.layer(model.layer_names[-1])
    weight, bias = output.weight.detach().double(), output.bias.detach().double()
    a, b = target
    if b is None:
        return weight[a], float(bias[a])
    return weight[a] - weight[b], float(bias[a] - bias[b])


def unit_contributions(
    model: MNISTNet, activations: np.ndarray | torch.Tensor, target: Target | int | None = None
) -> tuple[np.ndarray, float]:
    """Per-unit contributions float64 ``[N, U]`` and the bias term, from the attributed layer's activations.

    ``activations``: the attributed hook's tensor, ``[N, U]`` (or pooled maps
    ``[N, C, H, W]``, whose contributions are summed per channel).
    """
    target = check_target(model, target)
    w, bias = _target_weights(model, target)
    # float64 as a new array: the caller's may be a read-only shared cache, which torch will not wrap.
    h = activations.double() if isinstance(activations, torch.Tensor) else torch.from_numpy(
        np.asarray(activations, dtype=np.float64).copy())
    if h.dim() == 4:
        per_feature = h.flatten(1) * w
        return per_feature.reshape(h.shape[0], h.shape[1], -1).sum(2).numpy(), bias
    if h.dim() != 2 or h.shape[1] != w.shape[0]:
        raise AttributionError(f"activations of shape {tuple(h.shape)} do not feed the output layer ({w.shape[0]})")
    return (h * w).numpy(), bias


def group_contributions(
    per_unit: np.ndarray, groups: Groups | None
) -> tuple[tuple[str, ...], np.ndarray]:
    """Sum per-unit contributions ``[N, U]`` over disjoint ``groups`` -> ``(names, [N, G])``.

    Units in no group form an extra group ``"other units"``, so the groups
    always cover the layer and the sum stays exact. No groups: one column per unit.
    """
    n_units = per_unit.shape[1]
    if not groups:
        return tuple(f"unit {u}" for u in range(n_units)), per_unit
    resolved = {name: select_units(np.asarray(idx, dtype=np.int64), n_units) for name, idx in groups.items()}
    check_disjoint(resolved)
    covered = np.zeros(n_units, dtype=bool)
    names, columns = [], []
    for name, idx in resolved.items():
        covered[idx] = True
        names.append(name)
        columns.append(per_unit[:, idx].sum(axis=1))
    if not covered.all():
        names.append(OTHER_GROUP)
        columns.append(per_unit[:, ~covered].sum(axis=1))
    return tuple(names), np.stack(columns, axis=1)


def attribution_from_activations(
    model: MNISTNet, activations: np.ndarray | torch.Tensor, groups: Groups | None = None,
    target: Target | int | None = None,
) -> LogitAttribution:
    """``LogitAttribution`` from the attributed layer's activations (e.g. cached ``fc1`` values)."""
    target = check_target(model, target)
    per_unit, bias = unit_contributions(model, activations, target)
    names, contributions = group_contributions(per_unit, groups)
    return LogitAttribution(_attributed_layer(model).name, target, names, contributions, bias)


def direct_logit_attribution(
    model: MNISTNet, images: np.ndarray, groups: Groups | None = None, target: Target | int | None = None
) -> LogitAttribution:
    """Direct logit attribution on ``images`` (uint8 ``[N, 28, 28]``) to ``groups`` of the attributed layer."""
    hook = _attributed_layer(model).output_hook
    activations = run_with_cache(model, images, names=[hook])[1][hook]
    return attribution_from_activations(model, activations, groups, target)
