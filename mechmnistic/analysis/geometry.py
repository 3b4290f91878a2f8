"""Activation geometry: PCA of a layer's activations over a split, and directions in that space.

The activation space of a layer
-------------------------------
``activation_space(model, layer)`` fixes the vector ``a(x)`` that PCA,
directions and loadings live in:

* a hidden fully connected layer: its units' post-ReLU activations, ``[units]``
  (the numbers ``analysis.activations.layer_activations`` caches and every page shows);
* the output layer: the logits, ``[n_classes]``;
* a conv layer: its max-pooled feature maps flattened channel-major,
  ``[C * H * W]``: exactly the vector the next layer reads (for the last conv
  layer, what ``fc1`` multiplies). Coordinate ``(c * H + r) * W + q`` is channel
  ``c`` at pooled position ``(r, q)``; its *unit* (for the Neuron Explorer) is ``c``.

Conv spaces are streamed: the split passes through the model in batches (only
up to the layer) and only running sums are kept, so memory is bounded by the
``D x D`` covariance (float64) plus one batch plus the ``[N, K]`` scores, never
``[N, D]``. Spaces larger than ``MAX_DIM`` are refused with a message.

PCA
---
``ActivationPCA`` is exact: the eigendecomposition of the covariance
(``ddof=1``) accumulated in float64, which is scikit-learn's
``PCA(svd_solver="covariance_eigh")``, with scikit-learn's sign convention (each
component's largest-magnitude entry is positive). Scores are
``z = (a - mean_) @ components_.T``. ``layer_pca`` fits it on every image of a
split and caches the result on disk.

Directions (``build_direction`` parses a spec; each kind also has its own function)
----------------------------------------------------------------------------------
* ``pcK``: principal component ``K`` (1-based, as the axes "PC1", "PC2" read).
* ``logit:A-B``: the logit-difference direction, the mean over the split of the
  gradient of ``logit_A - logit_B`` with respect to ``a``. When the layer feeds
  the output layer directly (or is it), the gradient is constant and the
  direction is exact: ``W[A] - W[B]`` (rows of the output weight), and
  ``logit_A - logit_B = v · a + (b_A - b_B)`` for every input. For layers
  further from the output it is the average local linearisation, nothing more:
  the ReLUs in between make the true dependence input-specific.
* ``fit:pcI=LO..HI[,pcJ=LO..HI...]@pcK``: a direction fitted by least squares
  on a group of points (the EIS VII write-up's "arm" directions). The group is
  every point whose scores lie in all the given closed intervals. Each
  coordinate ``a_u`` of the group's activations is regressed, with an
  intercept, on the group's score ``t`` along ``pcK``: ``a_u ≈ c_u + t v_u``.
  ``v`` is how the whole activation vector moves per unit of ``t`` along the
  group. Two identities follow (both tested): ``v · u_K = 1`` exactly, and
  ``v · u_I`` is the least-squares slope of score I on score K within the
  group, so the in-plane part of ``v`` is the line one would fit to the arm
  in the plot, and the rest of ``v`` says how every other coordinate moves
  along it. Its arrow is that fitted line over the group's range of ``t``.
* ``template:REF`` / ``template:1-REF``: an input's activation (REF is
  ``train:N``, ``test:N`` or ``unit:LAYER:N``, as ``analysis.templates``
  resolves them; ``1-`` inverts the image, ``1 - t``). The vector is
  ``a(t) - mean_``; its arrow runs from the mean to the input's own point.

Projection onto the PCA plane of components ``(i, j)``: a vector ``v`` maps to
``(v · u_i, v · u_j)`` and a point ``p`` to ``((p - mean_) · u_i, (p - mean_) · u_j)``,
the same linear map that makes the scores, so arrows and points share the
scatter's axes. Directions without a natural length (PCs, logit difference)
are drawn from the origin (the mean activation) with unit norm times a common
``scale``; the fraction of a unit vector that lies in the plane, ``in_plane``
(1 when it lies entirely in it), is reported beside it.

Loadings: unit ``u``'s loading on direction ``v`` is ``std_u * v_u / ||v||``,
where ``std_u`` is the coordinate's standard deviation over the split: how far
a typical (one standard deviation) change of that unit moves a point along the
unit direction. Multiplying by ``||v||`` gives it in the direction's own units
(for the exact logit-difference direction: the logit difference a typical
change of the unit causes).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from ..cache import cached, is_cached
from ..data import Split, load_mnist
from ..errors import MechMNISTicError
from ..hooks import eval_mode, forward_to, hooks, to_pixels
from ..models.architectures import MNISTNet
from .activations import layer_activations
from .templates import Template, TemplateError, resolve_template

#: Largest activation space PCA accepts (a float64 covariance of 128 MiB).
MAX_DIM = 4096
#: Components fitted unless asked otherwise.
DEFAULT_COMPONENTS = 10
_BATCH = 2048

Progress = Callable[[float], None] | None


class GeometryError(MechMNISTicError, ValueError):
    """A layer, component, direction spec or group that cannot be used."""


# ----------------------------------------------------------------------------- spaces
@dataclass(frozen=True)
class ActivationSpace:
    """Where a layer's activation vector is read, and how its coordinates are named.

    ``hook``: the hook holding it (``fc1.post``, ``fc2.pre`` for logits, ``conv1.pool``).
    ``shape``: ``(units,)`` or ``(C, H, W)`` for a conv layer's pooled maps.
    """

    layer: str
    hook: str
    kind: Literal["fc", "output", "conv"]
    shape: tuple[int, ...]

    @property
    def dim(self) -> int:
        return int(np.prod(self.shape))

    def units(self) -> np.ndarray:
        """The unit (neuron, class or conv channel) of each coordinate, int64 ``[D]``."""
        if self.kind == "conv":
            return np.repeat(np.arange(self.shape[0]), self.shape[1] * self.shape[2])
        return np.arange(self.dim)

    def coordinate_names(self) -> list[str]:
        """``"17"`` for unit 17, ``"class 1"`` for a logit, ``"c3 (2,4)"`` for channel 3 at pooled (2, 4)."""
        if self.kind == "output":
            return [f"class {i}" for i in range(self.dim)]
        if self.kind == "fc":
            return [str(i) for i in range(self.dim)]
        channels, height, width = self.shape
        return [f"c{c} ({r},{q})" for c in range(channels) for r in range(height) for q in range(width)]

    def describe(self) -> str:
        if self.kind == "fc":
            return f"{self.layer}: {self.dim} units after the activation"
        if self.kind == "output":
            return f"{self.layer}: the {self.dim} logits"
        c, h, w = self.shape
        return f"{self.layer}: output maps, {c} channels x {h}x{w} positions = {self.dim} coordinates"


def activation_space(model: MNISTNet, layer: str) -> ActivationSpace:
    """The activation space of ``layer`` (see the module docstring): what the next layer reads."""
    unit_layer = model.layout.check(layer)
    hook = unit_layer.output_hook
    if unit_layer.is_conv:
        space = ActivationSpace(layer, hook, "conv", unit_layer.output_shape)
    else:
        space = ActivationSpace(layer, hook, "output" if unit_layer.is_final else "fc", (unit_layer.n_units,))
    if space.dim > MAX_DIM:
        raise GeometryError(f"{space.describe()}: more than {MAX_DIM} coordinates, too many for an exact PCA here")
    return space


def space_activations(model: MNISTNet, space: ActivationSpace, images: np.ndarray | torch.Tensor) -> np.ndarray:
    """``a(x)`` for ``images`` (uint8 ``[N,28,28]`` or floats in [0, 1]): float32 ``[N, D]``."""
    pixels = to_pixels(images)
    with torch.inference_mode(), eval_mode(model):
        parts = [forward_to(model, pixels[s : s + _BATCH], space.hook).flatten(1)
                 for s in range(0, len(pixels), _BATCH)]
    return torch.cat(parts).numpy() if parts else np.zeros((0, space.dim), np.float32)


def iter_space(
    model: MNISTNet, space: ActivationSpace, split: Split = "train", progress: Progress = None
) -> Iterator[np.ndarray]:
    """The split's activations in order, as float32 batches ``[B, D]``.

    FC layers read the cached ``layer_activations``; conv layers run the model
    batch by batch, so ``[N, D]`` is never held at once.
    """
    if space.kind != "conv":
        values = layer_activations(model, space.layer, split).values
        for start in range(0, len(values), _BATCH):
            yield values[start : start + _BATCH]
        return
    images = load_mnist(split).images
    for start in range(0, len(images), _BATCH):
        yield space_activations(model, space, images[start : start + _BATCH])
        if progress:
            progress(min(1.0, (start + _BATCH) / len(images)))


# -------------------------------------------------------------------------------- PCA
class ActivationPCA:
    """Exact PCA from the covariance, fitted on one array or a stream of batches.

    Follows scikit-learn's contract: parameters are stored by ``__init__``,
    ``fit`` returns ``self``, learned attributes end in ``_``. There is nothing
    random in it, so no ``random_state``.

    Attributes after fitting: ``mean_`` ``[D]``, ``components_`` ``[K, D]`` (unit
    rows), ``explained_variance_`` ``[K]`` (eigenvalues, ``ddof=1``),
    ``explained_variance_ratio_`` ``[K]``, ``total_variance_`` (sum over all
    ``D`` eigenvalues), ``feature_std_`` ``[D]`` (each coordinate's standard
    deviation, ``ddof=1``), ``n_components_``, ``n_samples_``, ``n_features_in_``.
    """

    def __init__(self, n_components: int | None = DEFAULT_COMPONENTS) -> None:
        self.n_components = n_components

    def fit(self, X: np.ndarray, y: None = None) -> ActivationPCA:
        """Fit on ``X`` float ``[N, D]``."""
        return self.fit_batches([np.asarray(X)])

    def fit_batches(self, batches: Iterable[np.ndarray]) -> ActivationPCA:
        """Fit on the rows of every batch (float ``[B, D]``) as if concatenated."""
        shift = total = gram = None
        n = 0
        for batch in batches:
            batch = np.asarray(batch, dtype=np.float64)
            if shift is None:
                # Centring on the first batch's mean keeps the float64 sums well conditioned.
                shift = batch.mean(axis=0)
                total = np.zeros_like(shift)
                gram = np.zeros((len(shift), len(shift)))
            centred = batch - shift
            total += centred.sum(axis=0)
            gram += centred.T @ centred
            n += len(batch)
        if shift is None or n < 2:
            raise GeometryError("PCA needs at least two samples")
        dim = len(shift)
        k = dim if self.n_components is None else int(self.n_components)
        if not 1 <= k <= min(n, dim):
            raise GeometryError(f"n_components must be between 1 and {min(n, dim)}, got {self.n_components}")
        covariance = (gram - np.outer(total, total) / n) / (n - 1)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        order = np.argsort(eigenvalues)[::-1]
        eigenvalues = np.clip(eigenvalues[order], 0.0, None)
        components = eigenvectors[:, order[:k]].T
        biggest = np.argmax(np.abs(components), axis=1)
        components *= np.sign(components[np.arange(k), biggest])[:, None]
        self.mean_ = shift + total / n
        self.components_ = components
        self.explained_variance_ = eigenvalues[:k]
        self.total_variance_ = float(eigenvalues.sum())
        self.explained_variance_ratio_ = self.explained_variance_ / (self.total_variance_ or 1.0)
        self.feature_std_ = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
        self.n_components_, self.n_samples_, self.n_features_in_ = k, n, dim
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Scores ``[N, K]`` of ``X`` ``[N, D]``."""
        return (np.asarray(X, dtype=np.float64) - self.mean_) @ self.components_.T

    def state(self) -> dict[str, np.ndarray]:
        """The fitted attributes as plain arrays (for the on-disk cache)."""
        return {
            "mean": self.mean_, "components": self.components_, "explained_variance": self.explained_variance_,
            "total_variance": np.array(self.total_variance_), "feature_std": self.feature_std_,
            "n_samples": np.array(self.n_samples_),
        }

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> ActivationPCA:
        """Rebuild a fitted PCA from ``state()``'s arrays."""
        pca = cls(n_components=len(state["explained_variance"]))
        pca.mean_, pca.components_ = state["mean"], state["components"]
        pca.explained_variance_ = state["explained_variance"]
        pca.total_variance_ = float(state["total_variance"])
        pca.explained_variance_ratio_ = pca.explained_variance_ / (pca.total_variance_ or 1.0)
        pca.feature_std_ = state["feature_std"]
        pca.n_components_ = len(pca.explained_variance_)
        pca.n_samples_ = int(state["n_samples"])
        pca.n_features_in_ = len(pca.mean_)
        return pca


