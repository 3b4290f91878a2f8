"""What a state dict says about its network, and every architecture consistent with it.

A state dict holds parameter names and shapes, not code. From them:

* **modules**: every ``<name>.weight`` (with ``<name>.bias``, optional) is a
  Linear layer (``[out, in]``) or a Conv2d layer (``[out, in, k, k]``); a
  prefix with ``running_mean`` and ``running_var`` is a BatchNorm. Names are
  kept exactly as the file has them (``fc1``, ``features.3``, ``1``);
* **order**: Linear and Conv2d layers are put in forward order by chaining
  their shapes (a conv stack from 1 channel; Linear layers from 784 pixels
  or from wherever the conv stack ends); where shapes allow several orders,
  the numbers in the names decide (``net.2`` before ``net.10``), then the
  order in the file. A BatchNorm belongs to the layer right before it in
  name order with as many outputs as it has features;
* **gaps**: in an ``nn.Sequential`` the indices count the modules without
  parameters between two layers (``features.0`` to ``features.3``: two, such
  as an activation and a pooling), so they bound what can sit there.

What the file cannot say is enumerated (``candidates``): per conv layer its
padding (none or "same"), stride (1, or 2 without pooling) and the pooling
after it (none, or max or average with a 2, 3 or 4 window), kept only where
the conv stack flattens to exactly what the first Linear layer reads; and the
activation between layers (ReLU, ELU, GELU, SiLU, tanh or sigmoid: one for the
whole network). LeakyReLU is never guessed: it scores like ReLU, and its
slope cannot be read from anything; it is used when asked for. Choosing among
the candidates is ``mechmnistic.models.importer``'s job.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch

from ..errors import MechMNISTicError
from .config import (
    IMAGE_SIZE,
    Activation,
    BatchNorm,
    ConfigError,
    Conv2d,
    Flatten,
    LayerSpec,
    Linear,
    NetConfig,
    Normalization,
    Pool,
)
from .weights_io import WeightsFileError

#: Activations tried when the user does not say (LeakyReLU needs its slope: only when asked).
GUESSED_ACTIVATIONS = ("relu", "elu", "gelu", "silu", "tanh", "sigmoid")
#: Pooling after a conv layer tried when the user does not say (stride == window).
GUESSED_POOLS = ("none", "max2", "avg2", "max3", "avg3", "max4", "avg4")
_BN_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")
_CHAIN_SEARCH_BUDGET = 100_000
#: At most this many architectures are enumerated (a bound for pathological files).
MAX_CANDIDATES = 2000


class UnsupportedModelError(WeightsFileError):
    """The file holds tensors, but not a model MechMNISTic can analyse; the message says what was recognised."""


@dataclass(frozen=True)
class Module:
    """One module with parameters, as recognised from its keys' shapes."""

    name: str
    kind: Literal["linear", "conv", "batchnorm"]
    in_size: int  # input features (Linear), channels (Conv2d) or features (BatchNorm)
    out_size: int
    kernel_size: int | None = None
    has_bias: bool = True
    affine: bool = True  # BatchNorm with weight and bias
    position: int = 0  # where its first key appears in the file

    def describe(self) -> str:
        if self.kind == "conv":
            k = self.kernel_size
            return f"{self.name} (Conv2d {self.in_size} -> {self.out_size} channels, {k}x{k})"
        if self.kind == "batchnorm":
            return f"{self.name} (BatchNorm, {self.out_size} features)"
        return f"{self.name} (Linear {self.in_size} -> {self.out_size})"


@dataclass(frozen=True)
class Slot:
    """What may sit between unit layer ``i`` (with its BatchNorm) and the next: ``budget`` modules without
    parameters when an ``nn.Sequential``'s indices tell (``None`` when they do not)."""

    budget: int | None = None


