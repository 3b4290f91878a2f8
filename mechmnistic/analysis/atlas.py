"""The neuron atlas: every unit of a layer with its top examples and feature clusters, computed once.

For each unit of a hidden fully connected layer the atlas holds the ``top_k``
training images that drive it hardest and the partition of their Hadamard
embeddings found by ``FeatureClusters``. It is computed once per model
(weights hash), layer and parameters, stored through ``mechmnistic.cache``
(atomic, re-computed when missing or unreadable), and then read lazily: the
Neuron Explorer switches between units without computing anything heavy.

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
from ..data import Split, load_mnist
from ..models.architectures import MNISTNet
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
from .embeddings import hadamard_embeddings
from .neurons import TopExamples, check_unit, top_indices
from .units import UnitError

#: ``progress(done, total, message)``: called as the atlas is computed (``done`` out of ``total`` steps).
Progress = Callable[[int, int, str], None]

DEFAULT_TOP_K = 500
MAX_TOP_K = 2000  # clustering is quadratic in the number of examples
_ANALYSIS = "neuron_atlas"


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


@dataclass(frozen=True)
class NeuronAtlas:
    """All ``U`` units of one layer, ``K = top_k`` examples each.

    ``top_indices`` int64 ``[U, K]`` (into the split), ``top_pre`` float32
    ``[U, K]`` (highest first); ``cluster_labels`` int64 ``[U, K]`` (0 the
    largest cluster); per unit: ``n_clusters`` int64 ``[U]``, ``explained``,
    ``mean_intra`` and ``mean_inter`` float ``[U]`` (see ``FeatureClusters``).
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

    @property
    def n_units(self) -> int:
        return self.top_indices.shape[0]

    def top_examples(self, unit: int) -> TopExamples:
        """Unit ``unit``'s top examples (labels from the split)."""
        indices, pre = self.top_indices[unit], self.top_pre[unit]
        return TopExamples(indices, pre, np.maximum(pre, 0), load_mnist(self.params.split).labels[indices])


def atlas_is_cached(model: MNISTNet, layer: str, params: AtlasParameters | None = None) -> bool:
    """Whether ``neuron_atlas`` will read from disk (so a page can announce a first-time computation)."""
    return is_cached(model, _ANALYSIS, (params or AtlasParameters()).key(layer))


def _unit_embeddings(model: MNISTNet, layer: str, unit: int, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One unit's Hadamard embeddings on ``images``, flattened: float32 ``[N, 784]``, and its
    (effective) bias on each: float32 ``[N]``."""
    found = hadamard_embeddings(model, layer, images, units=np.array([unit]))
    return found.maps[:, 0].reshape(len(images), -1), found.bias[:, 0]


def compute_atlas(
    model: MNISTNet, layer: str, params: AtlasParameters, progress: Progress | None = None
) -> dict[str, np.ndarray]:
    """The atlas arrays, uncached (``neuron_atlas`` stores them)."""
    # Imported here: scikit-learn and SciPy are only needed to find clusters, and a server
    # that only reads stored atlases stays about 160 MB smaller without them.
    from .clusters import FeatureClusters

    report = progress or (lambda done, total, message: None)
    n_units = check_unit(model, layer).out_features
    total = n_units + 1
    report(0, total, f"activations of {layer} over the {params.split} set")
    pre = layer_activations(model, layer, params.split).pre
    images = load_mnist(params.split).images
    if params.top_k > len(images):
        raise UnitError(f"top-k {params.top_k} exceeds the {len(images)} images of the {params.split} set")
    indices = top_indices(pre, params.top_k)
    labels = np.empty(indices.shape, dtype=np.int64)
    per_unit = {name: np.empty(n_units) for name in ("explained", "mean_intra", "mean_inter")}
    n_clusters = np.empty(n_units, dtype=np.int64)
    with one_thread():  # each unit's work is a few small products: see mechmnistic.threads
        for unit in range(n_units):
            report(unit + 1, total, f"clustering unit {unit} of {n_units}")
            estimator = FeatureClusters(n_clusters=params.n_clusters, explained=params.explained,
                                        max_clusters=MAX_CLUSTERS)
            fit = estimator.fit(_unit_embeddings(model, layer, unit, images[indices[unit]])[0])
            labels[unit], n_clusters[unit] = fit.labels_, fit.n_clusters_
            per_unit["explained"][unit] = fit.explained_
            per_unit["mean_intra"][unit] = fit.mean_intra_similarity_
            per_unit["mean_inter"][unit] = fit.mean_inter_similarity_
    report(total, total, "done")
    top_pre = np.take_along_axis(pre.T, indices, axis=1)
    return {"top_indices": indices, "top_pre": top_pre.astype(np.float32), "cluster_labels": labels,
            "n_clusters": n_clusters, **per_unit}


def neuron_atlas(
    model: MNISTNet, layer: str, params: AtlasParameters | None = None, progress: Progress | None = None
) -> NeuronAtlas:
    """The atlas of ``layer`` for ``params`` (default ``AtlasParameters()``): from disk when computed
    before, else computed (reporting to ``progress``) and stored."""
    params = params or AtlasParameters()
    check_unit(model, layer)
    arrays = cached(model, _ANALYSIS, params.key(layer), lambda: compute_atlas(model, layer, params, progress))
    return NeuronAtlas(layer, params, **{name: arrays[name] for name in (
        "top_indices", "top_pre", "cluster_labels", "n_clusters", "explained", "mean_intra", "mean_inter")})


@dataclass(frozen=True)
class UnitClusters:
    """One unit's feature clusters, ready to show.

    ``embeddings`` float32 ``[K, 28, 28]``: the Hadamard embeddings of the top
    examples (same order as the atlas); ``biases`` float32 ``[K]``: the unit's
    bias on each (input-dependent beyond the first layer), so
    ``embeddings.sum((1, 2)) + biases`` is the pre-activation; ``labels`` int64 ``[K]``: each
    example's cluster; ``stats``: sizes, central examples (rows of
    ``embeddings``), mean embeddings ``[C, 784]`` and similarities;
    ``class_counts`` int64 ``[C, n_classes]``.
    """

    embeddings: np.ndarray
    biases: np.ndarray
    labels: np.ndarray
    stats: ClusterStatistics
    class_counts: np.ndarray

    @property
    def mean_embeddings(self) -> np.ndarray:
        """float ``[C, 28, 28]``."""
        return self.stats.means.reshape(-1, 28, 28)

    @property
    def share_in_clusters_of_three_or_more(self) -> float:
        sizes = self.stats.sizes
        return float(sizes[sizes >= 3].sum() / sizes.sum())


def unit_clusters(model: MNISTNet, atlas: NeuronAtlas, unit: int) -> UnitClusters:
    """Unit ``unit``'s clusters from ``atlas`` with its embeddings recomputed (a few milliseconds)."""
    check_unit(model, atlas.layer, unit)
    data = load_mnist(atlas.params.split)
    indices = atlas.top_indices[unit]
    labels = atlas.cluster_labels[unit]
    with one_thread():
        flat, biases = _unit_embeddings(model, atlas.layer, unit, data.images[indices])
        stats = cluster_statistics(flat, labels)
    counts = class_histograms(labels, data.labels[indices], len(stats.sizes), model.n_classes)
    return UnitClusters(flat.reshape(-1, 28, 28), biases, labels, stats, counts)
