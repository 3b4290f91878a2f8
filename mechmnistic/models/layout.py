"""A model's layout, resolved once: every question an analysis asks about a model's layers has its answer here.

A config is a flat list of layers; analyses think in *unit layers*: each
Linear or Conv2d layer with the activation and pooling that follow it, up to
the next one. ``Layout(config)`` groups the list that way once and answers,
for every unit layer (``UnitLayer``): its kind, sizes and map shapes, its hook
names (``<layer>.pre`` the affine output; ``<layer>.post`` after its
activation; ``<layer>.pool`` after its pooling), which hook holds what the
next layer reads, the receptive field of a map cell in pixels; and, for the
model, which layer produces the logits, which feeds them, which are hidden,
and whether the network is piecewise linear (so that grounding is exact).
TransformerLens' ``cfg`` is the model: nothing downstream re-derives a layout.

The sequences a model may hold, after each Linear or Conv2d layer and before
the next: at most one activation, then (after a conv) at most one pooling,
then a Flatten where a Linear layer follows a conv; dropout anywhere. Batch
normalisation is folded into the layer before it when a model is imported
(``mechmnistic.models.folding``), and pooling written before a monotone
activation is moved after it (they commute), so these cover the networks
people write for MNIST; anything else is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import MechMNISTicError
from .config import (
    Activation,
    BatchNorm,
    ConfigError,
    Conv2d,
    Dropout,
    Flatten,
    Linear,
    NetConfig,
    Output,
    Pool,
)


class UnitError(MechMNISTicError, ValueError):
    """A layer name, unit index or position that the model does not have."""


@dataclass(frozen=True)
class UnitLayer:
    """A Linear or Conv2d layer with the activation and pooling after it.

    ``input_shape``: what it reads (``[C, H, W]`` or ``[F]``); ``pre_shape``:
    its affine output (``[C, H, W]`` or ``[U]``); ``output_shape``: what the
    next layer reads, after the activation and pooling (before any flatten).
    """

    name: str
    index: int
    spec: Linear | Conv2d
    activation: Activation | None
    pool: Pool | None
    input_shape: tuple[int, ...]
    pre_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    is_final: bool

    @property
    def is_conv(self) -> bool:
        return isinstance(self.spec, Conv2d)

    @property
    def kind(self) -> str:
        return "conv" if self.is_conv else "linear"

    @property
    def n_units(self) -> int:
        """Neurons of a Linear layer, channels of a conv layer."""
        return self.pre_shape[0]

    @property
    def what(self) -> str:
        return "channel" if self.is_conv else "neuron"

    # -- hooks ---------------------------------------------------------------------------------------
    @property
    def pre_hook(self) -> str:
        return f"{self.name}.pre"

    @property
    def post_hook(self) -> str | None:
        return f"{self.name}.post" if self.activation is not None else None

    @property
    def pool_hook(self) -> str | None:
        return f"{self.name}.pool" if self.pool is not None else None

    @property
    def hooks(self) -> tuple[str, ...]:
        return tuple(h for h in (self.pre_hook, self.post_hook, self.pool_hook) if h is not None)

    @property
    def activation_hook(self) -> str:
        """The hook holding the units' activations (after the activation; the logits for the last layer)."""
        return self.post_hook or self.pre_hook

    @property
    def output_hook(self) -> str:
        """The hook holding what the next layer reads: after the activation and pooling."""
        return self.hooks[-1]

    # -- conv maps -----------------------------------------------------------------------------------
    @property
    def map_side(self) -> int:
        """Side of a conv layer's (square) map before pooling, e.g. 26 for ``conv1``."""
        self._require_conv()
        return self.pre_shape[1]

    @property
    def pooled_side(self) -> int:
        """Side of a conv layer's map as the next layer reads it (after pooling, if any)."""
        self._require_conv()
        return self.output_shape[1]

    @property
    def kernel_size(self) -> int:
        self._require_conv()
        return self.spec.kernel_size

    def _require_conv(self) -> None:
        if not self.is_conv:
            raise UnitError(f"{self.name} is not a conv layer")

    def describe(self) -> str:
        parts = [self.spec.describe()]
        if self.activation is not None:
            parts.append(self.activation.describe())
        if self.pool is not None:
            parts.append(self.pool.describe())
        return ", ".join(parts)


