"""Feature clusters: group the Hadamard embeddings of a unit's top examples into ways it is driven.

Two embeddings are alike when they point the same way (cosine similarity):
the same pixels push the unit in the same proportions, whatever the overall
strength. ``FeatureClusters`` therefore clusters the embeddings after scaling
each to unit length, with Ward's hierarchical method: for unit vectors the
squared Euclidean distance is ``2 - 2 cos``, so Ward's merges are exactly the
ones that keep the mean within-cluster cosine similarity highest. Ward merges
outliers into groups early (its cost grows with group size), which is why its
top levels are a few large clusters rather than the swarm of singletons that a
fixed distance threshold gives.

How many clusters: a fixed ``n_clusters``, or (the default) the fewest
clusters, at most ``max_clusters``, that together explain at least
``explained`` of the embeddings' spread: the between-cluster share of the
total sum of squares of the unit vectors, read off Ward's merge heights.

The estimator follows scikit-learn's contract (``get_params``/``clone`` work,
parameters are stored as given and checked in ``fit``, ``fit`` returns self,
learned attributes end in ``_``). Ward's method has no random start, so the
result is fully determined by the data and there is no ``random_state``.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import validate_data

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


def check_cluster_parameters(n_clusters: object, explained: object, max_clusters: object) -> None:
    """Raise ``ClusterParameterError`` unless the parameters are in range (see ``FeatureClusters``)."""
    if n_clusters is not None and not (isinstance(n_clusters, Integral) and n_clusters >= 1):
        raise ClusterParameterError(f"the number of clusters must be a whole number >= 1, got {n_clusters!r}")
    if not (isinstance(explained, Real) and 0 < explained <= 1):
        raise ClusterParameterError(f"the explained share must be in (0, 1], got {explained!r}")
    if not (isinstance(max_clusters, Integral) and max_clusters >= 1):
        raise ClusterParameterError(f"max_clusters must be a whole number >= 1, got {max_clusters!r}")


def _by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..C-1 from largest to smallest (ties: first member first)."""
    found, first, counts = np.unique(labels, return_index=True, return_counts=True)
    order = np.lexsort((first, -counts))
    rank = np.empty(len(found), dtype=np.int64)
    rank[order] = np.arange(len(found))
    return rank[np.searchsorted(found, labels)]


class FeatureClusters(ClusterMixin, BaseEstimator):
    """Ward clustering of embeddings by direction, with a readable number of clusters.

    Parameters
    ----------
    n_clusters : int or None
        Exactly this many clusters (fewer only if there are fewer distinct
        embeddings); ``None`` chooses automatically (see ``explained``).
    explained : float in (0, 1]
        With ``n_clusters=None``: the fewest clusters whose between-cluster
        share of the spread reaches this value. Higher means more, tighter
        clusters.
    max_clusters : int
        The most clusters the automatic choice may give.

    Attributes
    ----------
    labels_ : int64 [N], cluster of each row, 0 the largest.
    n_clusters_ : int
    explained_ : float, the between-cluster share of the spread achieved.
    cluster_sizes_, central_indices_, cluster_means_ [C, D],
    intra_similarity_ [C], inter_similarity_ [C],
    mean_intra_similarity_, mean_inter_similarity_ : see ``ClusterStatistics``.
    """

    def __init__(self, n_clusters: int | None = None, explained: float = 0.3, max_clusters: int = MAX_CLUSTERS):
        self.n_clusters = n_clusters
        self.explained = explained
        self.max_clusters = max_clusters

    def fit(self, X: np.ndarray, y: None = None) -> FeatureClusters:  # noqa: N803 (scikit-learn's name)
        """Cluster the rows of ``X`` ``[N, D]`` (flattened embeddings)."""
        check_cluster_parameters(self.n_clusters, self.explained, self.max_clusters)
        X = validate_data(self, X, dtype=[np.float64, np.float32])  # noqa: N806
        unit = unit_rows(X)
        similarity = unit @ unit.T  # in X's float type: float32 halves the cost of the largest product
        if len(X) == 1:
            labels, explained = np.zeros(1, dtype=np.int64), 1.0
        else:
            # Squared distances of unit vectors are 2 - 2 cos; Ward needs the distances themselves.
            pairs = squareform(similarity.astype(np.float64), checks=False)
            tree = linkage(np.sqrt(np.clip(2.0 - 2.0 * pairs, 0.0, None)), method="ward")
            # A Ward merge of height h adds h^2 / 2 to the within-cluster sum of squares,
            # so with k clusters the last k - 1 merges are the between-cluster part.
            gains = np.cumsum(tree[::-1, 2] ** 2)
            total = gains[-1]
            share = np.concatenate([[0.0], gains / total]) if total > 0 else np.ones(len(X))
            if self.n_clusters is not None:
                k = min(self.n_clusters, len(X))
            else:
                limit = min(self.max_clusters, len(X))
                reached = np.flatnonzero(share[:limit] >= self.explained - 1e-12)
                k = int(reached[0]) + 1 if len(reached) else limit
            labels = fcluster(tree, k, criterion="maxclust") - 1
            explained = float(share[len(np.unique(labels)) - 1])
        self.labels_ = _by_size(labels)
        stats = cluster_statistics(X, self.labels_, similarity)
        self.n_clusters_ = len(stats.sizes)
        self.explained_ = explained
        self.cluster_sizes_ = stats.sizes
        self.central_indices_ = stats.central
        self.cluster_means_ = stats.means
        self.intra_similarity_ = stats.intra
        self.inter_similarity_ = stats.inter
        self.mean_intra_similarity_ = stats.mean_intra
        self.mean_inter_similarity_ = stats.mean_inter
        return self
