"""Feature clusters: known groups are found, the statistics are what they claim, the contract holds."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.estimator_checks import check_estimator

from mechmnistic.analysis.cluster_stats import ClusterParameterError, class_histograms, cluster_statistics
from mechmnistic.analysis.clusters import FeatureClusters


def known_groups(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three groups of 40, 25 and 10 noisy copies of three directions, each row at its own scale."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(3, 784))
    sizes = [40, 25, 10]
    truth = np.repeat(np.arange(3), sizes)
    rows = directions[truth] + 0.15 * rng.normal(size=(len(truth), 784))
    scales = rng.uniform(0.1, 20.0, size=(len(truth), 1))  # clustering is by direction, not strength
    order = rng.permutation(len(truth))
    return (rows * scales)[order].astype(np.float32), truth[order]


def test_a_given_count_recovers_the_known_groups_largest_first():
    x, truth = known_groups()
    fit = FeatureClusters(n_clusters=3).fit(x)
    assert adjusted_rand_score(truth, fit.labels_) == 1.0
    assert fit.cluster_sizes_.tolist() == [40, 25, 10]
    assert fit.n_clusters_ == 3
    assert fit.mean_intra_similarity_ > 0.9 > 0.2 > abs(fit.mean_inter_similarity_)


def test_automatic_count_finds_the_groups_when_asked_to_explain_most_of_the_spread():
    x, truth = known_groups(1)
    fit = FeatureClusters(explained=0.9).fit(x)
    assert fit.n_clusters_ == 3 and adjusted_rand_score(truth, fit.labels_) == 1.0
    assert fit.explained_ >= 0.9
    # Asking for less stops at fewer clusters: the two smaller groups stay together.
    coarse = FeatureClusters(explained=0.1).fit(x)
    assert coarse.n_clusters_ < 3 and 0.1 <= coarse.explained_ < fit.explained_


def test_scaling_rows_does_not_change_the_clusters():
    x, _ = known_groups(2)
    factors = np.random.default_rng(3).uniform(0.01, 100, size=(len(x), 1)).astype(np.float32)
    a = FeatureClusters(n_clusters=4).fit(x).labels_
    b = FeatureClusters(n_clusters=4).fit(x * factors).labels_
    assert adjusted_rand_score(a, b) == 1.0


def test_statistics_on_a_hand_worked_example():
    x = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0], [1.0, 1.0]])
    labels = np.array([0, 0, 1, 1, 0])
    stats = cluster_statistics(x, labels)
    c = 1 / np.sqrt(2)  # cosine between an axis and the diagonal
    assert stats.sizes.tolist() == [3, 2]
    # Cluster 0: pairs (a,b)=1, (a,e)=c, (b,e)=c; cluster 1: one pair, cosine 1.
    np.testing.assert_allclose(stats.intra, [(1 + 2 * c) / 3, 1.0])
    # Cross pairs: a,b with c,d are 0; e with c,d is c: 2 of 6 pairs.
    np.testing.assert_allclose(stats.inter, [2 * c / 6, 2 * c / 6])
    np.testing.assert_allclose(stats.mean_intra, (2 * (1 + 2 * c) + 2 * 1) / (6 + 2))
    np.testing.assert_allclose(stats.mean_inter, 2 * c / 6)
    np.testing.assert_allclose(stats.means, [[4 / 3, 1 / 3], [0.0, 2.0]])
    # a and b each have mean similarity (1 + c)/2 to the others; e has c: the first best is central.
    assert stats.central.tolist() == [0, 2]


def test_central_member_is_the_one_most_like_the_rest():
    rng = np.random.default_rng(4)
    middle = rng.normal(size=50)
    x = np.stack([middle] + [middle + rng.normal(size=50) for _ in range(6)])
    stats = cluster_statistics(x, np.zeros(len(x), dtype=int))
    assert stats.central.tolist() == [0]
    assert np.isnan(stats.inter[0]) and np.isnan(stats.mean_inter)


def test_singletons_and_degenerate_inputs():
    single = FeatureClusters().fit(np.ones((1, 5)))
    assert single.labels_.tolist() == [0] and single.n_clusters_ == 1 and np.isnan(single.intra_similarity_[0])
    same = FeatureClusters(n_clusters=3).fit(np.tile([1.0, 2.0, 3.0], (6, 1)))
    assert same.n_clusters_ == 1, "identical rows cannot be split"
    zeros = FeatureClusters(n_clusters=2).fit(np.vstack([np.zeros((3, 4)), np.eye(4)[[0, 0, 0]]]))
    assert zeros.n_clusters_ == 2 and np.isfinite(zeros.mean_intra_similarity_)
    more_than_rows = FeatureClusters(n_clusters=10).fit(np.eye(4))
    assert more_than_rows.n_clusters_ == 4


def test_class_histograms_count_members_per_class():
    counts = class_histograms(np.array([0, 0, 1, 1, 1]), np.array([3, 3, 1, 3, 9]), n_clusters=2, n_classes=10)
    assert counts.shape == (2, 10)
    assert counts[0, 3] == 2 and counts[1, 1] == 1 and counts[1, 3] == 1 and counts[1, 9] == 1
    assert counts.sum() == 5


@pytest.mark.parametrize(
    "params",
    [{"n_clusters": 0}, {"n_clusters": 2.5}, {"n_clusters": "3"}, {"n_clusters": True}, {"explained": True},
     {"explained": 0.0}, {"explained": 1.5}, {"explained": "high"}, {"max_clusters": 0}],
)
def test_bad_parameters_are_refused_at_fit_not_at_construction(params):
    estimator = FeatureClusters(**params)  # scikit-learn's contract: __init__ only stores
    assert estimator.get_params()[next(iter(params))] == next(iter(params.values()))
    with pytest.raises(ClusterParameterError):
        estimator.fit(np.eye(3))


@pytest.mark.filterwarnings("ignore:Skipping check check_array_api_input")  # needs SCIPY_ARRAY_API set
def test_scikit_learn_contract():
    x, _ = known_groups()
    estimator = FeatureClusters(n_clusters=3)
    assert estimator.fit(x) is estimator
    copy = clone(estimator)
    assert copy.get_params() == estimator.get_params() and not hasattr(copy, "labels_")
    np.testing.assert_array_equal(FeatureClusters(n_clusters=3).fit_predict(x), estimator.labels_)
    np.testing.assert_array_equal(FeatureClusters(n_clusters=3).fit(x).labels_, estimator.labels_)  # deterministic
    results = check_estimator(FeatureClusters(), on_fail=None)
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert not failed, failed
    assert sum(r["status"] == "passed" for r in results) >= 40