class Layout:
    """The unit layers of a config, in forward order, and what every analysis asks of them."""

    def __init__(self, config: NetConfig) -> None:
        self.config = config
        self.layers: tuple[UnitLayer, ...] = _resolve(config)
        self._by_name = {layer.name: layer for layer in self.layers}

    # -- lookup --------------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> UnitLayer:
        return self.check(name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[UnitLayer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    def check(self, name: str) -> UnitLayer:
        """The unit layer called ``name``, or a ``UnitError`` listing the layers."""
        layer = self._by_name.get(name) if isinstance(name, str) else None
        if layer is None:
            raise UnitError(f"no layer {str(name)[:60]!r} in this model; its layers are {', '.join(self.names)}")
        return layer

    def check_hidden(self, name: str) -> UnitLayer:
        """The hidden unit layer called ``name`` (not the logits), or a ``UnitError``."""
        layer = self._by_name.get(name) if isinstance(name, str) else None
        if layer is None or layer.is_final:
            raise UnitError(f"{str(name)[:60]!r} is not a hidden layer of this model; choose one of "
                            f"{list(self.hidden_names)}")
        return layer

    def check_conv(self, name: str) -> UnitLayer:
        layer = self.check(name)
        if not layer.is_conv:
            raise UnitError(f"{name} is not a conv layer; conv layers: {[c.name for c in self.convs]}")
        return layer

    def is_conv(self, name: str) -> bool:
        return self.check(name).is_conv

    def previous(self, name: str) -> UnitLayer | None:
        """The unit layer whose output ``name`` reads (``None`` for the first: it reads pixels)."""
        index = self.check(name).index
        return self.layers[index - 1] if index else None

    def next(self, name: str) -> UnitLayer | None:
        """The unit layer that reads ``name``'s output (``None`` for the last)."""
        index = self.check(name).index
        return self.layers[index + 1] if index + 1 < len(self.layers) else None

    def below(self, name: str) -> tuple[UnitLayer, ...]:
        """The unit layers before ``name``, in forward order."""
        return self.layers[: self.check(name).index]

    # -- the model as a whole --------------------------------------------------------------------------
    @property
    def first(self) -> UnitLayer:
        return self.layers[0]

    @property
    def final(self) -> UnitLayer:
        """The layer that produces the logits."""
        return self.layers[-1]

    @property
    def hidden(self) -> tuple[UnitLayer, ...]:
        """Every layer with hidden units, conv and fully connected, in forward order (not the logits)."""
        return self.layers[:-1]

    @property
    def hidden_names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.hidden)

    @property
    def feeds_logits(self) -> UnitLayer | None:
        """The layer whose output the logit layer reads (``None`` when pixels feed it directly)."""
        return self.layers[-2] if len(self.layers) > 1 else None

    @property
    def convs(self) -> tuple[UnitLayer, ...]:
        return tuple(layer for layer in self.layers if layer.is_conv)

    @property
    def hook_names(self) -> tuple[str, ...]:
        """Every capturable name, in forward order."""
        return ("input", *(hook for layer in self.layers for hook in layer.hooks))

    @property
    def piecewise_linear(self) -> bool:
        """Whether the network is linear on each input's pattern (ReLU/LeakyReLU, max or average pooling):
        then a unit's effective pixel weights reproduce it exactly; otherwise they are gradient x input,
        a local approximation with a residual."""
        return all(layer.activation is None or layer.activation.piecewise_linear for layer in self.layers)

    def exact_below(self, name: str) -> bool:
        """Whether ``name``'s units are exactly affine in the pixels on each input's pattern: every activation
        below it is piecewise linear. Then grounding is exact; otherwise it is gradient x input with a residual."""
        return all(layer.activation is None or layer.activation.piecewise_linear for layer in self.below(name))

    def exact_above(self, name: str) -> bool:
        """Whether the logits are exactly affine in ``name``'s output on each input's pattern: every activation
        after it is piecewise linear. Then attribution to it (gradient x activation) adds up exactly."""
        index = self.check(name).index
        return all(layer.activation is None or layer.activation.piecewise_linear for layer in self.layers[index + 1 :])

    def nonlinearities(self) -> tuple[str, ...]:
        """The distinct activations, e.g. ``("relu",)`` or ``("tanh",)``."""
        labels = [layer.activation.label for layer in self.layers if layer.activation is not None]
        return tuple(dict.fromkeys(labels))

    # -- geometry ----------------------------------------------------------------------------------------
    def receptive_field(self, name: str, positions: np.ndarray) -> np.ndarray:
        """The pixels each cell ``(row, col)`` of conv layer ``name``'s map depends on: inclusive boxes
        ``[row0, col0, row1, col1]``, int64 ``[P, 4]`` for ``positions`` ``[P, 2]``.

        With padding a box may reach outside the image (negative or past 27):
        those pixels are the zeros the padding adds.
        """
        layer = self.check_conv(name)
        cells = np.asarray(positions, dtype=np.int64).reshape(-1, 2)
        low, high = cells.copy(), cells.copy()
        for step in reversed(self.layers[: layer.index + 1]):
            if step is not layer and step.pool is not None:  # the pooled map this layer read
                low, high = _window(low, high, step.pool.kernel_size, step.pool.stride, step.pool.padding)
            conv = step.spec
            low, high = _window(low, high, conv.kernel_size, conv.stride, conv.padding)
        return np.concatenate([low, high], axis=1)


def _window(low: np.ndarray, high: np.ndarray, kernel: int, stride: int, padding: int) -> tuple[np.ndarray, np.ndarray]:
    """Cells ``[low, high]`` of a windowed op's output read cells ``[low*s - p, high*s - p + k - 1]`` of its input."""
    return low * stride - padding, high * stride - padding + kernel - 1


def _resolve(config: NetConfig) -> tuple[UnitLayer, ...]:
    """Group the layer list into unit layers; refuse sequences the analyses cannot take."""
    if config.has_batchnorm:
        names = [s.name for s in config.layers if isinstance(s, BatchNorm)]
        raise ConfigError(f"batch normalisation ({', '.join(names)}) must be folded into the layer before it "
                          "(mechmnistic.models.folding does this when a model is imported)")
    shapes = config.shapes()
    groups: list[list[int]] = []
    for i, spec in enumerate(config.layers):
        if isinstance(spec, Linear | Conv2d):
            groups.append([i])
        elif not groups:
            if not isinstance(spec, Flatten | Dropout):
                raise ConfigError(f"{spec.describe()} before the first Linear or Conv2d layer is not supported")
        else:
            groups[-1].append(i)
    if not groups:
        raise ConfigError("a model needs at least one Linear or Conv2d layer")
    layers = []
    for index, members in enumerate(groups):
        first = members[0]
        spec = config.layers[first]
        is_final = index == len(groups) - 1
        activation, pool, flattened = None, None, False
        for i in members[1:]:
            step = config.layers[i]
            where = f"after {spec.name}"
            if isinstance(step, Dropout):
                continue
            if isinstance(step, Output):
                continue  # checked by the config: only last
            if is_final:
                raise ConfigError(f"{step.describe()} {where}: the last Linear layer must produce the logits "
                                  "(only dropout and a final softmax or log_softmax may follow it)")
            if isinstance(step, Activation):
                if activation is not None or pool is not None or flattened:
                    raise ConfigError(f"{step.describe()} {where}: one activation per layer, before its pooling "
                                      "and any flatten")
                activation = step
            elif isinstance(step, Pool):
                if pool is not None or flattened:
                    raise ConfigError(f"{step.describe()} {where}: at most one pooling per layer, before any flatten")
                pool = step
            elif isinstance(step, Flatten):
                flattened = True
        if is_final and not isinstance(spec, Linear):
            raise ConfigError(f"the last layer ({spec.name}) must be a Linear layer producing the logits")
        output_index = max(i for i in members if not isinstance(config.layers[i], Flatten | Dropout | Output))
        layers.append(UnitLayer(
            name=spec.name,
            index=index,
            spec=spec,
            activation=activation,
            pool=pool,
            input_shape=shapes[first],
            pre_shape=shapes[first + 1],
            output_shape=shapes[output_index + 1],
            is_final=is_final,
        ))
    return tuple(layers)
