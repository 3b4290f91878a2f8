"""Model configs: a model is an ordered list of layers plus its input normalisation, and its weights.

A ``NetConfig`` is what people write for MNIST as an ``nn.Sequential`` (or a
``forward`` that calls its layers in order): ``Linear``; ``Conv2d`` with any
square kernel, stride and padding; ``BatchNorm`` (eval mode); an
``Activation`` (ReLU, LeakyReLU, ELU, GELU, SiLU, tanh, sigmoid); max or
average ``Pool`` with its own kernel, stride and padding; ``Flatten``;
``Dropout`` (identity at inference); and a final ``Output`` softmax or
log-softmax (the tool's logits are the values before it). It round-trips
through JSON (``config_to_dict`` / ``config_from_dict``), one object per
layer tagged by ``type``.

Parametrised layers keep the names the user's code gives them (``conv1``,
``features.3``, ``1``): their state dict loads as is, and users refer to
layers as their own code does. Other layers may carry the user's name too
(ONNX nodes, ``features.1``), only for display.

Which sequences a model may hold so that every analysis can ask about it is
decided once, by ``mechmnistic.models.layout``; this module checks that the
shapes chain. ``mlp_config`` and ``cnn_config`` build the two families the
bundled models belong to; cards written before the layer list existed
(``"arch": "mlp"`` or ``"cnn"``) are read through the same builders.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from ..errors import MechMNISTicError

IMAGE_SIZE = 28
INPUT_SHAPE = (1, IMAGE_SIZE, IMAGE_SIZE)
#: The largest layer width, channel count or kernel size a config may ask for: far above any model the
#: 64 MiB weights limit admits, and small enough that building one never overflows or exhausts memory.
MAX_SIZE = 65_536
#: At most this many layers (a generous bound on what an MNIST network holds; guards against junk cards).
MAX_LAYERS = 256
# Dotted module paths as PyTorch writes them; a part may be a bare index, as in a
# plain ``nn.Sequential`` (``0``, ``2``) or ``net.0``.
_LAYER_NAME = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
# Attribute names the model classes use themselves; a layer may not shadow them.
_RESERVED_ROOTS = {"hook_points", "config", "training", "layout", "card"}

ActivationFunction = Literal["relu", "leaky_relu", "elu", "gelu", "silu", "tanh", "sigmoid"]
ACTIVATIONS: tuple[str, ...] = ("relu", "leaky_relu", "elu", "gelu", "silu", "tanh", "sigmoid")
#: Activations that are piecewise linear: with them a network is exactly linear on each input's pattern.
PIECEWISE_LINEAR = ("relu", "leaky_relu")
#: Activations that never decrease: max-pooling commutes with them (max(f(x)) == f(max(x))).
MONOTONE = ("relu", "leaky_relu", "elu", "tanh", "sigmoid")


class ConfigError(MechMNISTicError, ValueError):
    """A config is inconsistent or malformed."""


@dataclass(frozen=True)
class Normalization:
    """The model sees ``(pixel - mean) / std`` where pixel is in [0, 1]."""

    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mean) and math.isfinite(self.std)) or not self.std > 0:
            raise ConfigError(f"normalisation needs a finite mean and a positive std, got {self.mean}, {self.std}")

    @property
    def is_identity(self) -> bool:
        return self.mean == 0.0 and self.std == 1.0


# -- layers ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Linear:
    type: ClassVar[str] = "linear"
    name: str
    in_features: int
    out_features: int
    bias: bool = True

    def describe(self) -> str:
        return f"{self.name} Linear {self.in_features}->{self.out_features}"


@dataclass(frozen=True)
class Conv2d:
    """A square convolution (``kernel_size`` x ``kernel_size``, the same stride and padding on both axes)."""

    type: ClassVar[str] = "conv2d"
    name: str
    in_channels: int
    out_channels: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    bias: bool = True

    def describe(self) -> str:
        k = self.kernel_size
        extra = (f", stride {self.stride}" if self.stride != 1 else "") + (
            f", padding {self.padding}" if self.padding else "")
        return f"{self.name} Conv2d {self.in_channels}->{self.out_channels} {k}x{k}{extra}"


@dataclass(frozen=True)
class BatchNorm:
    """Batch normalisation in eval mode: ``(x - running_mean) / sqrt(running_var + eps) * weight + bias``
    per channel (after a conv) or feature (after a Linear)."""

    type: ClassVar[str] = "batchnorm"
    name: str
    num_features: int
    eps: float = 1e-5
    affine: bool = True

    def describe(self) -> str:
        return f"{self.name} BatchNorm({self.num_features})"


@dataclass(frozen=True)
class Activation:
    """An element-wise activation. ``negative_slope``: LeakyReLU's; ``alpha``: ELU's; ``approximate``:
    GELU's (``none`` or ``tanh``)."""

    type: ClassVar[str] = "activation"
    function: str = "relu"
    negative_slope: float = 0.01
    alpha: float = 1.0
    approximate: str = "none"
    name: str = ""

    def __post_init__(self) -> None:
        if self.function not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {self.function!r}; known: {', '.join(ACTIVATIONS)}")
        if self.approximate not in ("none", "tanh"):
            raise ConfigError(f"GELU's approximate must be none or tanh, got {self.approximate!r}")
        if not (math.isfinite(self.negative_slope) and math.isfinite(self.alpha)):
            raise ConfigError("activation parameters must be finite")

    @property
    def label(self) -> str:
        """``relu``, ``leaky_relu(0.01)``, ``elu(1)``, ``gelu(tanh)``: also the ``--activation`` syntax."""
        if self.function == "leaky_relu":
            return f"leaky_relu({self.negative_slope:g})"
        if self.function == "elu" and self.alpha != 1.0:
            return f"elu({self.alpha:g})"
        if self.function == "gelu" and self.approximate != "none":
            return "gelu(tanh)"
        return self.function

    @property
    def piecewise_linear(self) -> bool:
        return self.function in PIECEWISE_LINEAR

    def describe(self) -> str:
        return self.label


