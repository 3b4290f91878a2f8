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

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import validate_data

from .cluster_stats import MAX_CLUSTERS, check_cluster_parameters, cluster_statistics, unit_rows


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
