"""Model configs: a model is its config plus its weights.

A config is a frozen dataclass that round-trips through JSON (``to_dict`` /
``config_from_dict``). Layer names are part of the config so that a model
imported from someone else's code keeps that code's names (``fc1``,
``layers.0``, ``net.2``): its state dict loads as is, and users refer to layers
as their own code does.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import MechMNISTicError

IMAGE_SIZE = 28
#: The largest layer width, channel count or kernel size a config may ask for: far above any model the
#: 64 MiB weights limit admits, and small enough that building one never overflows or exhausts memory.
MAX_SIZE = 65_536
# Dotted module paths as PyTorch writes them; a part may be a bare index, as in a
# plain ``nn.Sequential`` (``0``, ``2``) or ``net.0``.
_LAYER_NAME = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
# Attribute names the model classes use themselves; a layer may not shadow them.
_RESERVED_ROOTS = {"hook_points", "config", "training"}


class ConfigError(MechMNISTicError, ValueError):
    """A config is inconsistent or malformed."""


@dataclass(frozen=True)
class Normalization:
    """The model sees ``(pixel - mean) / std`` where pixel is in [0, 1]."""

    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self) -> None:
        if not self.std > 0:
            raise ConfigError(f"normalisation std must be positive, got {self.std}")

    @property
    def is_identity(self) -> bool:
        return self.mean == 0.0 and self.std == 1.0


def _check_names(names: tuple[str, ...], count: int, what: str) -> None:
    if len(names) != count:
        raise ConfigError(f"{what}: {len(names)} names for {count} layers")
    if len(set(names)) != len(names):
        raise ConfigError(f"{what}: layer names must be distinct, got {names}")
    for name in names:
        if not _LAYER_NAME.match(name) or name.split(".")[0] in _RESERVED_ROOTS:
            raise ConfigError(f"{what}: {name!r} is not a valid module name")
    # A name may not be a prefix-path of another (``fc`` and ``fc.0``): both would
    # need to be a module and a container at once.
    for a in names:
        for b in names:
            if a != b and b.startswith(a + "."):
                raise ConfigError(f"{what}: {a!r} cannot also contain {b!r}")


def _positive(values: tuple[int, ...], what: str) -> None:
    if any(int(v) <= 0 for v in values):
        raise ConfigError(f"{what} must be positive integers, got {values}")
    if any(int(v) > MAX_SIZE for v in values):
        raise ConfigError(f"{what} must be at most {MAX_SIZE}, got {_clipped(values)}")


def _clipped(values: tuple[int, ...]) -> str:
    return ", ".join(str(v)[:12] + ("…" if len(str(v)) > 12 else "") for v in values)


@dataclass(frozen=True)
class MLPConfig:
    """A ReLU MLP on flattened 28x28 images: ``hidden_sizes`` then ``n_classes``.

    ``layer_names`` names the Linear layers in order (default ``layers.0`` ...).
    """

    arch: ClassVar[str] = "mlp"
    hidden_sizes: tuple[int, ...] = (64,)
    n_classes: int = 10
    normalization: Normalization = field(default_factory=Normalization)
    layer_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in self.hidden_sizes))
        _positive(self.hidden_sizes + (self.n_classes,), "layer sizes")
        if not self.layer_names:
            object.__setattr__(
                self, "layer_names", tuple(f"layers.{i}" for i in range(len(self.hidden_sizes) + 1))
            )
        object.__setattr__(self, "layer_names", tuple(self.layer_names))
        _check_names(self.layer_names, len(self.hidden_sizes) + 1, "MLP")

    @property
    def input_size(self) -> int:
        return IMAGE_SIZE * IMAGE_SIZE

    def describe(self) -> str:
        sizes = " -> ".join(str(s) for s in (self.input_size, *self.hidden_sizes, self.n_classes))
        return f"MLP {sizes} (ReLU)"


@dataclass(frozen=True)
class CNNConfig:
    """Blocks of conv -> ReLU -> (dropout) -> max-pool, then ReLU fully connected layers.

    Convolutions have no padding and stride 1; pooling is ``pool_size`` square
    with the same stride, flooring odd sizes (as ``nn.MaxPool2d`` does).
    """

    arch: ClassVar[str] = "cnn"
    conv_channels: tuple[int, ...] = (8, 16)
    kernel_sizes: tuple[int, ...] = (3, 3)
    fc_sizes: tuple[int, ...] = (200,)
    n_classes: int = 10
    in_channels: int = 1
    pool_size: int = 2
    dropout: float = 0.0
    normalization: Normalization = field(default_factory=Normalization)
    conv_names: tuple[str, ...] = ()
    fc_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for attr in ("conv_channels", "kernel_sizes", "fc_sizes"):
            object.__setattr__(self, attr, tuple(int(v) for v in getattr(self, attr)))
        if not self.conv_channels:
            raise ConfigError("a CNN needs at least one conv layer")
        if len(self.kernel_sizes) != len(self.conv_channels):
            raise ConfigError("kernel_sizes needs one entry per conv layer")
        _positive(self.conv_channels + self.kernel_sizes + self.fc_sizes + (self.n_classes, self.pool_size), "sizes")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.conv_names:
            object.__setattr__(self, "conv_names", tuple(f"conv{i + 1}" for i in range(len(self.conv_channels))))
        if not self.fc_names:
            object.__setattr__(self, "fc_names", tuple(f"fc{i + 1}" for i in range(len(self.fc_sizes) + 1)))
        object.__setattr__(self, "conv_names", tuple(self.conv_names))
        object.__setattr__(self, "fc_names", tuple(self.fc_names))
        _check_names(self.conv_names + self.fc_names, len(self.conv_channels) + len(self.fc_sizes) + 1, "CNN")
        if self.feature_map_sizes()[-1] < 1:
            raise ConfigError("the conv/pool stack shrinks the image to nothing")

    @property
    def layer_names(self) -> tuple[str, ...]:
        return self.conv_names + self.fc_names

    def feature_map_sizes(self) -> list[int]:
        """Spatial size after each block's pooling, starting from the input (28)."""
        sizes = [IMAGE_SIZE]
        for k in self.kernel_sizes:
            sizes.append((sizes[-1] - k + 1) // self.pool_size)
        return sizes

    @property
    def flat_size(self) -> int:
        return self.conv_channels[-1] * self.feature_map_sizes()[-1] ** 2

    def describe(self) -> str:
        layers = zip(self.conv_names, self.conv_channels, self.kernel_sizes, strict=True)
        convs = ", ".join(f"{n} {c}@{k}x{k}" for n, c, k in layers)
        fcs = " -> ".join(str(s) for s in (self.flat_size, *self.fc_sizes, self.n_classes))
        return f"CNN [{convs}] (ReLU, {self.pool_size}x{self.pool_size} max-pool) then FC {fcs}"


ModelConfig = MLPConfig | CNNConfig
_ARCHES: dict[str, type] = {"mlp": MLPConfig, "cnn": CNNConfig}


def config_to_dict(config: ModelConfig) -> dict[str, Any]:
    """JSON-ready dict with an ``arch`` tag."""
    data = dataclasses.asdict(config)
    data = {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}
    return {"arch": config.arch, **data}


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Inverse of ``config_to_dict``; unknown or missing-required keys are errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"a model config must be a JSON object, got {type(data).__name__}")
    data = dict(data)
    arch = data.pop("arch", None)
    if arch not in _ARCHES:
        raise ConfigError(f"unknown architecture {arch!r}; known: {sorted(_ARCHES)}")
    cls = _ARCHES[arch]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown {arch} config keys: {sorted(unknown)}")
    if "normalization" in data:
        norm = data["normalization"]
        if not isinstance(norm, dict):
            raise ConfigError("normalization must be an object with mean and std")
        data["normalization"] = Normalization(float(norm.get("mean", 0.0)), float(norm.get("std", 1.0)))
    try:
        return cls(**data)
    except TypeError as exc:
        raise ConfigError(f"bad {arch} config: {exc}") from None
