"""Feature visualisation: inputs that maximise units or directions, by gradient ascent on the pixels.

Objectives
----------
Each objective is linear in one hook's activation, ``f_k(x) = weights[k] · flatten(h(x))``:

* a fully connected unit (``unit_objectives``): its pre-activation
  ``<layer>.pre``, which still has a gradient where the ReLU output is flat at
  zero (for the output layer: the logit);
* a conv channel: the mean of its pre-activation map over all positions;
* a direction ``v`` of a layer's activation space (``direction_objectives``,
  see ``analysis.geometry``): ``v · a(x)`` in that space (post-ReLU units, the
  logits, or the pooled maps). For the exact logit-difference direction this is
  the logit difference less the bias difference. Post-ReLU units that are off
  at the start give no gradient; start from noise when a direction's units are
  all silent on a blank image.

Optimisation
------------
The variable is the image in pixel units, ``[0, 1]``: the model applies its own
input normalisation inside its forward pass, so nothing here normalises. Images
start from zeros, uniform noise on [0, 1], or a dataset image (``train:N`` /
``test:N``), and follow Adam on

    loss = - sum_k f_k(jitter_k(x_k)) + l2 * sum_k ||x_k||^2

After each step the image is smoothed with a Gaussian of ``blur`` pixels
(reflecting at the border), if set, and then clamped to [0, 1] if ``clamp``
(the result records which). ``jitter`` shows the model each image circularly
shifted by a random ``(dy, dx)`` in ``[-jitter, jitter]`` at every step, so
the result must work at several positions.

Batching
--------
All ``K`` objectives are optimised together as one batch of ``K`` images, never
one loop per objective. That is exact, not an approximation: image ``k`` only
reaches objective ``k`` (the model runs in eval mode, so there is no dropout or
batch statistic linking images), the loss is a sum, and Adam, blur and clamp act
on each pixel or image alone. Random draws (noise, jitter) come from a stream
seeded by ``(seed, key_k)``, where ``key_k`` is the objective's own id (its unit
index, or a direction's position), so they do not depend on which other
objectives share the batch. A test checks that the batch gives the images each
objective gives alone.

Nearest training examples
-------------------------
``nearest_training_examples`` ranks the training images by cosine similarity
with the result, both as flattened pixel vectors in [0, 1] (the result as it
is, unclamped values included): ``x·t / (||x|| ||t||)``. It compares shapes
regardless of ink intensity; a blank result is similar to nothing (0).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..cache import cached, is_cached
from ..data import SIZES, Split, load_mnist
from ..errors import MechMNISTicError
from ..hooks import eval_mode, forward_to
from ..labels import template_image
from ..models.architectures import MNISTNet
from .geometry import ActivationSpace, Direction, Progress
from .units import check_units

_INIT = re.compile(r"^(zeros|noise|(train|test):\d+)$")


def _init_index_in_range(init: str) -> bool:
    """A ``train:N``/``test:N`` start names an existing image (checked before anything is computed)."""
    split, _, index = init.partition(":")
    return split not in SIZES or not index.isdigit() or int(index) < SIZES[split]


class FeatureVizError(MechMNISTicError, ValueError):
    """Settings or targets that cannot be optimised."""


@dataclass(frozen=True)
class Objectives:
    """``K`` linear objectives on one hook: ``f_k = weights[k] · flatten(hook activation)``.

    ``weights``: float32 ``[K, D]``. ``keys``: each objective's id for its
    random stream. ``units``: the unit (neuron or channel) each objective
    maximises, or ``-1`` for a direction.
    """

    layer: str
    hook: str
    weights: torch.Tensor
    names: tuple[str, ...]
    keys: tuple[int, ...]
    units: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, indices: Sequence[int]) -> Objectives:
        """The objectives at ``indices`` (their keys kept, so their random streams are too)."""
        idx = list(indices)
        return Objectives(self.layer, self.hook, self.weights[idx], tuple(self.names[i] for i in idx),
                          tuple(self.keys[i] for i in idx), tuple(self.units[i] for i in idx))


def unit_objectives(model: MNISTNet, layer: str, units: Sequence[int] | None = None) -> Objectives:
    """One objective per unit of ``layer`` (default: all), as the module docstring defines."""
    chosen = check_units(model, layer, units).tolist()
    if not chosen:
        raise FeatureVizError("no units to visualise")
    hook = f"{layer}.pre"
    with torch.inference_mode(), eval_mode(model):
        shape = forward_to(model, torch.zeros(1, 28, 28, dtype=next(model.parameters()).dtype), hook).shape[1:]
    per_unit = int(np.prod(shape[1:])) if len(shape) > 1 else 1  # positions of a conv channel's map
    weights = torch.zeros(len(chosen), shape[0], per_unit)
    weights[torch.arange(len(chosen)), torch.tensor(chosen)] = 1.0 / per_unit
    what = "channel" if model.layout[layer].is_conv else "unit"
    return Objectives(layer, hook, weights.flatten(1), tuple(f"{layer} {what} {u}" for u in chosen),
                      tuple(chosen), tuple(chosen))


def direction_objectives(space: ActivationSpace, directions: Sequence[Direction]) -> Objectives:
    """One objective ``v · a(x)`` per direction, in ``space`` (the directions' layer)."""
    if not directions:
        raise FeatureVizError("no directions to visualise")
    weights = torch.from_numpy(np.stack([d.vector for d in directions]).astype(np.float32))
    if weights.shape[1] != space.dim:
        raise FeatureVizError(f"directions have {weights.shape[1]} coordinates; {space.layer} has {space.dim}")
    return Objectives(space.layer, space.hook, weights, tuple(d.name for d in directions),
                      tuple(range(len(directions))), (-1,) * len(directions))


@dataclass(frozen=True)
class FeatureVizConfig:
    """How to optimise (module docstring). ``init``: ``zeros``, ``noise``, ``train:N`` or ``test:N``."""

    steps: int = 100
    lr: float = 0.05
    init: str = "zeros"
    l2: float = 0.0
    blur: float = 0.0
    jitter: int = 0
    clamp: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            (isinstance(self.steps, int) and 1 <= self.steps <= 10_000, f"steps must be 1..10000, got {self.steps}"),
            (math.isfinite(self.lr) and 0 < self.lr <= 10, f"lr must be in (0, 10], got {self.lr}"),
            (bool(_INIT.match(str(self.init))), f"init must be zeros, noise, train:N or test:N; got {self.init!r}"),
            (_init_index_in_range(str(self.init)), f"init {str(self.init)[:40]!r}: template index out of range "
                                                   f"(train 0..{SIZES['train'] - 1}, test 0..{SIZES['test'] - 1})"),
            (math.isfinite(self.l2) and self.l2 >= 0, f"l2 must be >= 0, got {self.l2}"),
            (math.isfinite(self.blur) and 0 <= self.blur <= 5, f"blur must be 0..5 pixels, got {self.blur}"),
            (isinstance(self.jitter, int) and 0 <= self.jitter <= 8, f"jitter must be 0..8 pixels, got {self.jitter}"),
            (isinstance(self.seed, int) and 0 <= self.seed < 2**63,
             f"seed must be a whole number in 0..2**63-1, got {str(self.seed)[:24]}"),
        ]
        for ok, message in checks:
            if not ok:
                raise FeatureVizError(message)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class FeatureVisualization:
    """The optimised inputs and how far they raised their objectives.

    ``images``: float32 ``[K, 28, 28]`` in pixel units (in [0, 1] when
    ``clamped``). ``initial`` / ``final``: float32 ``[K]``, each objective on the
    starting and on the returned image (no jitter). ``history``: float32
    ``[steps, K]``, the objective at each step as optimised (jittered, before
    the step).
    """

    images: np.ndarray
    initial: np.ndarray
    final: np.ndarray
    history: np.ndarray
    names: tuple[str, ...]
    units: tuple[int, ...]
    config: FeatureVizConfig

    @property
    def clamped(self) -> bool:
        return self.config.clamp

    def subset(self, indices: Sequence[int]) -> FeatureVisualization:
        idx = list(indices)
        return FeatureVisualization(self.images[idx], self.initial[idx], self.final[idx], self.history[:, idx],
                                    tuple(self.names[i] for i in idx), tuple(self.units[i] for i in idx), self.config)