@dataclass(frozen=True)
class LayerPCA:
    """A layer's PCA over a whole split: the fit and every point's scores.

    ``scores``: float32 ``[N, K]``, row ``i`` is image ``i`` of ``split``.
    """

    space: ActivationSpace
    pca: ActivationPCA
    scores: np.ndarray
    split: Split

    def axis_title(self, component: int) -> str:
        """``"PC1 (60.0%)"`` for 0-based ``component``."""
        return f"PC{component + 1} ({100 * self.pca.explained_variance_ratio_[component]:.1f}%)"


def _pca_params(layer: str, split: Split, k: int) -> dict:
    return {"layer": layer, "split": split, "n_components": k}


def _components(space: ActivationSpace, n_components: int | None) -> int:
    k = space.dim if n_components is None else int(n_components)
    if k < 1:
        raise GeometryError(f"n_components must be at least 1, got {n_components}")
    return min(k, space.dim)


def layer_pca_is_cached(
    model: MNISTNet, layer: str, n_components: int | None = DEFAULT_COMPONENTS, split: Split = "train"
) -> bool:
    """Whether ``layer_pca`` will read from disk (so a page can warn that the first time takes a while)."""
    space = activation_space(model, layer)
    return is_cached(model, "layer_pca", _pca_params(layer, split, _components(space, n_components)))


