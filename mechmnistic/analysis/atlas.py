"""The neuron atlas: every unit of a layer with its top examples and feature clusters, computed once.

For each unit of a hidden layer the atlas holds the ``top_k`` training images
that drive it hardest and the partition of their Hadamard embeddings found by
``FeatureClusters``. It is computed once per model (weights hash), layer and
parameters, stored through ``mechmnistic.cache`` (atomic, re-computed when
missing or unreadable), and then read lazily: the Neuron Explorer switches
between units without computing anything heavy. The embeddings of every
unit's top examples are grounded in a few batched calls
(``hadamard_embeddings_pairs``: each image runs forwards once for all the
units it tops), and only the clustering runs unit by unit.

What is clustered. A fully connected unit: its embeddings (28x28 maps). A
conv channel (taken at its maximum on each image, as in the dataset
activations): the embeddings cut to the receptive field of the position where
it fired (``conv.receptive_field_crops``), so examples are compared by the
pattern that drove the channel, wherever on the digit it sat; the map outside
that box is zero anyway. ``position_clusters`` does the same, on demand, for a
channel at one fixed position.

``unit_clusters`` turns one unit's atlas entry into everything a view shows:
the embeddings of its top examples, and per cluster its size, class
histogram, central example and mean embedding, with the intra- and
inter-cluster cosine similarities.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..cache import cached, is_cached
from ..data import N_DIGITS, Split, load_mnist
from ..dictionaries.dictionary import Dictionary
from ..models.architectures import MNISTNet
from ..models.config import Activation
from ..threads import one_thread
from .activations import layer_activations
from .cluster_stats import (
    MAX_CLUSTERS,
    ClusterParameterError,
    ClusterStatistics,
    check_cluster_parameters,
    class_histograms,
    cluster_statistics,
)
from .conv import position_activations, receptive_field, receptive_field_crops
from .embeddings import Embeddings, hadamard_embeddings_pairs
from .latents import latent_activations, latent_effective_weights
from .unit_behaviour import TopExamples, activation_values, top_indices
from .units import UnitError, check_positions, check_units

#: ``progress(done, total, message)``: called as the atlas is computed (``done`` out of ``total`` steps).
Progress = Callable[[int, int, str], None]

DEFAULT_TOP_K = 500
MAX_TOP_K = 2000  # clustering is quadratic in the number of examples
_ANALYSIS = "neuron_atlas"
#: Floats of embeddings grounded at once while building an atlas (16 Mi floats, 64 MiB).
_CHUNK_FLOATS = 2**22


@dataclass(frozen=True)
class AtlasParameters:
    """What an atlas depends on besides the weights (its cache key)."""

    top_k: int = DEFAULT_TOP_K
    n_clusters: int | None = None
    explained: float = 0.3
    split: Split = "train"

    def __post_init__(self) -> None:
        if not (isinstance(self.top_k, int | np.integer) and not isinstance(self.top_k, bool)
                and 1 <= self.top_k <= MAX_TOP_K):
            raise ClusterParameterError(f"top-k must be a whole number from 1 to {MAX_TOP_K}, got {self.top_k!r}")
        check_cluster_parameters(self.n_clusters, self.explained, MAX_CLUSTERS)
        if self.n_clusters is not None and self.n_clusters > MAX_CLUSTERS:
            raise ClusterParameterError(
                f"the number of clusters must be from 1 to {MAX_CLUSTERS}, got {self.n_clusters}"
            )
        if self.split not in ("train", "test"):
            raise ClusterParameterError(f"split must be 'train' or 'test', got {self.split!r}")

    def key(self, layer: str) -> dict:
        return {"layer": layer, "top_k": int(self.top_k), "n_clusters": self.n_clusters,
                "explained": float(self.explained), "split": self.split, "max_clusters": MAX_CLUSTERS}

    def estimator(self):
        """A ``FeatureClusters`` with these parameters (imported here: see ``compute_atlas``)."""
        from .clusters import FeatureClusters

        return FeatureClusters(n_clusters=self.n_clusters, explained=self.explained, max_clusters=MAX_CLUSTERS)


@dataclass(frozen=True)
class NeuronAtlas:
    """All ``U`` units of one layer, ``K = top_k`` examples each.

    ``top_indices`` int64 ``[U, K]`` (into the split), ``top_pre`` float32
    ``[U, K]`` (highest first; a conv channel's maximum pre-activation);
    ``cluster_labels`` int64 ``[U, K]`` (0 the largest cluster); per unit:
    ``n_clusters`` int64 ``[U]``, ``explained``, ``mean_intra`` and
    ``mean_inter`` float ``[U]`` (see ``FeatureClusters``). Conv layers only:
    ``top_positions`` int64 ``[U, K, 2]``, where in the map each example's
    maximum is (``None`` for FC layers). ``activation``: the layer's, which
    turns ``top_pre`` into the activations ``top_examples`` shows.
    """

    layer: str
    params: AtlasParameters
    top_indices: np.ndarray
    top_pre: np.ndarray
    cluster_labels: np.ndarray
    n_clusters: np.ndarray
    explained: np.ndarray
    mean_intra: np.ndarray
    mean_inter: np.ndarray
    top_positions: np.ndarray | None = None
    activation: Activation | None = None

    @property
    def n_units(self) -> int:
        return self.top_indices.shape[0]

    def top_examples(self, unit: int) -> TopExamples:
        """Unit ``unit``'s top examples (labels from the split)."""
        indices, pre = self.top_indices[unit], self.top_pre[unit]
        return TopExamples(indices, pre, activation_values(self.activation, pre),
                           load_mnist(self.params.split).labels[indices])


def atlas_is_cached(model: MNISTNet, layer: str, params: AtlasParameters | None = None) -> bool:
    """Whether ``neuron_atlas`` will read from disk (so a page can announce a first-time computation)."""
    return is_cached(model, _ANALYSIS, (params or AtlasParameters()).key(layer))


@dataclass(frozen=True)
class _Grounded:
    """Embeddings of ``P`` (image, unit) pairs and the vectors clustered: ``found`` (maps
    ``[P, 28, 28]``, biases, positions); conv only: ``boxes`` ``[P, 4]``; ``vectors`` ``[P, D]``
    (the maps, or their receptive-field crops for conv units)."""

    found: Embeddings
    boxes: np.ndarray | None
    vectors: np.ndarray


def _ground(model: MNISTNet, layer: str, images: np.ndarray, units: np.ndarray, image_index: np.ndarray,
            positions: np.ndarray | None = None) -> _Grounded:
    found = hadamard_embeddings_pairs(model, layer, images, units, image_index, positions)
    if found.positions is None:
        return _Grounded(found, None, found.maps.reshape(len(units), -1))
    boxes = receptive_field(model, layer, found.positions)
    return _Grounded(found, boxes, receptive_field_crops(found.maps, boxes).reshape(len(units), -1))


def compute_atlas(
    model: MNISTNet, layer: str, params: AtlasParameters, progress: Progress | None = None
) -> dict[str, np.ndarray]:
    """The atlas arrays, uncached (``neuron_atlas`` stores them)."""
    report = progress or (lambda done, total, message: None)
    count = model.layout.check_hidden(layer).n_units
    total = count + 1
    report(0, total, f"activations of {layer} over the {params.split} set")
    acts = layer_activations(model, layer, params.split)
    images = load_mnist(params.split).images
    if params.top_k > len(images):
        raise UnitError(f"top-k {params.top_k} exceeds the {len(images)} images of the {params.split} set")
    indices = top_indices(acts.pre, params.top_k)  # conv: by each channel's maximum
    k = params.top_k
    labels = np.empty(indices.shape, dtype=np.int64)
    top_pre = np.take_along_axis(acts.pre.T, indices, axis=1)
    positions = np.empty((*indices.shape, 2), dtype=np.int64) if model.layout[layer].is_conv else None
    per_unit = {name: np.empty(count) for name in ("explained", "mean_intra", "mean_inter")}
    n_clusters = np.empty(count, dtype=np.int64)
    units_per_chunk = max(1, _CHUNK_FLOATS // (k * 28 * 28))
    for first in range(0, count, units_per_chunk):
        chunk = np.arange(first, min(first + units_per_chunk, count))
        report(first, total, f"grounding the top examples of units {first}-{chunk[-1]} in pixel space")
        # Grounding is large products (all threads help: a wide model's conv layers cost most here);
        # clustering is a few small products per unit (one thread is faster: see mechmnistic.threads).
        grounded = _ground(model, layer, images, np.repeat(chunk, k), indices[chunk].ravel())
        if positions is not None:
            positions[chunk] = grounded.found.positions.reshape(len(chunk), k, 2)
        with one_thread():
            for j, unit in enumerate(chunk):
                report(int(unit) + 1, total, f"clustering unit {unit} of {count}")
                fit = params.estimator().fit(grounded.vectors[j * k : (j + 1) * k])
                labels[unit], n_clusters[unit] = fit.labels_, fit.n_clusters_
                per_unit["explained"][unit] = fit.explained_
                per_unit["mean_intra"][unit] = fit.mean_intra_similarity_
                per_unit["mean_inter"][unit] = fit.mean_inter_similarity_
    report(total, total, "done")
    arrays = {"top_indices": indices, "top_pre": top_pre, "cluster_labels": labels, "n_clusters": n_clusters,
              **per_unit}
    if positions is not None:
        arrays["top_positions"] = positions
    return arrays


def neuron_atlas(
    model: MNISTNet, layer: str, params: AtlasParameters | None = None, progress: Progress | None = None
) -> NeuronAtlas:
    """The atlas of ``layer`` for ``params`` (default ``AtlasParameters()``): from disk when computed
    before, else computed (reporting to ``progress``) and stored."""
    params = params or AtlasParameters()
    model.layout.check_hidden(layer)
    arrays = cached(model, _ANALYSIS, params.key(layer), lambda: compute_atlas(model, layer, params, progress))
    return NeuronAtlas(layer, params, **{name: arrays[name] for name in (
        "top_indices", "top_pre", "cluster_labels", "n_clusters", "explained", "mean_intra", "mean_inter")},
        top_positions=arrays.get("top_positions"), activation=model.layout[layer].activation)


@dataclass(frozen=True)
class UnitClusters:
    """One unit's feature clusters, ready to show.

    ``embeddings`` float32 ``[K, 28, 28]``: the Hadamard embeddings of the top
    examples (same order as the atlas); ``biases`` float32 ``[K]``: the unit's
    bias on each (input-dependent beyond the first layer), so
    ``embeddings.sum((1, 2)) + biases`` is the pre-activation; ``labels`` int64 ``[K]``: each
    example's cluster; ``stats``: sizes, central examples (rows of
    ``embeddings``), mean vectors ``[C, D]`` and similarities;
    ``class_counts`` int64 ``[C, 10]``: members per MNIST digit (the labels
    of the split, whatever classes the model itself tells apart). Conv units: ``positions``
    ``[K, 2]`` where each example was taken and ``boxes`` ``[K, 4]`` its
    receptive field; what was clustered is the embeddings cut to those boxes
    (``clustered_maps``, ``[K, h, w]``). FC units: ``None`` and the embeddings.
    ``explained``: the between-cluster share of the spread the clusters reach.
    """

    embeddings: np.ndarray
    biases: np.ndarray
    labels: np.ndarray
    stats: ClusterStatistics
    class_counts: np.ndarray
    explained: float
    positions: np.ndarray | None = None
    boxes: np.ndarray | None = None

    @property
    def clustered_maps(self) -> np.ndarray:
        """``[K, h, w]``: what the clusters group (the receptive-field crops for a conv unit)."""
        return self.embeddings if self.boxes is None else receptive_field_crops(self.embeddings, self.boxes)

    @property
    def mean_embeddings(self) -> np.ndarray:
        """float ``[C, h, w]``, shaped like ``clustered_maps``."""
        return self.stats.means.reshape(-1, *self.clustered_maps.shape[1:])

    @property
    def share_in_clusters_of_three_or_more(self) -> float:
        sizes = self.stats.sizes
        return float(sizes[sizes >= 3].sum() / sizes.sum())


def _unit_view(grounded: _Grounded, labels: np.ndarray, digit_labels: np.ndarray, explained: float) -> UnitClusters:
    stats = cluster_statistics(grounded.vectors, labels)
    counts = class_histograms(labels, digit_labels, len(stats.sizes), N_DIGITS)
    found = grounded.found
    return UnitClusters(found.maps, found.bias, labels, stats, counts, explained, found.positions, grounded.boxes)


def unit_clusters(model: MNISTNet, atlas: NeuronAtlas, unit: int) -> UnitClusters:
    """Unit ``unit``'s clusters from ``atlas`` with its embeddings recomputed (a few milliseconds)."""
    unit = int(check_units(model, atlas.layer, [unit])[0])
    data = load_mnist(atlas.params.split)
    indices = atlas.top_indices[unit]
    positions = None if atlas.top_positions is None else atlas.top_positions[unit]
    with one_thread():
        grounded = _ground(model, atlas.layer, data.images, np.full(len(indices), unit), indices, positions)
        return _unit_view(grounded, atlas.cluster_labels[unit], data.labels[indices], float(atlas.explained[unit]))


def position_clusters(
    model: MNISTNet, layer: str, channel: int, position: tuple[int, int], params: AtlasParameters | None = None
) -> tuple[TopExamples, UnitClusters]:
    """Top examples and feature clusters of a conv channel at one ``position`` ``(row, col)`` of its map.

    Not part of any atlas (a layer has hundreds of positions): computed on
    demand from ``position_activations`` (cached on disk) in well under a
    second. The examples are the ``top_k`` images of the split with the
    highest pre-activation at that cell; the clusters group their embeddings
    cut to the cell's receptive field.
    """
    params = params or AtlasParameters()
    model.layout.check_hidden(layer)
    channel = int(check_units(model, layer, [channel])[0])
    cell = check_positions(model, layer, np.asarray(position).reshape(1, 2), 1)[0]
    pre = position_activations(model, layer, channel, tuple(cell), params.split)
    data = load_mnist(params.split)
    indices = top_indices(pre[:, None], params.top_k)[0]
    with one_thread():
        grounded = _ground(model, layer, data.images, np.full(len(indices), channel), indices,
                           np.broadcast_to(cell, (len(indices), 2)))
        fit = params.estimator().fit(grounded.vectors)
        view = _unit_view(grounded, fit.labels_, data.labels[indices], fit.explained_)
    top = TopExamples(indices, pre[indices], activation_values(model.layout[layer].activation, pre[indices]),
                      data.labels[indices])
    return top, view


def latent_clusters(
    model: MNISTNet, dictionary: Dictionary, latent: int, params: AtlasParameters | None = None
) -> tuple[TopExamples, UnitClusters]:
    """Top examples and feature clusters of a dictionary's latent: a unit of the layer's other basis.

    The examples are the ``top_k`` images of the split with the highest latent
    activation (``latents.latent_activations``, cached on disk; for a conv
    layer's dictionary, at the position where the latent is largest on each
    image), grounded in pixels through ``latents.latent_effective_weights``
    (its encoder pre-activation, as a unit's pre-activation is grounded) and
    clustered as a unit's are; for a conv layer, cut to the receptive field of
    the cell where it was taken. ``TopExamples.pre`` is the encoder
    pre-activation, ``activations`` the latent's activation.
    """
    params = params or AtlasParameters()
    latent = int(latent)
    if not 0 <= latent < dictionary.d_sae:
        raise UnitError(f"latent {latent} is out of range: {dictionary.id} has latents 0..{dictionary.d_sae - 1}")
    return latent_view(model, dictionary, latent, latent_activations(model, dictionary, params.split), params)


def latent_view(model: MNISTNet, dictionary: Dictionary, latent: int, values, params: AtlasParameters
                ) -> tuple[TopExamples, UnitClusters]:
    """``latent_clusters`` given the latents' activations ``values`` (a ``LatentActivations`` over
    ``params.split``), so a caller visiting every latent reads them once."""
    data = load_mnist(params.split)
    indices = top_indices(values.values[:, latent : latent + 1], params.top_k)[0]
    positions = None if values.argmax is None else values.argmax[indices, latent].astype(np.int64)
    with one_thread():
        grounding = latent_effective_weights(model, dictionary, data.images[indices], latent, positions)
        found = Embeddings(grounding.embeddings(data.images[indices]), grounding.b_eff, grounding.positions,
                           grounding.exact)
        if grounding.positions is None:
            grounded = _Grounded(found, None, found.maps.reshape(len(indices), -1))
        else:
            boxes = receptive_field(model, dictionary.layer, grounding.positions)
            grounded = _Grounded(found, boxes, receptive_field_crops(found.maps, boxes).reshape(len(indices), -1))
        fit = params.estimator().fit(grounded.vectors)
        view = _unit_view(grounded, fit.labels_, data.labels[indices], fit.explained_)
    top = TopExamples(indices, grounding.pre.astype(np.float32), values.values[indices, latent], data.labels[indices])
    return top, view
