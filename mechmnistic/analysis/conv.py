"""Conv layers: filters, feature maps, and each channel's top examples with where it fired.

A conv unit is a channel. Over the dataset its activation on an image is the
channel's maximum after ReLU, at the position kept by
``analysis.activations`` (``(row, col)`` in the layer's pre-pooling map); a
channel *at a position* is the single number at that cell. Both are grounded
in pixels by ``analysis.grounding`` (``units`` = channels, optional
``positions``). ``receptive_field`` says which pixels a position sees, so a
view can draw the box where a channel fired, and ``receptive_field_crops``
cuts those boxes out of pixel maps (embeddings of one channel on many images,
aligned on where it fired). ``position_activations`` gives a channel at one
position over a whole split (cached on disk), for top examples and
distributions of that single number; ``pooled_cell_positions`` says where in
the map each pooled cell, which is what the next layer reads, took its maximum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..cache import cached
from ..data import Split, load_mnist
from ..hooks import hooks, run_with_cache, to_pixels
from ..models.architectures import MNISTNet
from .activations import layer_activations
from .units import UnitError, check_positions, check_units

Stage = Literal["pre", "post", "pool"]


def _check_conv(model: MNISTNet, layer: str) -> torch.nn.Conv2d:
    model.layout.check_conv(layer)
    return model.layer(layer)


@dataclass(frozen=True)
class Filters:
    """A conv layer's kernels: ``weights`` float32 ``[C_out, C_in, k, k]`` (one ``k x k`` kernel per
    output channel and input channel) and ``bias`` float32 ``[C_out]``. These are the module's own
    weights: for a first layer of a normalising model they act on normalised pixels."""

    layer: str
    weights: np.ndarray
    bias: np.ndarray


def filters(model: MNISTNet, layer: str) -> Filters:
    module = _check_conv(model, layer)
    bias = module.bias.detach().numpy() if module.bias is not None else np.zeros(module.out_channels)
    return Filters(layer, module.weight.detach().numpy().astype(np.float32), bias.astype(np.float32))


def feature_maps(model: MNISTNet, layer: str, image: np.ndarray | torch.Tensor, stage: Stage = "post") -> np.ndarray:
    """Every channel's map on one image (``[28, 28]``): float32 ``[C, H, W]``.

    ``stage``: ``pre`` (the convolution's output), ``post`` (after the
    activation; the maps whose value at each channel's maximum is its
    activation) or ``pool`` (after pooling: what the next layer reads). A
    layer without an activation or pooling has its ``pre`` map at those stages.
    """
    unit_layer = model.layout.check_conv(layer)
    if stage not in ("pre", "post", "pool"):
        raise UnitError(f"stage must be pre, post or pool, got {stage!r}")
    pixels = to_pixels(image)
    if len(pixels) != 1:
        raise UnitError(f"one image at a time, got {len(pixels)}")
    hook = {"pre": unit_layer.pre_hook, "post": unit_layer.activation_hook, "pool": unit_layer.output_hook}[stage]
    _, cache = run_with_cache(model, pixels, names=[hook])
    return cache[hook][0].numpy()


def receptive_field(model: MNISTNet, layer: str, position: tuple[int, int] | np.ndarray) -> np.ndarray:
    """The pixels that a conv layer's map cell ``(row, col)`` depends on, as an inclusive box
    ``[row0, col0, row1, col1]`` (int64). For several positions ``[P, 2]``, boxes ``[P, 4]``. With padding a
    box may reach past the image's edge (the padding's zeros); ``clip_boxes`` cuts it to the image."""
    model.layout.check_conv(layer)
    cells = np.asarray(position, dtype=np.int64)
    single = cells.ndim == 1
    cells = check_positions(model, layer, cells.reshape(-1, 2), len(cells.reshape(-1, 2)))
    boxes = model.layout.receptive_field(layer, cells)
    return boxes[0] if single else boxes


def clip_boxes(boxes: np.ndarray, size: int = 28) -> np.ndarray:
    """Boxes ``[..., 4]`` cut to the image (for drawing them)."""
    return np.clip(np.asarray(boxes), 0, size - 1)


@dataclass(frozen=True)
class ChannelExamples:
    """The images of a split on which a channel fires hardest.

    ``indices`` int64 ``[k]`` into the split, strongest first; ``values``
    float32 ``[k]`` the channel's maximum after ReLU; ``positions`` int32
    ``[k, 2]`` where that maximum is in the layer's map; ``boxes`` int64
    ``[k, 4]`` the pixels it sees there (``receptive_field``).
    """

    layer: str
    channel: int
    indices: np.ndarray
    values: np.ndarray
    positions: np.ndarray
    boxes: np.ndarray


def top_channel_examples(
    model: MNISTNet, layer: str, channel: int, k: int = 500, split: Split = "train"
) -> ChannelExamples:
    """The ``k`` images of ``split`` where ``channel`` of conv ``layer`` reaches its highest maximum
    (ties: lower index first), from the cached dataset activations."""
    _check_conv(model, layer)
    channel = int(check_units(model, layer, [channel])[0])
    acts = layer_activations(model, layer, split)
    values = acts.values[:, channel]
    if not 1 <= k <= len(values):
        raise UnitError(f"k must be between 1 and {len(values)}, got {k}")
    candidates = np.argpartition(-values, k - 1)[:k] if k < len(values) else np.arange(len(values))
    order = np.lexsort((candidates, -values[candidates]))
    indices = candidates[order].astype(np.int64)
    positions = acts.argmax[indices, channel]
    return ChannelExamples(layer, channel, indices, values[indices], positions,
                           receptive_field(model, layer, positions.astype(np.int64)))


def position_activations(
    model: MNISTNet, layer: str, channel: int, position: tuple[int, int], split: Split = "train"
) -> np.ndarray:
    """The pre-activation of ``channel`` at ``position`` ``(row, col)`` of conv ``layer``'s map on every
    image of ``split``: float32 ``[N]``, computed with one pass over the split and cached on disk
    (only this cell is kept: a whole layer's maps over the training set would take gigabytes)."""
    _check_conv(model, layer)
    channel = int(check_units(model, layer, [channel])[0])
    row, col = (int(v) for v in check_positions(model, layer, np.asarray(position).reshape(1, 2), 1)[0])
    images = load_mnist(split).images

    def compute() -> dict[str, np.ndarray]:
        parts: list[torch.Tensor] = []

        def keep_cell(pre: torch.Tensor) -> None:
            parts.append(pre[:, channel, row, col].clone())

        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode(), hooks(model, {f"{layer}.pre": keep_cell}):
                for start in range(0, len(images), 4096):
                    model(to_pixels(images[start : start + 4096]))
        finally:
            model.train(was_training)
        return {"pre": torch.cat(parts).numpy().astype(np.float32)}

    key = {"layer": layer, "channel": channel, "position": [row, col], "split": split}
    return cached(model, "position_activations", key, compute)["pre"]


def pooled_cell_positions(model: MNISTNet, layer: str, image: np.ndarray | torch.Tensor) -> np.ndarray:
    """Where each cell of conv ``layer``'s output (what the next layer reads) took its value on ``image``
    (``[28, 28]``): int64 ``[C, H', W', 2]``, the ``(row, col)`` in the layer's map. After max-pooling, the
    window's winner (``max_pool2d``'s choice among ties, as grounding takes it); after average pooling, the
    window's first cell; without pooling, the cell itself."""
    unit_layer = model.layout.check_conv(layer)
    pool = unit_layer.pool
    channels, side = unit_layer.n_units, unit_layer.map_side
    if pool is None:
        rows, cols = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
        cells = np.stack([rows, cols], axis=2)
        return np.broadcast_to(cells, (channels, side, side, 2)).astype(np.int64).copy()
    if pool.kind == "avg":
        starts = np.clip(np.arange(unit_layer.pooled_side) * pool.stride - pool.padding, 0, side - 1)
        rows, cols = np.meshgrid(starts, starts, indexing="ij")
        cells = np.stack([rows, cols], axis=2)
        return np.broadcast_to(cells, (channels, *cells.shape)).astype(np.int64).copy()
    post = torch.from_numpy(feature_maps(model, layer, image, stage="post"))
    _, index = F.max_pool2d(post, pool.kernel_size, pool.stride, pool.padding, return_indices=True)
    width = post.shape[2]
    return torch.stack([index // width, index % width], dim=3).numpy().astype(np.int64)


def receptive_field_crops(maps: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Cut box ``boxes[i]`` (inclusive ``[row0, col0, row1, col1]``) out of ``maps[i]``: ``[K, H, W]`` ->
    ``[K, h, w]``. All boxes must have one size (a layer's receptive fields do), so the crops align; parts of a
    box past the map's edge (a padded layer's) are zeros."""
    boxes = np.asarray(boxes, dtype=np.int64)
    sizes = boxes[:, 2:] - boxes[:, :2] + 1
    if len(boxes) != len(maps) or (len(boxes) and np.any(sizes != sizes[0])):
        raise UnitError("one box per map, all of one size")
    if not len(boxes):
        return np.zeros((0, 0, 0), np.asarray(maps).dtype)
    maps = np.asarray(maps)
    margin = int(max(0, -boxes[:, :2].min(), (boxes[:, 2:] - np.array(maps.shape[1:]) + 1).max()))
    if margin:
        maps = np.pad(maps, ((0, 0), (margin, margin), (margin, margin)))
        boxes = boxes + margin
    h, w = (int(v) for v in sizes[0])
    rows = boxes[:, 0, None] + np.arange(h)[None]  # [K, h]
    cols = boxes[:, 1, None] + np.arange(w)[None]  # [K, w]
    return maps[np.arange(len(maps))[:, None, None], rows[:, :, None], cols[:, None, :]]