@dataclass(frozen=True)
class Pool:
    """Square max- or average-pooling (``floor`` output size, as PyTorch's default; average pooling counts
    the padding, as ``nn.AvgPool2d``'s default)."""

    type: ClassVar[str] = "pool"
    kind: Literal["max", "avg"] = "max"
    kernel_size: int = 2
    stride: int = 2
    padding: int = 0
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("max", "avg"):
            raise ConfigError(f"pooling is max or avg, got {self.kind!r}")

    def describe(self) -> str:
        k = self.kernel_size
        extra = (f", stride {self.stride}" if self.stride != k else "") + (
            f", padding {self.padding}" if self.padding else "")
        return f"{self.kind}-pool {k}x{k}{extra}"


@dataclass(frozen=True)
class Flatten:
    type: ClassVar[str] = "flatten"
    name: str = ""

    def describe(self) -> str:
        return "flatten"


@dataclass(frozen=True)
class Dropout:
    type: ClassVar[str] = "dropout"
    p: float = 0.5
    name: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.p < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.p}")

    def describe(self) -> str:
        return f"dropout {self.p:g}"


@dataclass(frozen=True)
class Output:
    """A final softmax or log-softmax: the model's logits are the values before it."""

    type: ClassVar[str] = "output"
    function: Literal["softmax", "log_softmax"] = "log_softmax"
    name: str = ""

    def __post_init__(self) -> None:
        if self.function not in ("softmax", "log_softmax"):
            raise ConfigError(f"the output function is softmax or log_softmax, got {self.function!r}")

    def describe(self) -> str:
        return self.function


LayerSpec = Linear | Conv2d | BatchNorm | Activation | Pool | Flatten | Dropout | Output
LAYER_TYPES: dict[str, type] = {cls.type: cls for cls in (Linear, Conv2d, BatchNorm, Activation, Pool, Flatten,
                                                          Dropout, Output)}
PARAMETRISED = (Linear, Conv2d, BatchNorm)
UNIT_LAYERS = (Linear, Conv2d)


