"""The two architecture families: ReLU MLPs of any depth and small ReLU/max-pool CNNs.

Both take images in [0, 1] (``float [N, 28, 28]`` or ``[N, 1, 28, 28]``), apply
their own input normalisation, and return logits ``[N, n_classes]``.

Parameters are registered under the config's layer names, so the state dict
reads like the diagram (``layers.0.weight`` or ``conv1.weight``) and an imported
model keeps its authors' names. Every intermediate tensor passes through a named
``HookPoint`` so that ``run_with_cache`` can capture it; hook names are
``<layer>.pre`` (the layer's affine output), ``<layer>.post`` (after ReLU, for
hidden layers) and ``<conv layer>.pool`` (after max-pooling), plus ``input``
(the normalised input the first layer sees).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import CNNConfig, MLPConfig, ModelConfig
from .pooling import max_pool


class HookPoint(nn.Identity):
    """An identity module that marks a named place in the forward pass."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.hook_name = name

    def extra_repr(self) -> str:
        return repr(self.hook_name)


def _hook_key(name: str) -> str:
    # nn.ModuleDict keys may not contain dots; hook names do.
    return name.replace(".", ":")


class LayerContainer(nn.Module):
    """Holds layers under a dotted name's prefix; ``model.layers[0]`` is ``layers.0``."""

    def __getitem__(self, key: int | str) -> nn.Module:
        return self._modules[str(key)]


def _register_dotted(root: nn.Module, dotted: str, module: nn.Module) -> None:
    """Register ``module`` at the dotted path ``dotted`` (creating containers)."""
    *parents, leaf = dotted.split(".")
    node = root
    for part in parents:
        child = node._modules.get(part)
        if child is None:
            child = LayerContainer()
            node.add_module(part, child)
        node = child
    node.add_module(leaf, module)


class MNISTNet(nn.Module):
    """Shared plumbing: config, named layers, hook points, input normalisation."""

    config: ModelConfig

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.hook_points = nn.ModuleDict()
        self._add_hook_point("input")

    # -- layers and hooks ---------------------------------------------------------
    def _add_hook_point(self, name: str) -> None:
        self.hook_points[_hook_key(name)] = HookPoint(name)

    def hook(self, name: str) -> HookPoint:
        return self.hook_points[_hook_key(name)]

    @property
    def hook_names(self) -> list[str]:
        """Every capturable name, in forward order."""
        return [point.hook_name for point in self.hook_points.values()]

    @property
    def layer_names(self) -> tuple[str, ...]:
        """Parametrised layers in forward order; the last one produces the logits."""
        return self.config.layer_names

    def layer(self, name: str) -> nn.Module:
        if name not in self.layer_names:
            raise KeyError(f"no layer {name!r}; layers are {list(self.layer_names)}")
        return self.get_submodule(name)

    @property
    def n_classes(self) -> int:
        return self.config.n_classes

    # -- inputs -------------------------------------------------------------------
    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1], ``[N, 28, 28]`` or ``[N, 1, 28, 28]`` -> normalised ``[N, 1, 28, 28]``."""
        if pixels.dim() == 3:
            pixels = pixels.unsqueeze(1)
        norm = self.config.normalization
        return pixels if norm.is_identity else (pixels - norm.mean) / norm.std


class MLP(MNISTNet):
    """``Linear -> ReLU`` for each hidden size, then a Linear to the classes."""

    config: MLPConfig

    def __init__(self, config: MLPConfig) -> None:
        super().__init__(config)
        sizes = (config.input_size, *config.hidden_sizes, config.n_classes)
        for i, name in enumerate(config.layer_names):
            _register_dotted(self, name, nn.Linear(sizes[i], sizes[i + 1]))
            self._add_hook_point(f"{name}.pre")
            if i < len(config.hidden_sizes):
                self._add_hook_point(f"{name}.post")

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        h = self.hook("input")(self.normalize(pixels)).flatten(1)
        last = len(self.layer_names) - 1
        for i, name in enumerate(self.layer_names):
            h = self.hook(f"{name}.pre")(self.get_submodule(name)(h))
            if i < last:
                h = self.hook(f"{name}.post")(F.relu(h))
        return h


class CNN(MNISTNet):
    """``(conv -> ReLU -> dropout -> max-pool)`` blocks, flatten, ReLU FC layers, logits."""

    config: CNNConfig

    def __init__(self, config: CNNConfig) -> None:
        super().__init__(config)
        in_ch = config.in_channels
        for name, out_ch, k in zip(config.conv_names, config.conv_channels, config.kernel_sizes, strict=True):
            _register_dotted(self, name, nn.Conv2d(in_ch, out_ch, k))
            for stage in ("pre", "post", "pool"):
                self._add_hook_point(f"{name}.{stage}")
            in_ch = out_ch
        sizes = (config.flat_size, *config.fc_sizes, config.n_classes)
        for i, name in enumerate(config.fc_names):
            _register_dotted(self, name, nn.Linear(sizes[i], sizes[i + 1]))
            self._add_hook_point(f"{name}.pre")
            if i < len(config.fc_sizes):
                self._add_hook_point(f"{name}.post")

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        h = self.hook("input")(self.normalize(pixels))
        for name in cfg.conv_names:
            h = self.hook(f"{name}.pre")(self.get_submodule(name)(h))
            h = self.hook(f"{name}.post")(F.relu(h))
            h = F.dropout(h, cfg.dropout, self.training)
            h = self.hook(f"{name}.pool")(max_pool(h, cfg.pool_size))
        h = h.flatten(1)
        last = len(cfg.fc_names) - 1
        for i, name in enumerate(cfg.fc_names):
            h = self.hook(f"{name}.pre")(self.get_submodule(name)(h))
            if i < last:
                h = self.hook(f"{name}.post")(F.relu(h))
        return h


def build_model(config: ModelConfig) -> MNISTNet:
    """A freshly initialised model for ``config`` (in eval mode)."""
    model = MLP(config) if isinstance(config, MLPConfig) else CNN(config)
    return model.eval()