def layer_pca(
    model: MNISTNet,
    layer: str,
    n_components: int | None = DEFAULT_COMPONENTS,
    split: Split = "train",
    progress: Progress = None,
) -> LayerPCA:
    """PCA of ``layer``'s activations over every image of ``split``, cached on disk.

    ``n_components`` is capped at the space's dimension (a 2-class output layer
    has two); ``None`` keeps all.
    """
    space = activation_space(model, layer)
    k = _components(space, n_components)

    def compute() -> dict[str, np.ndarray]:
        fit_progress = (lambda f: progress(0.7 * f)) if progress and space.kind == "conv" else None
        pca = ActivationPCA(k).fit_batches(iter_space(model, space, split, fit_progress))
        score_progress = (lambda f: progress(0.7 + 0.3 * f)) if progress and space.kind == "conv" else None
        scores = np.concatenate([pca.transform(b) for b in iter_space(model, space, split, score_progress)])
        return {**pca.state(), "scores": scores.astype(np.float32)}

    arrays = cached(model, "layer_pca", _pca_params(layer, split, k), compute)
    return LayerPCA(space, ActivationPCA.from_state(arrays), arrays["scores"], split)


# ------------------------------------------------------------------------- directions
@dataclass(frozen=True)
class Direction:
    """A vector in a layer's activation space, with what is needed to draw it.

    ``vector``: float64 ``[D]``. ``anchor`` (``[D]``) and ``span`` give the
    segment ``anchor + t * vector`` for ``t`` in ``span`` that the arrow draws
    (a template: mean to its activation; a fit: the fitted line over the
    group); without an anchor the arrow starts at the mean, unit-normalised.
    ``offset``: for an exact logit-difference direction, ``b_A - b_B``.
    """

    spec: str
    name: str
    kind: Literal["pc", "logit", "fit", "template", "latent"]
    vector: np.ndarray
    anchor: np.ndarray | None = None
    span: tuple[float, float] = (0.0, 1.0)
    offset: float | None = None
    exact: bool = True
    note: str = ""
    group_size: int | None = None

    @property
    def norm(self) -> float:
        return float(np.linalg.norm(self.vector))

    @property
    def unit_vector(self) -> np.ndarray:
        norm = self.norm
        return self.vector / norm if norm > 0 else self.vector