# -- the config -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetConfig:
    """A network on 28x28 grayscale images: ``layers`` in forward order; see the module docstring."""

    arch: ClassVar[str] = "sequential"
    layers: tuple[LayerSpec, ...]
    normalization: Normalization = field(default_factory=Normalization)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise ConfigError("a model needs at least one layer")
        if len(self.layers) > MAX_LAYERS:
            raise ConfigError(f"at most {MAX_LAYERS} layers, got {len(self.layers)}")
        for spec in self.layers:
            if not isinstance(spec, tuple(LAYER_TYPES.values())):
                raise ConfigError(f"not a layer: {spec!r}")
        _check_names(tuple(s.name for s in self.layers if isinstance(s, PARAMETRISED)))
        self.shapes()  # the shapes must chain

    @property
    def layer_names(self) -> tuple[str, ...]:
        """The unit layers (Linear and Conv2d) in forward order; the last produces the logits."""
        return tuple(spec.name for spec in self.layers if isinstance(spec, UNIT_LAYERS))

    @property
    def unit_specs(self) -> tuple[Linear | Conv2d, ...]:
        return tuple(spec for spec in self.layers if isinstance(spec, UNIT_LAYERS))

    @property
    def n_classes(self) -> int:
        shape = self.shapes()[-1]
        return shape[0]

    @property
    def output(self) -> str | None:
        """``softmax`` or ``log_softmax`` when the model ends in one (the logits are before it), else ``None``."""
        last = self.layers[-1]
        return last.function if isinstance(last, Output) else None

    @property
    def activations(self) -> tuple[Activation, ...]:
        return tuple(spec for spec in self.layers if isinstance(spec, Activation))

    @property
    def has_batchnorm(self) -> bool:
        return any(isinstance(spec, BatchNorm) for spec in self.layers)

    def shapes(self) -> list[tuple[int, ...]]:
        """The shape after each layer (``[C, H, W]`` or ``[F]``), starting with the input ``[1, 28, 28]``."""
        shapes = [INPUT_SHAPE]
        for i, spec in enumerate(self.layers):
            shapes.append(_output_shape(spec, shapes[-1], i == len(self.layers) - 1))
        if len(shapes[-1]) != 1:
            raise ConfigError(f"the model must end in class scores, but its output has shape {list(shapes[-1])} "
                              "(a Flatten and a Linear layer are missing?)")
        return shapes

    def describe(self) -> str:
        """One line: the layers as the user's code has them, e.g. ``conv1 Conv2d 1->32 3x3, relu, ...``."""
        parts = [spec.describe() for spec in self.layers]
        norm = self.normalization
        shown = "" if norm.is_identity else f"; input (x - {norm.mean:g}) / {norm.std:g}"
        return ", ".join(parts) + shown


def _output_shape(spec: LayerSpec, shape: tuple[int, ...], last: bool) -> tuple[int, ...]:
    where = f"{spec.describe()} (input shape {list(shape)})"
    if isinstance(spec, Linear):
        _positive((spec.in_features, spec.out_features), f"{spec.name}: layer sizes")
        if len(shape) != 1:
            raise ConfigError(f"{where}: a Linear layer reads a flat vector; a Flatten is missing before it")
        if shape[0] != spec.in_features:
            raise ConfigError(f"{where}: takes {spec.in_features} inputs but receives {shape[0]}")
        return (spec.out_features,)
    if isinstance(spec, Conv2d):
        _positive((spec.in_channels, spec.out_channels, spec.kernel_size, spec.stride), f"{spec.name}: layer sizes")
        _check_padding(spec.padding, spec.kernel_size, where)
        if len(shape) != 3 or shape[0] != spec.in_channels:
            raise ConfigError(f"{where}: takes {spec.in_channels}-channel maps")
        side = _window_out(shape[1], spec.kernel_size, spec.stride, spec.padding, where)
        return (spec.out_channels, side, side)
    if isinstance(spec, BatchNorm):
        _positive((spec.num_features,), f"{spec.name}: num_features")
        if shape[0] != spec.num_features:
            raise ConfigError(f"{where}: normalises {spec.num_features} channels or features, receives {shape[0]}")
        return shape
    if isinstance(spec, Pool):
        _positive((spec.kernel_size, spec.stride), "pooling sizes")
        _check_padding(spec.padding, spec.kernel_size, where)
        if 2 * spec.padding > spec.kernel_size:
            raise ConfigError(f"{where}: padding may be at most half the kernel (as in PyTorch)")
        if len(shape) != 3:
            raise ConfigError(f"{where}: pooling needs a [C, H, W] map")
        side = _window_out(shape[1], spec.kernel_size, spec.stride, spec.padding, where)
        return (shape[0], side, side)
    if isinstance(spec, Flatten):
        return (math.prod(shape),)
    if isinstance(spec, Output):
        if not last:
            raise ConfigError(f"{spec.function} must be the last layer (the logits are the values before it)")
        if len(shape) != 1:
            raise ConfigError(f"{spec.function} needs class scores, receives shape {list(shape)}")
        return shape
    return shape  # activations and dropout keep the shape


def _window_out(size: int, kernel: int, stride: int, padding: int, where: str) -> int:
    side = (size + 2 * padding - kernel) // stride + 1
    if side < 1:
        raise ConfigError(f"{where}: the map shrinks to nothing")
    return side


def _check_padding(padding: int, kernel: int, where: str) -> None:
    if int(padding) < 0 or int(padding) > MAX_SIZE:
        raise ConfigError(f"{where}: padding must be between 0 and {MAX_SIZE}")