def _streams(config: FeatureVizConfig, keys: Sequence[int]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per-objective noise images ``[K, 28, 28]`` and jitter shifts ``[K, steps, 2]`` from ``(seed, key)``."""
    noise, shifts = [], []
    for key in keys:
        rng = np.random.default_rng([config.seed, key])
        if config.init == "noise":
            noise.append(rng.random((28, 28), dtype=np.float32))
        if config.jitter:
            shifts.append(rng.integers(-config.jitter, config.jitter + 1, size=(config.steps, 2)))
    return (np.stack(noise) if noise else None), (np.stack(shifts) if shifts else None)


def _start(config: FeatureVizConfig, count: int, noise: np.ndarray | None) -> torch.Tensor:
    if config.init == "zeros":
        return torch.zeros(count, 28, 28)
    if config.init == "noise":
        return torch.from_numpy(noise)
    try:
        image = template_image(config.init)
    except ValueError as exc:
        raise FeatureVizError(str(exc)) from None
    return torch.from_numpy(image).expand(count, 28, 28).clone()


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    grid = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (grid / sigma) ** 2)
    return kernel / kernel.sum()


def _blur(images: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur of ``[K, 28, 28]``, reflecting at the border."""
    radius = len(kernel) // 2
    x = F.pad(images.unsqueeze(1), (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    x = F.conv2d(x, kernel.view(1, 1, -1, 1))
    return x.squeeze(1)


def _shifted(images: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Each image ``k`` circularly shifted by ``shifts[k] = (dy, dx)`` (``torch.roll`` per image)."""
    grid = torch.arange(28)
    rows = (grid[None, :] - shifts[:, :1]) % 28  # [K, 28]
    cols = (grid[None, :] - shifts[:, 1:]) % 28
    batch = torch.arange(len(images))[:, None, None]
    return images[batch, rows[:, :, None], cols[:, None, :]]


@contextlib.contextmanager
def _native_convolutions() -> Iterator[None]:
    """Use PyTorch's own CPU convolution kernels (im2col and a matrix product) for the block.

    oneDNN reorders every tensor into blocked layouts, which for convolutions
    with a handful of channels (as MNIST models have) costs more than the
    arithmetic, and NNPACK's own thread pool fights OpenMP's for the cores:
    measured here on one thread, a step of the challenge network's fc1 batch
    takes 15 ms with the native kernels, 19 ms with NNPACK and 38 ms with
    oneDNN. The switches are process-wide; work in other threads meanwhile also
    gets the native kernels, which give the same values up to rounding.
    """
    onednn = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    (nnpack,) = torch.backends.nnpack.set_flags(False)
    try:
        yield
    finally:
        torch.backends.nnpack.set_flags(nnpack)
        torch.backends.mkldnn.enabled = onednn


@dataclass(frozen=True)
class _Linear:
    """``f_k(x) = weights[k] · flatten(hook(x)) + offset[k]``, the objectives as computed."""

    hook: str
    weights: torch.Tensor
    offset: torch.Tensor

    def __call__(self, model: MNISTNet, images: torch.Tensor) -> torch.Tensor:
        return (forward_to(model, images, self.hook).flatten(1) * self.weights).sum(1) + self.offset


def _folded(model: MNISTNet, objectives: Objectives, dtype: torch.dtype) -> _Linear:
    """The objectives, with a fully connected layer they read folded into them.

    An objective on ``L.pre`` of a Linear layer ``L`` is ``w · (W h + b) =
    (w W) · h + w · b``, where ``h`` is ``L``'s input, the hook just before it:
    the same function, without running ``L`` forwards and backwards at every
    step (for fc1 of the challenge network, a third of the arithmetic).
    """
    weights = objectives.weights.to(dtype)
    offset = torch.zeros(len(objectives), dtype=dtype)
    layer_name, _, stage = objectives.hook.rpartition(".")
    if stage == "pre" and not model.layout[layer_name].is_conv:
        previous = model.layout.previous(layer_name)
        source = previous.output_hook if previous is not None else "input"
        layer = model.layer(layer_name)
        weight = layer.weight.detach().to(dtype)
        bias = layer.bias.detach().to(dtype) if layer.bias is not None else torch.zeros(len(weight), dtype=dtype)
        return _Linear(source, weights @ weight, weights @ bias)
    return _Linear(objectives.hook, weights, offset)


def optimize_inputs(
    model: MNISTNet, objectives: Objectives, config: FeatureVizConfig, progress: Progress = None
) -> FeatureVisualization:
    """Maximise every objective at once (module docstring); uncached. ``progress(fraction)`` is told how far it is."""
    noise, shifts = _streams(config, objectives.keys)
    dtype = next(model.parameters()).dtype  # optimise in the model's own precision
    x = _start(config, len(objectives), noise).to(dtype).requires_grad_(True)
    objective = _folded(model, objectives, dtype)
    optimizer = torch.optim.Adam([x], lr=config.lr)
    kernel = _gaussian_kernel(config.blur).to(dtype) if config.blur > 0 else None
    shift_steps = torch.from_numpy(shifts).permute(1, 0, 2) if shifts is not None else None  # [steps, K, 2]
    history = torch.empty(config.steps, len(objectives), dtype=dtype)
    with eval_mode(model), torch.enable_grad(), _native_convolutions():
        with torch.no_grad():
            initial = objective(model, x)
        for step in range(config.steps):
            seen = _shifted(x, shift_steps[step]) if shift_steps is not None else x
            values = objective(model, seen)
            loss = -values.sum()
            if config.l2:
                loss = loss + config.l2 * (x * x).sum()
            (x.grad,) = torch.autograd.grad(loss, x)
            optimizer.step()
            history[step] = values.detach()
            if progress and (step + 1) % 10 == 0:
                progress((step + 1) / config.steps)
            with torch.no_grad():
                if kernel is not None:
                    x.copy_(_blur(x, kernel))
                if config.clamp:
                    x.clamp_(0.0, 1.0)
        with torch.no_grad():
            final = objective(model, x)
    return FeatureVisualization(x.detach().float().numpy().copy(), initial.float().numpy(), final.float().numpy(),
                                history.float().numpy(), objectives.names, objectives.units, config)


def visualize(
    model: MNISTNet,
    objectives: Objectives,
    config: FeatureVizConfig | None = None,
    cache: bool = True,
    progress: Progress = None,
) -> FeatureVisualization:
    """``optimize_inputs``, cached on disk by the objectives' weights and keys and the config."""
    config = config or FeatureVizConfig()
    if not cache:
        return optimize_inputs(model, objectives, config, progress)
    params = _cache_params(objectives, config)

    def compute() -> dict[str, np.ndarray]:
        result = optimize_inputs(model, objectives, config, progress)
        return {"images": result.images, "initial": result.initial, "final": result.final,
                "history": result.history}

    arrays = cached(model, "feature_viz", params, compute)
    return FeatureVisualization(arrays["images"], arrays["initial"], arrays["final"], arrays["history"],
                                objectives.names, objectives.units, config)


def _cache_params(objectives: Objectives, config: FeatureVizConfig) -> dict:
    digest = hashlib.sha256(objectives.weights.numpy().tobytes() + np.asarray(objectives.keys).tobytes())
    return {"hook": objectives.hook, "objectives": digest.hexdigest()[:24], **config.to_dict()}


def is_visualized(model: MNISTNet, objectives: Objectives, config: FeatureVizConfig) -> bool:
    """Whether ``visualize`` will read these results from disk (so a page can skip its progress bar)."""
    return is_cached(model, "feature_viz", _cache_params(objectives, config))


def visualize_units(
    model: MNISTNet,
    layer: str,
    units: Sequence[int] | None = None,
    config: FeatureVizConfig | None = None,
    progress: Progress = None,
) -> FeatureVisualization:
    """Units of ``layer`` (default all), always optimised as the whole layer's batch (cached).

    A unit's image then never depends on which other units were asked for
    (float32 rounding in a convolution can differ with the batch size), so the
    page, the CLI and this function agree to the bit; and a batch of every unit
    costs little more than one unit.
    """
    every = unit_objectives(model, layer)
    chosen = check_units(model, layer, units)
    result = visualize(model, every, config, progress=progress)
    return result if units is None else result.subset(chosen.tolist())


@dataclass(frozen=True)
class NearestExamples:
    """For each of ``K`` images, the ``k`` most similar training images: ``indices`` int64 and
    ``similarity`` float32, both ``[K, k]``, most similar first."""

    indices: np.ndarray
    similarity: np.ndarray
    split: Split


def nearest_training_examples(images: np.ndarray, k: int = 3, split: Split = "train") -> NearestExamples:
    """The ``k`` images of ``split`` with the highest cosine similarity to each of ``images`` ``[K, 28, 28]``.

    Pixels in [0, 1] as flattened vectors (module docstring). Memory: one
    ``[K, N]`` float32 similarity matrix and one 10,000-image block at a time.
    """
    data = load_mnist(split).images
    if not 1 <= k <= 50:
        raise FeatureVizError(f"k must be 1..50, got {k}")
    queries = np.asarray(images, np.float32).reshape(len(images), 784)  # (not -1: K may be 0)
    norms = np.linalg.norm(queries, axis=1, keepdims=True)
    queries = np.divide(queries, norms, out=np.zeros_like(queries), where=norms > 0)
    similarity = np.empty((len(queries), len(data)), np.float32)
    for start in range(0, len(data), 10_000):
        block = data[start : start + 10_000].reshape(-1, 784).astype(np.float32) / 255.0
        block /= np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)
        similarity[:, start : start + len(block)] = queries @ block.T
    top = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    top_values = np.take_along_axis(similarity, top, axis=1)
    order = np.lexsort((top, -top_values), axis=1)
    indices = np.take_along_axis(top, order, axis=1)
    return NearestExamples(indices.astype(np.int64), np.take_along_axis(similarity, indices, axis=1), split)
