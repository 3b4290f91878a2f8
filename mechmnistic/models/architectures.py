"""The network: a ``NetConfig``'s layers, run in order, with a named hook point at every place analyses look.

It takes images in [0, 1] (``float [N, 28, 28]`` or ``[N, 1, 28, 28]``),
applies its own input normalisation, and returns logits ``[N, n_classes]``
(the values before a final softmax or log-softmax, which it leaves out).

Parameters are registered under the config's layer names, so the state dict
reads like the diagram (``layers.0.weight``, ``conv1.weight``,
``features.3.weight``) and an imported model keeps its authors' names. Every
intermediate tensor that an analysis reads passes through a named
``HookPoint`` so that ``run_with_cache`` can capture it; hook names come from
the model's ``Layout`` (``model.layout``): ``<layer>.pre`` (the layer's affine
output), ``<layer>.post`` (after its activation), ``<layer>.pool`` (after its
pooling), plus ``input`` (the normalised input the first layer sees).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import Activation, Conv2d, Dropout, Flatten, Linear, NetConfig, Pool
from .layout import Layout
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


def activate(spec: Activation, x: torch.Tensor) -> torch.Tensor:
    """Apply the element-wise function of an ``Activation`` spec."""
    fn = spec.function
    if fn == "relu":
        return F.relu(x)
    if fn == "leaky_relu":
        return F.leaky_relu(x, spec.negative_slope)
    if fn == "elu":
        return F.elu(x, spec.alpha)
    if fn == "gelu":
        return F.gelu(x, approximate=spec.approximate)
    if fn == "silu":
        return F.silu(x)
    if fn == "tanh":
        return torch.tanh(x)
    return torch.sigmoid(x)


def pool(spec: Pool, x: torch.Tensor) -> torch.Tensor:
    """Apply a ``Pool`` spec (max-pooling with stride == kernel through the faster ``max_pool``)."""
    k, s, p = spec.kernel_size, spec.stride, spec.padding
    if spec.kind == "avg":
        return F.avg_pool2d(x, k, s, p)
    if s == k and p == 0:
        return max_pool(x, k)
    return F.max_pool2d(x, k, s, p)


class MNISTNet(nn.Module):
    """A sequential network on MNIST digits; see the module docstring."""

    config: NetConfig

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.config = config
        self.layout = Layout(config)  # refuses configs the analyses cannot take
        self.hook_points = nn.ModuleDict()
        for name in self.layout.hook_names:
            self.hook_points[_hook_key(name)] = HookPoint(name)
        # Modules are created in the config's order, so a seed gives the same initial weights as ever.
        for spec in config.layers:
            if isinstance(spec, Linear):
                _register_dotted(self, spec.name, nn.Linear(spec.in_features, spec.out_features, bias=spec.bias))
            elif isinstance(spec, Conv2d):
                _register_dotted(self, spec.name, nn.Conv2d(spec.in_channels, spec.out_channels, spec.kernel_size,
                                                            spec.stride, spec.padding, bias=spec.bias))
        # Each layer with the hook point after it (if any): a plan of data, not closures, so that a
        # copied model runs its own modules.
        plan, current = [], None
        for spec in config.layers:
            hook = None
            if isinstance(spec, Linear | Conv2d):
                current = self.layout[spec.name]
                hook = current.pre_hook
            elif isinstance(spec, Activation):
                hook = current.post_hook
            elif isinstance(spec, Pool):
                hook = current.pool_hook
            plan.append((spec, hook))
        self._plan = tuple(plan)
        # Where the forward pass resumes after each hook point (``run_from``).
        self._resume = {"input": 0, **{hook: i + 1 for i, (_, hook) in enumerate(plan) if hook is not None}}

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self._run(self.hook("input")(self.normalize(pixels)), 0)

    def run_from(self, hook: str, h: torch.Tensor) -> torch.Tensor:
        """The logits from ``h``, the tensor at hook point ``hook``: runs only the layers after it (their
        hook points included, so hooks attached there still apply)."""
        if hook not in self._resume:
            raise KeyError(f"unknown hook name {hook!r}; known: {self.hook_names}")
        return self._run(h, self._resume[hook])

    def _run(self, h: torch.Tensor, start: int) -> torch.Tensor:
        for spec, hook in self._plan[start:]:
            if isinstance(spec, Linear | Conv2d):
                h = self.get_submodule(spec.name)(h)
            elif isinstance(spec, Activation):
                h = activate(spec, h)
            elif isinstance(spec, Pool):
                h = pool(spec, h)
            elif isinstance(spec, Flatten):
                h = h.flatten(1)
            elif isinstance(spec, Dropout):
                h = F.dropout(h, spec.p, self.training)
            # an Output (softmax) is left out: the logits are the values before it
            if hook is not None:
                h = self.hook(hook)(h)
        return h

    # -- layers and hooks ---------------------------------------------------------------------------
    def hook(self, name: str) -> HookPoint:
        return self.hook_points[_hook_key(name)]

    @property
    def hook_names(self) -> list[str]:
        """Every capturable name, in forward order."""
        return list(self.layout.hook_names)

    @property
    def layer_names(self) -> tuple[str, ...]:
        """The unit layers (Linear and Conv2d) in forward order; the last one produces the logits."""
        return self.layout.names

    def layer(self, name: str) -> nn.Module:
        """The ``nn.Linear`` or ``nn.Conv2d`` module of unit layer ``name``."""
        return self.get_submodule(self.layout.check(name).name)

    @property
    def n_classes(self) -> int:
        return self.config.n_classes

    # -- inputs ---------------------------------------------------------------------------------------
    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1], ``[N, 28, 28]`` or ``[N, 1, 28, 28]`` -> normalised ``[N, 1, 28, 28]``."""
        if pixels.dim() == 3:
            pixels = pixels.unsqueeze(1)
        norm = self.config.normalization
        return pixels if norm.is_identity else (pixels - norm.mean) / norm.std


def build_model(config: NetConfig) -> MNISTNet:
    """A freshly initialised model for ``config`` (in eval mode)."""
    return MNISTNet(config).eval()