def _positive(values: tuple[int, ...], what: str) -> None:
    if any(int(v) <= 0 for v in values):
        raise ConfigError(f"{what} must be positive integers, got {values}")
    if any(int(v) > MAX_SIZE for v in values):
        raise ConfigError(f"{what} must be at most {MAX_SIZE}, got {_clipped(values)}")


def _clipped(values: tuple[int, ...]) -> str:
    return ", ".join(str(v)[:12] + ("…" if len(str(v)) > 12 else "") for v in values)


def _check_names(names: tuple[str, ...]) -> None:
    if len(set(names)) != len(names):
        raise ConfigError(f"layer names must be distinct, got {names}")
    for name in names:
        if not _LAYER_NAME.match(name) or name.split(".")[0] in _RESERVED_ROOTS:
            raise ConfigError(f"{name!r} is not a valid module name")
    # A name may not be a prefix-path of another (``fc`` and ``fc.0``): both would
    # need to be a module and a container at once.
    for a in names:
        for b in names:
            if a != b and b.startswith(a + "."):
                raise ConfigError(f"{a!r} cannot also contain {b!r}")


# -- the two bundled families -------------------------------------------------------------------------------


def mlp_config(
    hidden_sizes: tuple[int, ...] = (64,),
    n_classes: int = 10,
    normalization: Normalization | None = None,
    layer_names: tuple[str, ...] = (),
    activation: Activation | None = None,
) -> NetConfig:
    """Flatten, then ``Linear -> activation`` (ReLU by default) for each hidden size, then a Linear to the classes.

    ``layer_names`` names the Linear layers in order (default ``layers.0``, ``layers.1``, ...).
    """
    sizes = (IMAGE_SIZE * IMAGE_SIZE, *(int(h) for h in hidden_sizes), int(n_classes))
    names = tuple(layer_names) or tuple(f"layers.{i}" for i in range(len(sizes) - 1))
    if len(names) != len(sizes) - 1:
        raise ConfigError(f"MLP: {len(names)} names for {len(sizes) - 1} layers")
    layers: list[LayerSpec] = [Flatten()]
    for i, name in enumerate(names):
        layers.append(Linear(name, sizes[i], sizes[i + 1]))
        if i < len(names) - 1:
            layers.append(activation or Activation("relu"))
    return NetConfig(tuple(layers), normalization or Normalization())


def cnn_config(
    conv_channels: tuple[int, ...] = (8, 16),
    kernel_sizes: tuple[int, ...] = (3, 3),
    fc_sizes: tuple[int, ...] = (200,),
    n_classes: int = 10,
    pool_size: int = 2,
    dropout: float = 0.0,
    normalization: Normalization | None = None,
    conv_names: tuple[str, ...] = (),
    fc_names: tuple[str, ...] = (),
    in_channels: int = 1,
) -> NetConfig:
    """Blocks of ``conv -> ReLU -> (dropout) -> max-pool``, flatten, ReLU fully connected layers, logits.

    Convolutions have no padding and stride 1; pooling is ``pool_size`` square
    with the same stride (none when 1), flooring odd sizes as ``nn.MaxPool2d`` does.
    """
    if in_channels != 1:
        raise ConfigError("MNIST images have one channel")
    if not conv_channels:
        raise ConfigError("a CNN needs at least one conv layer")
    if len(kernel_sizes) != len(conv_channels):
        raise ConfigError("kernel_sizes needs one entry per conv layer")
    conv_names = tuple(conv_names) or tuple(f"conv{i + 1}" for i in range(len(conv_channels)))
    fc_names = tuple(fc_names) or tuple(f"fc{i + 1}" for i in range(len(fc_sizes) + 1))
    if len(conv_names) != len(conv_channels) or len(fc_names) != len(fc_sizes) + 1:
        raise ConfigError("CNN: one name per conv layer and per fully connected layer")
    _positive((pool_size,), "pool size")
    layers: list[LayerSpec] = []
    channels = 1
    for name, out, k in zip(conv_names, conv_channels, kernel_sizes, strict=True):
        layers += [Conv2d(name, channels, int(out), int(k)), Activation("relu")]
        if dropout:
            layers.append(Dropout(float(dropout)))
        if pool_size > 1:
            layers.append(Pool("max", int(pool_size), int(pool_size)))
        channels = int(out)
    layers.append(Flatten())
    flat = NetConfig(tuple(layers)).shapes()[-1][0]
    sizes = (flat, *(int(s) for s in fc_sizes), int(n_classes))
    for i, name in enumerate(fc_names):
        layers.append(Linear(name, sizes[i], sizes[i + 1]))
        if i < len(fc_names) - 1:
            layers.append(Activation("relu"))
    return NetConfig(tuple(layers), normalization or Normalization())


