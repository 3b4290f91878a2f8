"""Activation capture with hooks that never leak.

``run_with_cache(model, images)`` runs a model and returns its logits and an
``ActivationCache`` of every named intermediate tensor. Hooks are registered
inside a context manager whose ``finally`` removes them, so none remains on any
module afterwards, even when the forward pass raises.

Hook names (shapes for N images; see ``ActivationCache.describe``):

* ``input``: the normalised input, ``[N, 1, 28, 28]``
* ``<layer>.pre``: a layer's affine output (Linear ``[N, units]``, Conv ``[N, C, H, W]``);
  for the last layer this is the logits ``[N, n_classes]``
* ``<layer>.post``: after ReLU (hidden layers only), same shape as ``.pre``
* ``<conv layer>.pool``: after max-pooling ``[N, C, H', W']``
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from .models.architectures import MNISTNet


def to_pixels(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Images as ``load_mnist`` gives them (uint8 ``[N,28,28]``) or floats in [0, 1]
    -> float32 tensor ``[N, 28, 28]`` in [0, 1]. A single image ``[28, 28]`` becomes ``[1, 28, 28]``."""
    if isinstance(images, torch.Tensor):
        tensor = images.detach()
    else:
        array = np.asarray(images)
        # Convert on the numpy side: the result is a fresh writable array, and
        # torch never wraps read-only memory (load_mnist's arrays are read-only).
        if array.dtype == np.uint8:
            array = array.astype(np.float32) / np.float32(255.0)
        elif np.issubdtype(array.dtype, np.floating):
            array = array.astype(np.float32, copy=True)
        tensor = torch.from_numpy(np.ascontiguousarray(array)) if array.dtype != object else None
    if tensor is None or not (tensor.dtype == torch.uint8 or tensor.is_floating_point()):
        raise TypeError(f"images must be uint8 or float in [0, 1], got {getattr(tensor, 'dtype', 'object')}")
    if tensor.dtype == torch.uint8:
        tensor = tensor.to(torch.float32) / 255.0
    tensor = tensor.to(torch.float32)
    if tensor.dim() == 4 and tensor.shape[1] == 1:
        tensor = tensor[:, 0]
    if tensor.dim() == 2:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() != 3 or tuple(tensor.shape[1:]) != (28, 28):
        raise ValueError(f"images must be [N, 28, 28], got shape {tuple(tensor.shape)}")
    return tensor


class ActivationCache(dict):
    """``{hook name: tensor}`` with a readable summary of what it holds."""

    def describe(self) -> str:
        return "\n".join(f"{name:<20} {list(t.shape)}" for name, t in self.items())


@contextlib.contextmanager
def hooks(model: MNISTNet, fns: dict[str, Callable[[torch.Tensor], torch.Tensor | None]]) -> Iterator[None]:
    """Attach ``fn(tensor)`` at each named hook point for the duration of the block.

    A function may return a tensor to replace the activation (for ablations and
    patching) or ``None`` to leave it. Hooks are removed on exit, always.

    Hooks act only on forward passes run by the thread that attached them: the
    app shares one model object between sessions (each session's script runs in
    its own thread), and one session's capture or ablation must never see or
    change another's forward pass.
    """
    unknown = set(fns) - set(model.hook_names)
    if unknown:
        raise KeyError(f"unknown hook names {sorted(unknown)}; known: {model.hook_names}")
    owner = threading.get_ident()

    def attach(fn: Callable[[torch.Tensor], torch.Tensor | None]):
        def hook(_module, _inputs, out):
            return fn(out) if threading.get_ident() == owner else None

        return hook

    handles = []
    try:
        for name, fn in fns.items():
            handles.append(model.hook(name).register_forward_hook(attach(fn)))
        yield
    finally:
        for handle in handles:
            handle.remove()