def principal_direction(fit: LayerPCA, component: int) -> Direction:
    """Principal component ``component`` (0-based) as a direction."""
    if not 0 <= component < fit.pca.n_components_:
        raise GeometryError(f"pc{component + 1}: only PC1..PC{fit.pca.n_components_} were fitted")
    return Direction(f"pc{component + 1}", f"PC{component + 1}", "pc", fit.pca.components_[component].copy())


def feeds_output(model: MNISTNet, layer: str) -> bool:
    """Whether the output layer reads ``layer``'s activation vector directly (or ``layer`` is it)."""
    layout = model.layout
    return layout.check(layer).is_final or layout.next(layer).is_final


def logit_difference_direction(
    model: MNISTNet, layer: str, positive: int, negative: int, split: Split = "train", progress: Progress = None
) -> Direction:
    """The direction of ``logit[positive] - logit[negative]`` in ``layer``'s space (module docstring)."""
    n_classes = model.n_classes
    for cls in (positive, negative):
        if not 0 <= cls < n_classes:
            raise GeometryError(f"class {cls} does not exist; {model.layout.final.name} has classes 0..{n_classes - 1}")
    if positive == negative:
        raise GeometryError("a logit difference needs two different classes")
    space = activation_space(model, layer)
    spec, name = f"logit:{positive}-{negative}", f"logit {positive} − logit {negative}"
    output = model.layer(model.layout.final.name)
    if space.kind == "output":
        vector = np.zeros(n_classes)
        vector[positive], vector[negative] = 1.0, -1.0
        return Direction(spec, name, "logit", vector, offset=0.0, note="exact: the logit difference itself")
    if feeds_output(model, layer):
        weight, bias = output.weight.detach().double(), output.bias.detach().double()
        vector = (weight[positive] - weight[negative]).numpy()
        offset = float(bias[positive] - bias[negative])
        return Direction(spec, name, "logit", vector, offset=offset,
                         note=f"exact: logit {positive} − logit {negative} = v · a {'+' if offset >= 0 else '−'} "
                         f"{abs(offset):.4g}")

    def compute() -> dict[str, np.ndarray]:
        return {"gradient": _mean_logit_gradient(model, space, positive, negative, split, progress)}

    params = {"layer": layer, "positive": positive, "negative": negative, "split": split}
    vector = cached(model, "logit_direction", params, compute)["gradient"]
    return Direction(spec, name, "logit", vector, exact=False,
                     note=f"mean gradient over the {split} set: a linearisation, not exact this far from the output")