# -- JSON -------------------------------------------------------------------------------------------------


def config_to_dict(config: NetConfig) -> dict[str, Any]:
    """JSON-ready dict: ``{"arch": "sequential", "layers": [{"type": ..., ...}], "normalization": {...}}``."""
    return {
        "arch": config.arch,
        "layers": [{"type": spec.type, **dataclasses.asdict(spec)} for spec in config.layers],
        "normalization": dataclasses.asdict(config.normalization),
    }


def config_from_dict(data: dict[str, Any]) -> NetConfig:
    """Inverse of ``config_to_dict``; also reads the cards of the first releases (``mlp``/``cnn``).

    Unknown keys, missing required keys and wrong types are ``ConfigError``s.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"a model config must be a JSON object, got {type(data).__name__}")
    data = dict(data)
    arch = data.pop("arch", None)
    normalization = _normalization(data.pop("normalization", None))
    if arch in _LEGACY:
        return _LEGACY[arch](data, normalization)
    if arch != NetConfig.arch:
        raise ConfigError(f"unknown architecture {arch!r}; known: {NetConfig.arch}")
    layers = data.pop("layers", None)
    if data:
        raise ConfigError(f"unknown config keys: {sorted(data)}")
    if not isinstance(layers, list):
        raise ConfigError("a sequential config needs a list of layers")
    if len(layers) > MAX_LAYERS:
        raise ConfigError(f"at most {MAX_LAYERS} layers, got {len(layers)}")
    return NetConfig(tuple(_layer_from_dict(item) for item in layers), normalization)


def _normalization(norm: Any) -> Normalization:
    if norm is None:
        return Normalization()
    if not isinstance(norm, dict) or set(norm) - {"mean", "std"}:
        raise ConfigError("normalization must be an object with mean and std")
    try:
        return Normalization(float(norm.get("mean", 0.0)), float(norm.get("std", 1.0)))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad normalization: {exc}") from None


def _layer_from_dict(item: Any) -> LayerSpec:
    if not isinstance(item, dict):
        raise ConfigError(f"a layer must be a JSON object, got {type(item).__name__}")
    item = dict(item)
    kind = item.pop("type", None)
    cls = LAYER_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ConfigError(f"unknown layer type {kind!r}; known: {', '.join(LAYER_TYPES)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(item) - set(fields)
    if unknown:
        raise ConfigError(f"unknown {kind} layer keys: {sorted(unknown)}")
    for key, value in item.items():
        expected = fields[key].type
        if not _type_ok(value, expected):
            raise ConfigError(f"{kind} layer: {key} = {str(value)[:40]!r} has the wrong type")
    try:
        return cls(**item)
    except TypeError as exc:
        raise ConfigError(f"bad {kind} layer: {exc}") from None


def _type_ok(value: Any, annotation: str) -> bool:
    if "bool" in annotation:
        return isinstance(value, bool)
    if "int" in annotation:
        return isinstance(value, int) and not isinstance(value, bool)
    if "float" in annotation:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, str)


def _legacy_mlp(data: dict[str, Any], normalization: Normalization) -> NetConfig:
    known = {"hidden_sizes", "n_classes", "layer_names"}
    _no_unknown(data, known, "mlp")
    return mlp_config(tuple(data.get("hidden_sizes", (64,))), int(data.get("n_classes", 10)), normalization,
                      tuple(data.get("layer_names", ())))


def _legacy_cnn(data: dict[str, Any], normalization: Normalization) -> NetConfig:
    known = {"conv_channels", "kernel_sizes", "fc_sizes", "n_classes", "in_channels", "pool_size", "dropout",
             "conv_names", "fc_names"}
    _no_unknown(data, known, "cnn")
    return cnn_config(
        tuple(data.get("conv_channels", (8, 16))), tuple(data.get("kernel_sizes", (3, 3))),
        tuple(data.get("fc_sizes", (200,))), int(data.get("n_classes", 10)), int(data.get("pool_size", 2)),
        float(data.get("dropout", 0.0)), normalization, tuple(data.get("conv_names", ())),
        tuple(data.get("fc_names", ())), int(data.get("in_channels", 1)),
    )


def _no_unknown(data: dict[str, Any], known: set[str], arch: str) -> None:
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown {arch} config keys: {sorted(unknown)}")
    for key, value in data.items():
        if key.endswith(("sizes", "conv_channels", "names")) and not isinstance(value, list | tuple):
            raise ConfigError(f"{arch} config: {key} must be a list")


_LEGACY = {"mlp": _legacy_mlp, "cnn": _legacy_cnn}
