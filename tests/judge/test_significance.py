"""The intervals: coverage on synthetic data with a known answer, determinism, agreement with scipy and scikit-learn
per resample, pairing of two runs' items."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score

from nvembed_eval.errors import ConfigError
from nvembed_eval.judge.bootstrap import (
    Interval,
    Statistic,
    _RankedPairs,
    check_settings,
    grouped_replicates,
    metric_range,
    percentile_interval,
    replicates,
    t_interval,
)
from nvembed_eval.judge.significance import Group, ItemSet, NoiseSettings, task_noise


def assert_covers(
    truth: float, interval_of: Callable[[np.random.Generator, int], Interval], repetitions: int, seed: int
) -> None:
    """The interval from `repetitions` independent samples covers `truth` in 95% of them, within 3.5 binomial SDs."""
    rng = np.random.default_rng(seed)
    hits = [(i := interval_of(rng, rep)).low <= truth <= i.high for rep in range(repetitions)]
    band = 3.5 * math.sqrt(0.95 * 0.05 / repetitions)
    rate = sum(hits) / repetitions
    assert 0.95 - band <= rate <= 0.95 + band, rate


def bootstrap_interval(kind: Statistic, sides: list[dict], resamples: int, rep: int) -> Interval:
    reps = grouped_replicates(kind, [("task", sides)], resamples, seed=rep)
    return percentile_interval(reps[:, 0] - reps[:, 1] if len(sides) == 2 else reps[:, 0], 0.95)


def test_mean_interval_covers_the_true_mean_95_percent_of_the_time():
    """Per-query values from Beta(0.5, 0.5) (mass at both ends, like nDCG): true mean 0.5, 300 queries."""

    def interval(rng, rep):
        return bootstrap_interval(Statistic.mean, [{"values": rng.beta(0.5, 0.5, size=300)}], 1000, rep)

    assert_covers(0.5, interval, 400, seed=1)


def test_paired_delta_interval_covers_the_true_difference():
    """Two runs on the same 300 items, the second worse by 0.02 on average with per-item noise."""

    def interval(rng, rep):
        a = rng.beta(2, 2, size=300)
        b = a - 0.02 + rng.normal(0, 0.1, size=300)
        return bootstrap_interval(Statistic.mean, [{"values": a}, {"values": b}], 1000, rep)

    assert_covers(0.02, interval, 400, seed=2)


def test_spearman_interval_covers_the_population_value():
    """Bivariate normal with correlation 0.6: population Spearman is (6/pi) asin(0.3)."""

    def interval(rng, rep):
        x = rng.standard_normal(150)
        return bootstrap_interval(
            Statistic.spearman, [{"gold": x, "pred": 0.6 * x + 0.8 * rng.standard_normal(150)}], 400, rep
        )

    assert_covers(6 / math.pi * math.asin(0.3), interval, 250, seed=3)


def test_t_interval_over_experiments_covers_95_percent():
    """Ten experiments' accuracies, normal around 0.8 with SD 0.01 (mteb's classification experiments)."""
    assert_covers(0.8, lambda rng, _: t_interval(rng.normal(0.8, 0.01, size=10), 0.95), 2000, seed=4)


def test_spearman_replicates_are_scipys_spearman_of_each_resample():
    rng = np.random.default_rng(5)
    gold = np.round(rng.uniform(0, 5, size=80), 1)  # ties, as STS gold scores have
    pred = gold + rng.normal(0, 1, size=80)
    idx_rng = np.random.default_rng(9)
    reps = replicates(Statistic.spearman, [{"gold": gold, "pred": pred}], 20, np.random.default_rng(9))
    idx = idx_rng.integers(0, 80, size=(20, 80))
    expected = [spearmanr(gold[i], pred[i]).statistic for i in idx]
    np.testing.assert_allclose(reps[:, 0], expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("decimals", [1, 3, 12])
def test_vectorised_ap_is_scikit_learns_ap_of_each_resample(decimals):
    """With heavy ties (1 decimal) and without; against average_precision_score of the resampled arrays."""
    rng = np.random.default_rng(decimals)
    labels = (rng.random(500) < 0.3).astype(int)
    scores = np.round(labels * 0.5 + rng.normal(0, 0.5, size=500), decimals)
    idx = rng.integers(0, 500, size=(40, 500))
    ours = _RankedPairs(labels, scores)(idx, check=True)
    expected = [average_precision_score(labels[i], scores[i]) for i in idx]
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)


def test_ap_of_a_resample_without_positives_is_undefined_not_zero():
    labels = np.array([1, 0, 0, 0])
    pairs = _RankedPairs(labels, np.array([0.9, 0.1, 0.2, 0.3]))
    ap = pairs(np.array([[1, 2, 3, 1], [0, 1, 2, 3]]))
    assert math.isnan(ap[0]) and ap[1] == pytest.approx(1.0)
    assert percentile_interval(np.array([math.nan] * 5 + [0.5] * 95), 0.95) is None  # > 1% undefined: no interval


def items(name: str, kind: Statistic, ids: list[str], metric: str = "m", **arrays: np.ndarray) -> ItemSet:
    unit = {"mean": "query", "spearman": "pair", "ap": "pair", "experiments": "experiment"}[kind.value]
    group = Group(name, ids, {k: np.asarray(v, dtype=float) for k, v in arrays.items()})
    item_set = ItemSet(name, kind, unit, metric, 0.0, (group,))
    return ItemSet(name, kind, unit, metric, item_set.recomputed(), (group,))


def test_same_seed_same_interval_and_another_seed_nearly_the_same():
    rng = np.random.default_rng(6)
    ids = [f"q{i}" for i in range(300)]
    a = items("SciFact", Statistic.mean, ids, values=rng.random(300))
    b = items("SciFact", Statistic.mean, ids, values=rng.random(300))
    first = task_noise("SciFact", a, b, NoiseSettings(2000, 0.95, 0))
    assert first == task_noise("SciFact", a, b, NoiseSettings(2000, 0.95, 0))
    other = task_noise("SciFact", a, b, NoiseSettings(2000, 0.95, 1))
    assert other.delta != first.delta
    width = first.delta.high - first.delta.low
    assert (
        abs(other.delta.low - first.delta.low) < 0.1 * width and abs(other.delta.high - first.delta.high) < 0.1 * width
    )


def test_pairing_uses_common_items_in_either_order_and_says_so():
    rng = np.random.default_rng(7)
    values = rng.random(200)
    ids = [f"q{i}" for i in range(200)]
    a = items("T", Statistic.mean, ids, values=values)
    # the reference: the same items in reverse order, 20 of them missing, each 0.01 higher
    b = items("T", Statistic.mean, ids[::-1][20:], values=(values + 0.01)[::-1][20:])
    noise = task_noise("T", a, b, NoiseSettings())
    assert noise.delta.low == pytest.approx(-1.0) and noise.delta.high == pytest.approx(-1.0)  # -0.01 on every item
    assert noise.why == "paired on the 180 queries both have (run 200, reference 180)"
    assert noise.method == "bootstrap over 180 queries"


def test_no_items_on_a_side_gives_no_delta_and_the_reason():
    gold = np.arange(30.0)
    a = items("T", Statistic.spearman, [str(i) for i in range(30)], gold=gold, pred=gold + np.tile([3.0, -3.0], 15))
    noise = task_noise("T", a, "a score table has no per-item data", NoiseSettings())
    assert noise.delta is None and noise.ours is not None and noise.reference is None
    assert noise.why == "no per-item data (reference: a score table has no per-item data)"


def test_experiments_use_a_t_interval_paired_by_experiment():
    a = items("B", Statistic.experiments, [f"experiment {i}" for i in range(10)], values=np.linspace(0.80, 0.81, 10))
    b = items("B", Statistic.experiments, [f"experiment {i}" for i in range(10)], values=np.linspace(0.79, 0.80, 10))
    noise = task_noise("B", a, b, NoiseSettings())
    assert noise.delta.low == pytest.approx(1.0) and noise.delta.high == pytest.approx(1.0)  # +0.01 in every one
    assert noise.method == "t interval over 10 experiments"
    assert noise.ours.low < 80.5 < noise.ours.high


def test_intervals_stay_inside_the_metrics_range():
    """Three clustering experiments far apart: the t interval (13.0 +- 41.0 points) would reach below 0; a V-measure
    cannot, nor can their difference leave [-100, 100]. A correlation may be negative and keeps its lower end."""
    ids = [f"experiment {i}" for i in range(3)]
    low = items("C", Statistic.experiments, ids, "v_measure", values=[0.02, 0.05, 0.32])
    high = items("C", Statistic.experiments, ids, "v_measure", values=[0.99, 0.80, 0.98])
    noise = task_noise("C", low, high, NoiseSettings())
    assert noise.ours.low == 0.0 and 0 < noise.ours.high < 100  # unclipped: [-28.04, 54.04]
    assert noise.reference.high == 100.0 and noise.reference.low > 0  # unclipped: 92.3 +- 26.6
    assert noise.delta.low >= -100.0 and noise.delta.high <= 100.0
    unclipped = t_interval(np.array([0.02, 0.05, 0.32]), 0.95)
    assert unclipped.low < 0  # the case is real: the clipping, not the data, keeps the interval in range
    corr = items("S", Statistic.experiments, ids, "cosine_spearman", values=[0.02, 0.05, 0.32])
    assert task_noise("S", corr, corr, NoiseSettings()).ours.low == pytest.approx(100 * unclipped.low)


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("ndcg_at_10", (0.0, 1.0)),
        ("map_at_1000", (0.0, 1.0)),
        ("max_over_subqueries_map_at_1000", (0.0, 1.0)),
        ("cosine_ap", (0.0, 1.0)),
        ("cos_sim_ap", (0.0, 1.0)),
        ("accuracy", (0.0, 1.0)),
        ("v_measure", (0.0, 1.0)),
        ("mrr_at_10", (0.0, 1.0)),
        ("recall_at_100", (0.0, 1.0)),
        ("f1", (0.0, 1.0)),
        ("cosine_spearman", (-1.0, 1.0)),
        ("cos_sim_pearson", (-1.0, 1.0)),
        ("nauc_ndcg_at_10_max", (-1.0, 1.0)),  # mteb's nAUC can be negative
        ("main_score", (-1.0, 1.0)),  # unknown: not cut
    ],
)
def test_metric_range_from_the_key(metric, expected):
    assert metric_range(metric) == expected


def test_stratified_groups_resample_within_each_group():
    rng = np.random.default_rng(8)
    g1, g2 = rng.random(50), rng.random(70) + 1.0
    both = grouped_replicates(Statistic.mean, [("T/a", [{"values": g1}]), ("T/b", [{"values": g2}])], 500, seed=0)
    a = grouped_replicates(Statistic.mean, [("T/a", [{"values": g1}])], 500, seed=0)
    b = grouped_replicates(Statistic.mean, [("T/b", [{"values": g2}])], 500, seed=0)
    np.testing.assert_allclose(both, (a + b) / 2)
    assert np.all((both > 0.5) & (both < 1.5))  # every replicate keeps both groups (no resample mixes them)


@pytest.mark.parametrize(("resamples", "confidence"), [(10, 0.95), (2000, 1.0), (2000, 0.3), (2000, math.nan)])
def test_unusable_settings_are_refused(resamples, confidence):
    with pytest.raises(ConfigError, match=r"^(resamples|confidence) must be"):
        check_settings(resamples, confidence)