def _mean_logit_gradient(
    model: MNISTNet, space: ActivationSpace, positive: int, negative: int, split: Split, progress: Progress
) -> np.ndarray:
    images = load_mnist(split).images
    total = torch.zeros(space.dim, dtype=torch.float64)
    leaves: list[torch.Tensor] = []

    def as_leaf(out: torch.Tensor) -> torch.Tensor:
        leaves.append(out.detach().requires_grad_(True))
        return leaves[-1]

    with torch.enable_grad(), eval_mode(model), hooks(model, {space.hook: as_leaf}):
        for start in range(0, len(images), _BATCH):
            leaves.clear()
            logits = model(to_pixels(images[start : start + _BATCH]))
            difference = (logits[:, positive] - logits[:, negative]).sum()
            (grad,) = torch.autograd.grad(difference, leaves[0])
            total += grad.flatten(1).double().sum(0)
            if progress:
                progress(min(1.0, (start + _BATCH) / len(images)))
    return (total / len(images)).numpy()


def fit_regression(activations: np.ndarray, along: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least squares of each column of ``activations`` ``[n, D]`` on ``along`` ``[n]``, with intercept.

    Returns ``(slope [D], intercept [D])`` with ``activations ≈ intercept + along[:, None] * slope``.
    """
    return _regression_from_sums(_regression_sums([(np.asarray(activations), np.asarray(along))]))


def _regression_sums(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray | float]:
    sums: dict = {"n": 0, "t": 0.0, "tt": 0.0, "a": 0.0, "ta": 0.0}
    for acts, t in pairs:
        acts, t = np.asarray(acts, np.float64), np.asarray(t, np.float64)
        sums["n"] += len(t)
        sums["t"] += t.sum()
        sums["tt"] += t @ t
        sums["a"] = sums["a"] + acts.sum(axis=0)
        sums["ta"] = sums["ta"] + t @ acts
    return sums


def _regression_from_sums(sums: dict) -> tuple[np.ndarray, np.ndarray]:
    n = sums["n"]
    if n < 2:
        raise GeometryError(f"a regression needs at least two points; the group has {n}")
    t_mean = sums["t"] / n
    a_mean = sums["a"] / n
    t_var = sums["tt"] - n * t_mean**2
    if not t_var > 1e-12 * max(1.0, sums["tt"]):
        raise GeometryError("every point of the group has the same score along the fitted component")
    slope = (sums["ta"] - n * t_mean * a_mean) / t_var
    return slope, a_mean - t_mean * slope


@dataclass(frozen=True)
class Box:
    """Closed intervals on some components' scores: ``{component (0-based): (low, high)}``."""

    limits: dict[int, tuple[float, float]] = field(default_factory=dict)

    def mask(self, scores: np.ndarray) -> np.ndarray:
        """Which rows of ``scores`` ``[N, K]`` lie in every interval (bool ``[N]``)."""
        inside = np.ones(len(scores), bool)
        for component, (low, high) in self.limits.items():
            inside &= (scores[:, component] >= low) & (scores[:, component] <= high)
        return inside

    def text(self) -> str:
        return ",".join(f"pc{c + 1}={_num(lo)}..{_num(hi)}" for c, (lo, hi) in self.limits.items())


def _num(value: float) -> str:
    return f"{value:.6g}"


def regression_direction(
    model: MNISTNet, fit: LayerPCA, box: Box, along: int, name: str | None = None, progress: Progress = None
) -> Direction:
    """The least-squares direction of the points in ``box``, along component ``along`` (0-based).

    See the module docstring for exactly what is regressed on what.
    """
    for component in (*box.limits, along):
        if not 0 <= component < fit.pca.n_components_:
            raise GeometryError(f"pc{component + 1}: only PC1..PC{fit.pca.n_components_} were fitted")
    if not box.limits:
        raise GeometryError("a fitted direction needs at least one interval, e.g. pc1=-5..0")
    for low, high in box.limits.values():
        if not (np.isfinite(low) and np.isfinite(high) and low <= high):
            raise GeometryError(f"interval {_num(low)}..{_num(high)} is empty or not finite")
    mask = box.mask(fit.scores)
    size = int(mask.sum())
    if size < 2:
        raise GeometryError(f"only {size} point(s) of the {fit.split} set lie in {box.text()}; select more")
    t_all = fit.scores[:, along].astype(np.float64)
    spec = f"fit:{box.text()}@pc{along + 1}"

    def compute() -> dict[str, np.ndarray]:
        def pairs() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            start = 0
            for batch in iter_space(model, fit.space, fit.split, progress):
                stop = start + len(batch)
                keep = mask[start:stop]
                yield batch[keep], t_all[start:stop][keep]
                start = stop

        slope, intercept = _regression_from_sums(_regression_sums(pairs()))
        return {"slope": slope, "intercept": intercept}

    digest = hashlib.sha256(mask.tobytes() + t_all.tobytes()).hexdigest()[:16]
    arrays = cached(model, "fit_direction", {"layer": fit.space.layer, "split": fit.split, "group": digest}, compute)
    t = t_all[mask]
    anchor = arrays["intercept"]  # the fitted line at t = 0; span covers the group
    return Direction(spec, name or f"fit {box.text()} along PC{along + 1}", "fit", arrays["slope"], anchor=anchor,
                     span=(float(t.min()), float(t.max())), exact=False, group_size=size,
                     note=f"least squares over {size:,} points")


def template_direction(model: MNISTNet, fit: LayerPCA, template: Template) -> Direction:
    """The activation of a template image (``analysis.templates.resolve_template``), as a displacement from the mean.

    Its arrow runs from the mean activation to the template's own point.
    """
    pixels = np.asarray(template.image, dtype=np.float32)[None]
    point = space_activations(model, fit.space, pixels)[0].astype(np.float64)
    spec = f"template:{'1-' if template.inverted else ''}{template.source}"
    return Direction(spec, template.label, "template", point - fit.pca.mean_, anchor=fit.pca.mean_,
                     span=(0.0, 1.0), note="arrow ends at this input's own point")


def _template_from_spec(model: MNISTNet, ref: str) -> Template:
    """``train:N``, ``test:N`` or ``unit:LAYER:N``, with ``1-`` for the inverse (no files: specs travel in URLs)."""
    inverted = ref.startswith("1-")
    ref = ref[2:] if inverted else ref
    if not ref.startswith(("train:", "test:", "unit:")):
        raise GeometryError(f"template {ref[:80]!r}: use train:N, test:N or unit:LAYER:N (1- in front inverts it)")
    try:
        return resolve_template(ref, model, invert=inverted)
    except TemplateError as exc:
        raise GeometryError(str(exc)) from None


# ----------------------------------------------------------------------- direction specs
_PC = re.compile(r"^pc(\d+)$")
_LOGIT = re.compile(r"^logit:(\d+)-(\d+)$")
_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_INTERVAL = re.compile(rf"^pc(\d+)=({_FLOAT})\.\.({_FLOAT})$")
SPEC_HELP = (
    "pcK (a principal component), logit:A-B (logit difference), template:train:N / template:1-train:N / "
    "template:unit:LAYER:N "
    "(an input's activation), fit:pcI=LO..HI[,pcJ=LO..HI]@pcK (least-squares direction of a group), "
    "latent:DICTIONARY:J (what a dictionary latent reads)"
)


def parse_box(text: str) -> Box:
    """``"pc1=-5..0,pc2=1..9"`` -> ``Box`` (components 0-based inside)."""
    limits = {}
    for part in text.split(","):
        match = _INTERVAL.match(part.strip())
        if not match or int(match.group(1)) < 1:
            raise GeometryError(f"bad interval {part.strip()!r}: write pcK=LOW..HIGH, e.g. pc1=-5..0.5")
        limits[int(match.group(1)) - 1] = (float(match.group(2)), float(match.group(3)))
    return Box(limits)


def build_direction(model: MNISTNet, fit: LayerPCA, spec: str, progress: Progress = None) -> Direction:
    """The direction a spec names (``SPEC_HELP``) in ``fit``'s layer."""
    text = str(spec).strip().replace(" ", "")
    if match := _PC.match(text.lower()):
        return principal_direction(fit, int(match.group(1)) - 1)
    if match := _LOGIT.match(text.lower()):
        return logit_difference_direction(model, fit.space.layer, int(match.group(1)), int(match.group(2)),
                                          fit.split, progress)
    if text.startswith("template:"):
        return template_direction(model, fit, _template_from_spec(model, text[len("template:"):]))
    if text.startswith("latent:"):
        return latent_direction(model, fit.space, text)
    if text.startswith("fit:") and text.count("@") == 1:
        box_text, along = text[len("fit:"):].split("@")
        along_match = _PC.match(along.lower())
        if not along_match or int(along_match.group(1)) < 1:
            raise GeometryError(f"fit direction: {along!r} after '@' must name a component, e.g. @pc2")
        return regression_direction(model, fit, parse_box(box_text), int(along_match.group(1)) - 1,
                                    progress=progress)
    raise GeometryError(f"unknown direction {str(spec)[:80]!r}; use {SPEC_HELP}")


def latent_direction(model: MNISTNet, space: ActivationSpace, spec: str) -> Direction:
    """``latent:DICTIONARY:J``: what latent ``J`` of one of the layer's dictionaries reads, its encoder column.

    Its pre-activation is exactly ``v . a + offset`` with ``v = W_enc[:, J]`` and ``offset = b_enc[J] -
    b_dec . v``, so feature visualisation of the direction maximises the latent's pre-activation.
    """
    from ..dictionaries.dictionary import DictionaryError
    from .latents import resolve_basis

    _, dictionary_id, latent = (spec.split(":", 2) + ["", ""])[:3]
    if not latent.isdigit():
        raise GeometryError(f"a latent direction is latent:DICTIONARY:J, got {spec[:80]!r}")
    if space.kind != "fc":
        raise GeometryError(f"latent directions are read in a fully connected layer's space; {space.layer}'s is "
                            f"{space.kind}")
    try:
        dictionary = resolve_basis(model, space.layer, dictionary_id)
    except DictionaryError as exc:
        raise GeometryError(str(exc)) from None
    j = int(latent)
    if not 0 <= j < dictionary.d_sae:
        raise GeometryError(f"latent {j} is out of range: {dictionary.id} has latents 0..{dictionary.d_sae - 1}")
    vector = dictionary.W_enc[:, j].double().numpy()
    offset = float(dictionary.b_enc[j]) - float(dictionary.b_dec.double().numpy() @ vector)
    return Direction(f"latent:{dictionary.id}:{j}", f"latent {j} of {dictionary.id}", "latent", vector,
                     offset=offset, note=f"exact: the latent's encoder pre-activation = v · a {offset:+.4g}")


def build_directions(model: MNISTNet, fit: LayerPCA, specs: Sequence[str]) -> list[Direction]:
    return [build_direction(model, fit, spec) for spec in specs]


# ---------------------------------------------------------------- projections, loadings
@dataclass(frozen=True)
class Arrow:
    """A direction drawn in the PCA plane: from ``start`` to ``end`` (scatter coordinates)."""

    name: str
    kind: str
    start: tuple[float, float]
    end: tuple[float, float]
    in_plane: float


def project_vector(fit: LayerPCA, vector: np.ndarray, plane: tuple[int, int]) -> np.ndarray:
    """``(v · u_i, v · u_j)`` for a vector ``v`` ``[D]`` (a displacement, no mean removed)."""
    return fit.pca.components_[list(plane)] @ np.asarray(vector, np.float64)


def project_point(fit: LayerPCA, point: np.ndarray, plane: tuple[int, int]) -> np.ndarray:
    """The scatter coordinates of an activation vector ``point`` ``[D]``."""
    return project_vector(fit, np.asarray(point, np.float64) - fit.pca.mean_, plane)


def in_plane_fraction(fit: LayerPCA, direction: Direction, plane: tuple[int, int]) -> float:
    """Norm of the unit direction's projection: 1 when it lies entirely in the plane."""
    return float(np.linalg.norm(project_vector(fit, direction.unit_vector, plane)))


def plane_arrow(fit: LayerPCA, direction: Direction, plane: tuple[int, int], scale: float) -> Arrow:
    """How ``direction`` is drawn on the scatter of ``plane`` (module docstring)."""
    if direction.anchor is None:
        start = np.zeros(2)
        end = scale * project_vector(fit, direction.unit_vector, plane)
    else:
        t0, t1 = direction.span
        start = project_point(fit, direction.anchor + t0 * direction.vector, plane)
        end = project_point(fit, direction.anchor + t1 * direction.vector, plane)
    return Arrow(direction.name, direction.kind, (float(start[0]), float(start[1])), (float(end[0]), float(end[1])),
                 in_plane_fraction(fit, direction, plane))


def arrow_scale(fit: LayerPCA, plane: tuple[int, int]) -> float:
    """A common length for unit arrows: twice the larger standard deviation of the two plotted scores."""
    return 2.0 * float(np.sqrt(max(fit.pca.explained_variance_[plane[0]], fit.pca.explained_variance_[plane[1]])))


@dataclass(frozen=True)
class Loadings:
    """Each coordinate's std-weighted loading on each direction: ``values`` float64 ``[D, M]``."""

    values: np.ndarray
    directions: tuple[str, ...]
    coordinates: tuple[str, ...]
    units: np.ndarray

    def order(self, by: int, absolute: bool = False) -> np.ndarray:
        """Coordinate indices sorted by direction ``by``'s loading, largest first."""
        column = self.values[:, by]
        return np.argsort(-(np.abs(column) if absolute else column), kind="stable")


def weighted_loadings(fit: LayerPCA, directions: Sequence[Direction]) -> Loadings:
    """``std_u * v_u / ||v||`` for every coordinate ``u`` and direction ``v`` (module docstring)."""
    std = fit.pca.feature_std_
    values = np.stack([std * d.unit_vector for d in directions], axis=1) if directions else np.zeros((len(std), 0))
    return Loadings(values, tuple(d.name for d in directions), tuple(fit.space.coordinate_names()),
                    fit.space.units())


#: Names of the regions ``band_regions`` numbers 0, 1, 2.
REGION_NAMES = ("below the band", "inside the band", "above the band")


def band_regions(scores: np.ndarray, low: float, high: float) -> np.ndarray:
    """0 where ``score <= low``, 1 where ``low < score < high`` (``labels.band_labels``' inside), 2 above; int8."""
    if not low < high:
        raise GeometryError(f"a band needs low < high, got {_num(low)}..{_num(high)}")
    return np.where(scores <= low, 0, np.where(scores < high, 1, 2)).astype(np.int8)
