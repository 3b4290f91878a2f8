"""What a partition of embeddings into clusters looks like, and the ranges of clustering parameters.

Sizes, central members, mean embeddings, cosine similarity within and between
clusters, class histograms: everything a view shows about clusters, computed
from the embeddings and their labels with numpy alone. ``FeatureClusters``
(``analysis.clusters``) finds the labels; it needs scikit-learn and SciPy,
which this module does not import, so an app that only reads stored clusters
never loads them (about 160 MB of memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from ..errors import MechMNISTicError

#: The most clusters the automatic choice gives; a reader can take in a dozen panels.
MAX_CLUSTERS = 12


class ClusterParameterError(MechMNISTicError, ValueError):
    """A clustering parameter out of its range."""


@dataclass(frozen=True)
class ClusterStatistics:
    """What a partition of ``N`` embeddings (``D`` values each) into ``C`` clusters looks like.

    ``sizes`` int64 ``[C]``; ``central`` int64 ``[C]``: per cluster, the row of
    the member with the highest mean cosine similarity to the other members;
    ``means`` ``[C, D]``: each cluster's mean embedding (not normalised);
    ``intra`` ``[C]``: mean cosine similarity between two different members
    (NaN for a single member); ``inter`` ``[C]``: mean cosine similarity
    between a member and a non-member (NaN with one cluster);
    ``mean_intra``/``mean_inter``: the same over all pairs of the partition.
    """

    sizes: np.ndarray
    central: np.ndarray
    means: np.ndarray
    intra: np.ndarray
    inter: np.ndarray
    mean_intra: float
    mean_inter: float


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` ``[N, D]`` scaled to length 1 (all-zero rows stay zero), in x's float type."""
    x = np.asarray(x)
    x = x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def cluster_statistics(x: np.ndarray, labels: np.ndarray, similarity: np.ndarray | None = None) -> ClusterStatistics:
    """Sizes, central members, means and cosine similarities of a partition.

    ``x`` ``[N, D]`` embeddings; ``labels`` int ``[N]`` in ``0..C-1``, every
    cluster non-empty; ``similarity`` ``[N, N]`` the cosine similarities of
    ``x``'s rows when already at hand.
    """
    x = np.asarray(x)
    labels = np.asarray(labels, dtype=np.int64)
    n_clusters = int(labels.max()) + 1
    sizes = np.bincount(labels, minlength=n_clusters)
    if np.any(sizes == 0):
        raise ValueError("every cluster label in 0..C-1 must be used")
    if similarity is None:
        unit = unit_rows(x)
        similarity = unit @ unit.T
    similarity = np.asarray(similarity, dtype=np.float64)
    members = np.zeros((len(labels), n_clusters))
    members[np.arange(len(labels)), labels] = 1.0
    to_cluster = similarity @ members  # [N, C]: summed similarity of each row to each cluster
    block = members.T @ to_cluster  # [C, C]: summed similarity between clusters (diagonal counts self-pairs)
    self_similarity = np.diag(similarity)
    within = np.diag(block) - np.bincount(labels, weights=self_similarity, minlength=n_clusters)
    pairs_within = sizes * (sizes - 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        intra = np.where(pairs_within > 0, within / pairs_within, np.nan)
        outside = len(labels) - sizes
        inter = np.where(outside > 0, (block.sum(axis=1) - np.diag(block)) / (sizes * outside), np.nan)
    # The central member: highest mean similarity to the others of its cluster.
    to_own = to_cluster[np.arange(len(labels)), labels] - self_similarity
    central = np.array([np.flatnonzero(labels == c)[np.argmax(to_own[labels == c])] for c in range(n_clusters)])
    means = members.T @ x.astype(np.float64) / sizes[:, None]
    total_within, total_pairs_within = within.sum(), pairs_within.sum()
    cross_pairs = len(labels) ** 2 - np.sum(sizes**2)
    return ClusterStatistics(
        sizes=sizes.astype(np.int64),
        central=central.astype(np.int64),
        means=means.astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64),
        intra=intra,
        inter=inter,
        mean_intra=float(total_within / total_pairs_within) if total_pairs_within else float("nan"),
        mean_inter=float((block.sum() - np.trace(block)) / cross_pairs) if cross_pairs else float("nan"),
    )


def class_histograms(cluster_labels: np.ndarray, classes: np.ndarray, n_clusters: int, n_classes: int) -> np.ndarray:
    """How many members of each cluster have each class: int64 ``[n_clusters, n_classes]``."""
    flat = np.asarray(cluster_labels, dtype=np.int64) * n_classes + np.asarray(classes, dtype=np.int64)
    return np.bincount(flat, minlength=n_clusters * n_classes).reshape(n_clusters, n_classes)


def _is_whole(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def check_cluster_parameters(n_clusters: object, explained: object, max_clusters: object) -> None:
    """Raise ``ClusterParameterError`` unless the parameters are in range (see ``FeatureClusters``)."""
    if n_clusters is not None and not (_is_whole(n_clusters) and n_clusters >= 1):
        raise ClusterParameterError(f"the number of clusters must be a whole number >= 1, got {n_clusters!r}")
    if not (isinstance(explained, Real) and not isinstance(explained, bool) and 0 < explained <= 1):
        raise ClusterParameterError(f"the explained share must be in (0, 1], got {explained!r}")
    if not (_is_whole(max_clusters) and max_clusters >= 1):
        raise ClusterParameterError(f"max_clusters must be a whole number >= 1, got {max_clusters!r}")