@dataclass(frozen=True)
class Recognised:
    """The layers of a state dict in forward order, their BatchNorms, and the gaps between them."""

    units: tuple[Module, ...]
    batchnorms: dict[str, Module] = field(default_factory=dict)  # unit layer name -> its BatchNorm
    slots: tuple[Slot, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def convs(self) -> tuple[Module, ...]:
        return tuple(m for m in self.units if m.kind == "conv")

    @property
    def linears(self) -> tuple[Module, ...]:
        return tuple(m for m in self.units if m.kind == "linear")

    @property
    def n_outputs(self) -> int:
        return self.units[-1].out_size

    @property
    def modules(self) -> tuple[Module, ...]:
        """Every module in forward order, each BatchNorm after its layer."""
        ordered: list[Module] = []
        for unit in self.units:
            ordered.append(unit)
            if unit.name in self.batchnorms:
                ordered.append(self.batchnorms[unit.name])
        return tuple(ordered)


@dataclass(frozen=True)
class Candidate:
    """One architecture consistent with the file: its config and the choices that made it, in the flags'
    own syntax (``activation``: ``relu``; ``pool``, ``padding``, ``stride``: one entry per conv layer)."""

    config: NetConfig
    choices: dict[str, str]

    def describe(self) -> str:
        return ", ".join(f"{key} {value}" for key, value in self.choices.items())


# -- modules ----------------------------------------------------------------------------------------------


def recognise(state: Mapping[str, torch.Tensor], source: str) -> Recognised:
    """Modules, forward order, BatchNorm owners and Sequential gaps of ``state``; see the module docstring."""
    modules = _modules(state, source)
    units = [m for m in modules if m.kind != "batchnorm"]
    convs = [m for m in units if m.kind == "conv"]
    linears = [m for m in units if m.kind == "linear"]
    if not linears:
        raise UnsupportedModelError(
            f"{source}: unsupported architecture: recognised {_listing(modules)}, but no fully connected "
            "(Linear) layer to produce the class logits"
        )
    ordered_convs = _order_or_explain(convs, 1, "1 channel (grayscale)", source, modules) if convs else []
    for conv in ordered_convs:
        if conv.kernel_size is None:
            raise UnsupportedModelError(f"{source}: unsupported architecture: {conv.name} has a non-square "
                                        "kernel; only square kernels are supported")
    if convs:
        ordered_linears = _linears_after_convs(linears, source, modules)
    else:
        ordered_linears = _order_or_explain(linears, IMAGE_SIZE * IMAGE_SIZE, "784 pixels (28x28)", source, modules)
    ordered = ordered_convs + ordered_linears
    batchnorms = _batchnorm_owners([m for m in modules if m.kind == "batchnorm"], ordered, modules, source)
    notes = []
    named = [m.name for m in _preferred(convs) + _preferred(linears)]
    if named != [m.name for m in ordered]:
        notes.append("the names do not give the forward order; it was found by chaining the layers' shapes: "
                     + " -> ".join(m.name for m in ordered))
    recognised = Recognised(tuple(ordered), batchnorms, (), tuple(notes))
    return Recognised(recognised.units, batchnorms, _slots(recognised, source), recognised.notes)


def _modules(state: Mapping[str, torch.Tensor], source: str) -> list[Module]:
    """Group keys by module; refuse keys that belong to no Linear, Conv2d or BatchNorm."""
    leaves: dict[str, dict[str, torch.Tensor]] = {}
    positions: dict[str, int] = {}
    unexpected = []
    for position, key in enumerate(state):
        prefix, dot, leaf = key.rpartition(".")
        if dot and prefix and leaf in ("weight", "bias", *_BN_SUFFIXES):
            leaves.setdefault(prefix, {})[leaf] = state[key]
            positions.setdefault(prefix, position)
        else:
            unexpected.append(key)
    if unexpected:
        hint = ""
        if any(key in ("weight", "bias") for key in unexpected):
            hint = " (a single unnamed layer; save the model that holds it, so its layers have names)"
        raise UnsupportedModelError(
            f"{source}: unexpected keys {_clip(unexpected)}{hint}; expected only the weights and biases of "
            "Linear and Conv2d layers and the parameters of BatchNorm layers"
        )
    modules = [_module(prefix, parts, positions[prefix], source) for prefix, parts in leaves.items()]
    return modules


def _module(prefix: str, parts: dict[str, torch.Tensor], position: int, source: str) -> Module:
    if "running_mean" in parts or "running_var" in parts:
        return _batchnorm(prefix, parts, position, source)
    if "num_batches_tracked" in parts:
        raise UnsupportedModelError(f"{source}: {prefix}.num_batches_tracked without running statistics")
    if "weight" not in parts:
        raise UnsupportedModelError(f"{source}: missing keys {_clip([f'{prefix}.weight'])}; every layer needs "
                                    "a weight")
    shape = tuple(parts["weight"].shape)
    if 0 in shape:
        raise UnsupportedModelError(f"{source}: {prefix}.weight has an empty shape {shape}")
    if len(shape) == 2:
        module = Module(prefix, "linear", shape[1], shape[0], position=position, has_bias="bias" in parts)
    elif len(shape) == 4:
        square = shape[2] if shape[2] == shape[3] else None
        module = Module(prefix, "conv", shape[1], shape[0], square, position=position, has_bias="bias" in parts)
    else:
        raise UnsupportedModelError(
            f"{source}: {prefix}.weight has shape {shape}: neither a Linear ([out, in]) nor a Conv2d "
            "([out, in, k, k]) weight, nor a BatchNorm (which has running_mean and running_var); layer norms "
            "and embeddings are not supported"
        )
    if "bias" in parts and tuple(parts["bias"].shape) != (shape[0],):
        raise UnsupportedModelError(
            f"{source}: {prefix}.bias has shape {tuple(parts['bias'].shape)}, expected ({shape[0]},) to match "
            f"{prefix}.weight {shape}"
        )
    return module


def _batchnorm(prefix: str, parts: dict[str, torch.Tensor], position: int, source: str) -> Module:
    missing = [f"{prefix}.{leaf}" for leaf in ("running_mean", "running_var") if leaf not in parts]
    if missing:
        raise UnsupportedModelError(f"{source}: missing keys {_clip(missing)} of batch normalisation {prefix}")
    size = parts["running_mean"].numel()
    for leaf in ("running_mean", "running_var", "weight", "bias"):
        if leaf in parts and tuple(parts[leaf].shape) != (size,):
            raise UnsupportedModelError(f"{source}: {prefix}.{leaf} has shape {tuple(parts[leaf].shape)}, "
                                        f"expected ({size},) like {prefix}.running_mean")
    if size == 0:
        raise UnsupportedModelError(f"{source}: batch normalisation {prefix} has no features")
    if ("weight" in parts) != ("bias" in parts):
        raise UnsupportedModelError(f"{source}: batch normalisation {prefix} has a weight without a bias or the "
                                    "other way round")
    return Module(prefix, "batchnorm", size, size, position=position, affine="weight" in parts)


def _numbers(name: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", name))


def _preferred(modules: list[Module]) -> list[Module]:
    """Name order: the numbers in the names (``net.2`` < ``net.10``), then the order in the file."""
    return sorted(modules, key=lambda m: (_numbers(m.name), m.position))


def _chain(modules: list[Module], start: int) -> list[Module] | None:
    """An order of all ``modules`` in which each takes the previous one's outputs, starting from ``start``.

    Depth-first in name order, so the name order wins whenever it chains.
    """
    budget = _CHAIN_SEARCH_BUDGET  # bounds the search on pathological files

    def search(size: int, remaining: list[Module]) -> list[Module] | None:
        nonlocal budget
        if not remaining:
            return []
        for i, module in enumerate(remaining):
            if module.in_size != size:
                continue
            budget -= 1
            if budget < 0:
                return None
            rest = search(module.out_size, remaining[:i] + remaining[i + 1 :])
            if rest is not None:
                return [module, *rest]
        return None

    return search(start, _preferred(modules))


def _order_or_explain(modules: list[Module], start: int, start_what: str, source: str,
                      everything: list[Module]) -> list[Module]:
    """``_chain``'s order, or an error that names where the shapes break in the name order."""
    order = _chain(modules, start)
    if order is not None:
        return order
    unit = "channels" if modules[0].kind == "conv" else "inputs"
    size, previous, problem = start, None, "no order of the layers chains"
    for module in _preferred(modules):
        if module.in_size != size:
            before = f"layer {previous.name} outputs {size}" if previous else f"the input has {start_what}"
            problem = f"{before}, but layer {module.name} takes {module.in_size} {unit}"
            break
        size, previous = module.out_size, module
    raise UnsupportedModelError(
        f"{source}: the layer shapes do not chain: {problem}. Recognised: {_listing(everything)}"
    )


def _linears_after_convs(linears: list[Module], source: str, everything: list[Module]) -> list[Module]:
    """The Linear layers' order after a conv stack, whose flattened size the chain starts from."""
    starts = list(dict.fromkeys(m.in_size for m in _preferred(linears)))
    for start in starts:
        order = _chain(linears, start)
        if order is not None:
            return order
    return _order_or_explain(linears, starts[0], "the conv stack's output", source, everything)


def _batchnorm_owners(batchnorms: list[Module], units: list[Module], modules: list[Module],
                      source: str) -> dict[str, Module]:
    """The unit layer each BatchNorm follows: the nearest before it in name order with as many outputs."""
    owners: dict[str, Module] = {}
    by_name = _preferred(modules)
    unit_names = {u.name for u in units}
    for bn in batchnorms:
        index = by_name.index(bn)
        owner = next((m for m in reversed(by_name[:index]) if m.name in unit_names and m.out_size == bn.out_size),
                     None)
        if owner is None or owner.name in owners:
            raise UnsupportedModelError(
                f"{source}: cannot tell which layer batch normalisation {bn.name} ({bn.out_size} features) follows; "
                "MechMNISTic folds it into the Linear or Conv2d layer right before it. Export the model to ONNX, "
                "which records the order"
            )
        owners[owner.name] = bn
    return owners


def _sequential_index(name: str) -> tuple[str, int] | None:
    """``features.3`` -> ``("features", 3)``; ``3`` -> ``("", 3)``; ``fc1`` -> ``None``."""
    prefix, _, last = name.rpartition(".")
    return (prefix, int(last)) if last.isdigit() else None


def _gap(before: Module, after: Module) -> int | None:
    """How many modules without parameters sit between two modules of one ``nn.Sequential`` (else ``None``).

    Consecutive indices say nothing: they are how an ``nn.ModuleList`` of layers (whose activations are
    applied in ``forward``) numbers them, far more often than a Sequential with nothing between two layers.
    """
    a, b = _sequential_index(before.name), _sequential_index(after.name)
    if a is None or b is None or a[0] != b[0] or b[1] <= a[1] + 1:
        return None
    return b[1] - a[1] - 1


def _slots(recognised: Recognised, source: str) -> tuple[Slot, ...]:
    slots = []
    units = recognised.units
    for i, unit in enumerate(units):
        last = unit
        bn = recognised.batchnorms.get(unit.name)
        if bn is not None:
            gap = _gap(unit, bn)
            if gap:
                raise UnsupportedModelError(
                    f"{source}: batch normalisation {bn.name} sits {gap} module(s) after {unit.name}: MechMNISTic "
                    "folds batch normalisation into the layer right before it, and cannot tell what lies between "
                    "(an activation?). Export the model to ONNX, which records it"
                )
            last = bn
        slots.append(Slot(_gap(last, units[i + 1]) if i + 1 < len(units) else None))
    return tuple(slots)


def _listing(modules: list[Module]) -> str:
    return "; ".join(m.describe() for m in modules) or "no layers"


def _clip(keys: list[str], at: int = 8) -> str:
    return str(keys[:at])[:-1] + (f", ... ({len(keys)} in all)]" if len(keys) > at else "]")


# -- candidates -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvOption:
    padding: int
    stride: int
    pool: str  # "none", "max2", "avg3", ...


def parse_pool(text: str) -> Pool | None:
    """``none`` -> ``None``; ``max2`` / ``avg3`` -> a pooling with that window and stride."""
    match = re.fullmatch(r"(max|avg)(\d+)", text)
    if text == "none":
        return None
    if not match or not 1 < int(match.group(2)) <= 16:
        raise MechMNISTicError(f"pooling must be none, or max or avg with a window of 2 to 16 (e.g. max2), "
                               f"got {text[:20]!r}")
    k = int(match.group(2))
    return Pool(match.group(1), k, k)


def parse_activation(text: str) -> Activation:
    """``relu``, ``tanh``, ``leaky_relu(0.1)`` (or ``leaky_relu:0.1``), ``elu(1.0)``, ``gelu(tanh)``, ..."""
    cleaned = str(text).strip().lower().replace(":", "(").rstrip(")")
    name, _, argument = cleaned.partition("(")
    try:
        if name == "leaky_relu":
            return Activation("leaky_relu", negative_slope=float(argument) if argument else 0.01)
        if name == "elu":
            return Activation("elu", alpha=float(argument) if argument else 1.0)
        if name == "gelu":
            return Activation("gelu", approximate=argument or "none")
        if argument:
            raise ValueError("no parameter")
        return Activation(name)
    except (ValueError, ConfigError):
        raise MechMNISTicError(
            f"activation must be one of relu, leaky_relu(SLOPE), elu(ALPHA), gelu, gelu(tanh), silu, tanh, sigmoid; "
            f"got {str(text)[:30]!r}"
        ) from None


def candidates(recognised: Recognised, normalization: Normalization, fixed: Mapping[str, str],
               activations: tuple[str, ...] = GUESSED_ACTIVATIONS) -> list[Candidate]:
    """Every architecture consistent with the file and with ``fixed`` choices (``activation``, and per conv
    layer ``pool``, ``padding``, ``stride`` as comma-separated lists); see the module docstring."""
    convs = recognised.convs
    activation_labels = (fixed["activation"],) if "activation" in fixed else activations
    per_conv = [_conv_options(conv, i, len(convs), fixed) for i, conv in enumerate(convs)]
    found: list[Candidate] = []
    seen: set[NetConfig] = set()
    for combo in itertools.product(*per_conv):
        structure = _structure(recognised, combo)
        if structure is None:
            continue
        for label in activation_labels if any(structure.activate) else ("none",):
            activation = None if label == "none" else parse_activation(label)
            try:
                config = NetConfig(tuple(_layers(recognised, combo, structure, activation)), normalization)
            except ConfigError:
                continue
            if config in seen:
                continue
            seen.add(config)
            choices = {"activation": activation.label if activation is not None else "none"}
            if convs:
                choices["pool"] = ",".join(option.pool for option in combo)
                choices["padding"] = ",".join(str(option.padding) for option in combo)
                choices["stride"] = ",".join(str(option.stride) for option in combo)
            found.append(Candidate(config, choices))
            if len(found) > MAX_CANDIDATES:
                raise UnsupportedModelError("too many architectures fit this file; pass --pool, --padding and "
                                            "--stride to narrow them")
    return found


def _per_conv(value: str, count: int, what: str) -> list[str]:
    parts = [part.strip() for part in value.split(",")]
    if len(parts) == 1:
        parts = parts * count
    if len(parts) != count or any(not part for part in parts):
        raise MechMNISTicError(f"{what}: give one value, or one per conv layer ({count}), comma-separated; "
                               f"got {value[:40]!r}")
    return parts


def _conv_options(conv: Module, index: int, count: int, fixed: Mapping[str, str]) -> list[ConvOption]:
    k = conv.kernel_size
    paddings = sorted({0, k // 2})
    if "padding" in fixed:
        paddings = [_integer(_per_conv(fixed["padding"], count, "padding")[index], "padding", 0, k)]
    pools = list(GUESSED_POOLS)
    if "pool" in fixed:
        pool = _per_conv(fixed["pool"], count, "pool")[index]
        parse_pool(pool)
        pools = [pool]
    strides = [1, 2]
    if "stride" in fixed:
        strides = [_integer(_per_conv(fixed["stride"], count, "stride")[index], "stride", 1, 16)]
    options = []
    for padding, stride, pool in itertools.product(paddings, strides, pools):
        if stride > 1 and pool != "none" and "stride" not in fixed:
            continue  # a strided convolution stands in for pooling; both together are not guessed
        options.append(ConvOption(padding, stride, pool))
    return options


def _integer(text: str, what: str, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise MechMNISTicError(f"{what} must be a whole number from {low} to {high}, got {text[:20]!r}")
    return int(text)


@dataclass(frozen=True)
class _Structure:
    activate: tuple[bool, ...]  # per slot: an activation sits there


def _structure(recognised: Recognised, combo: tuple[ConvOption, ...]) -> _Structure | None:
    """Whether ``combo`` fits the Sequential gaps and flattens to what the first Linear reads."""
    units = recognised.units
    activate = []
    side = IMAGE_SIZE
    for i, unit in enumerate(units[:-1]):
        budget = recognised.slots[i].budget
        flatten = unit.kind == "conv" and units[i + 1].kind == "linear"
        pool = combo[i].pool if unit.kind == "conv" else "none"
        needed = flatten + (pool != "none")
        if budget is not None and needed > budget:
            return None
        activate.append(budget is None or needed + 1 <= budget)
    for option, conv in zip(combo, recognised.convs, strict=True):
        side = (side + 2 * option.padding - conv.kernel_size) // option.stride + 1
        if side < 1:
            return None
        pool = parse_pool(option.pool)
        if pool is not None:
            side = (side - pool.kernel_size) // pool.stride + 1
            if side < 1:
                return None
    if recognised.convs:
        flat = recognised.convs[-1].out_size * side * side
        if flat != recognised.linears[0].in_size:
            return None
    return _Structure(tuple(activate))


def _layers(recognised: Recognised, combo: tuple[ConvOption, ...], structure: _Structure,
            activation: Activation | None) -> list[LayerSpec]:
    layers: list[LayerSpec] = [] if recognised.convs else [Flatten()]
    conv_index = 0
    units = recognised.units
    for i, unit in enumerate(units):
        if unit.kind == "conv":
            option = combo[conv_index]
            conv_index += 1
            layers.append(Conv2d(unit.name, unit.in_size, unit.out_size, unit.kernel_size, option.stride,
                                 option.padding, unit.has_bias))
        else:
            layers.append(Linear(unit.name, unit.in_size, unit.out_size, unit.has_bias))
        bn = recognised.batchnorms.get(unit.name)
        if bn is not None:
            layers.append(BatchNorm(bn.name, bn.out_size, affine=bn.affine))
        if i == len(units) - 1:
            break
        if structure.activate[i] and activation is not None:
            layers.append(activation)
        if unit.kind == "conv":
            pool = parse_pool(combo[conv_index - 1].pool)
            if pool is not None:
                layers.append(pool)
            if units[i + 1].kind == "linear":
                layers.append(Flatten())
    return layers


def single_output_as_two(state: dict[str, torch.Tensor], last: str) -> dict[str, torch.Tensor]:
    """Logits ``(0, z)`` for a single output ``z``: softmax gives ``(1 - sigmoid(z), sigmoid(z))``."""
    weight = state[f"{last}.weight"]
    bias = state.get(f"{last}.bias", torch.zeros(weight.shape[0]))
    return {**state, f"{last}.weight": torch.cat([torch.zeros_like(weight), weight]),
            f"{last}.bias": torch.cat([torch.zeros_like(bias), bias])}


__all__ = ["Candidate", "Module", "Recognised", "UnsupportedModelError", "candidates", "recognise"]