class _Buffers:
    """Tensors ``[N, ...]`` filled batch by batch as the forward pass reaches each hook.

    Each is allocated once the first batch shows its shape, so a dataset pass
    holds one copy of what it keeps: no list of chunks, no concatenation (which
    would briefly hold two). Allocated outside inference mode, so callers may
    change the results in place.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.start = 0
        self.tensors: dict[str, torch.Tensor] = {}

    def write(self, name: str, batch: torch.Tensor) -> None:
        if name not in self.tensors:
            with torch.inference_mode(False):
                self.tensors[name] = torch.empty((self.total, *batch.shape[1:]), dtype=batch.dtype)
        self.tensors[name][self.start : self.start + len(batch)] = batch

    def recorder(self, name: str) -> Callable[[torch.Tensor], None]:
        def record(out: torch.Tensor) -> None:
            self.write(name, out.detach())

        return record


#: The most bytes one hook's tensor may take for one batch of a dataset pass: batches shrink for wide
#: layers (the PyTorch example's conv2 holds 147 KB per image), so a pass's memory never grows with the model.
BATCH_BYTES = 64 * 2**20


def safe_batch_size(model: MNISTNet, batch_size: int) -> int:
    """``batch_size``, or fewer images so that no hook's tensor exceeds ``BATCH_BYTES`` for a batch."""
    widest = max(int(np.prod(shape)) for layer in model.layout
                 for shape in (layer.input_shape, layer.pre_shape, layer.output_shape))
    return max(16, min(batch_size, BATCH_BYTES // (4 * widest)))


def run_with_cache(
    model: MNISTNet,
    images: np.ndarray | torch.Tensor,
    names: Iterable[str] | None = None,
    batch_size: int = 4096,
) -> tuple[torch.Tensor, ActivationCache]:
    """Run ``model`` on ``images`` and capture intermediate tensors.

    ``images``: uint8 ``[N, 28, 28]`` (as ``load_mnist`` returns) or float in
    [0, 1]; the model's own normalisation is applied. ``names`` restricts what
    is kept (default: every hook name). Runs in eval mode without gradients,
    in batches of at most ``batch_size`` (fewer for wide models:
    ``safe_batch_size``). Returns ``(logits [N, n_classes], cache)``.
    """
    batch_size = safe_batch_size(model, batch_size)
    if (images.dim() if isinstance(images, torch.Tensor) else np.ndim(images)) == 2:
        images = images[None]  # a single image
    to_pixels(images[:1])  # fail on a bad shape or dtype before any hook is attached
    wanted: Sequence[str] = list(model.hook_names if names is None else names)
    buffers, outputs = _Buffers(len(images)), _Buffers(len(images))
    fns = {name: buffers.recorder(name) for name in wanted}
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), hooks(model, fns):
            # Convert batch by batch: 60,000 images as float32 would be 188 MB at once.
            for start in range(0, len(images), batch_size):
                buffers.start = outputs.start = start
                outputs.write("logits", model(to_pixels(images[start : start + batch_size])))
    finally:
        model.train(was_training)
    logits = outputs.tensors.get("logits", torch.empty(0, model.n_classes))
    cache = ActivationCache((name, buffers.tensors.get(name, torch.empty(0))) for name in wanted)
    return logits, cache


def predict(model: MNISTNet, images: np.ndarray | torch.Tensor, batch_size: int = 8192) -> np.ndarray:
    """Predicted class per image, int64 ``[N]``."""
    logits, _ = run_with_cache(model, images, names=[], batch_size=batch_size)
    return logits.argmax(1).numpy()


class _Reached(Exception):
    """Carries the tensor at the requested hook out of the forward pass."""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.value = value


def forward_to(model: MNISTNet, pixels: torch.Tensor, name: str) -> torch.Tensor:
    """The tensor at hook ``name`` for ``pixels``, without running the layers after it.

    ``pixels``: float ``[N, 28, 28]`` in [0, 1] (the model normalises them). Runs
    in the caller's grad mode and the model's current mode (so it is
    differentiable, for gradient ascent on pixels); callers put the model in
    eval mode. Stopping early matters when a dataset pass or an optimisation
    only needs an early layer: a conv layer's maps cost a fraction of the
    whole network.
    """

    def stop(out: torch.Tensor) -> None:
        raise _Reached(out)

    try:
        with hooks(model, {name: stop}):
            model(pixels)
    except _Reached as reached:
        return reached.value
    raise RuntimeError(f"the forward pass never reached hook {name!r}")


@contextlib.contextmanager
def eval_mode(model: MNISTNet) -> Iterator[MNISTNet]:
    """Run the block with ``model`` in eval mode (dropout off), restoring its mode after."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
