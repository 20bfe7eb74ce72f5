"""Example-level statistics: compact predictions, confusion-matrix scores, the paired seeds × examples bootstrap
(checked against a simulation with known variance), reference rows, MDE and Holm (checked by hand)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torchmetrics.classification import BinaryF1Score, BinaryMatthewsCorrCoef

from attnlab.predictions import decode, encode, pack, unpack
from attnlab.report.baselines import reference_rows, reference_scores
from attnlab.report.grid import Grid
from attnlab.report.inference import bootstrap_diff, confusion_scores, score_replicates
from attnlab.report.power import claim_test, holm, mde, power_at
from attnlab.report.stats import t_interval, verdict


@pytest.mark.parametrize("k", [2, 3, 15])
def test_pack_round_trip(k: int) -> None:
    ids = np.random.default_rng(k).integers(0, k, size=1001)
    bits = max(1, int(np.ceil(np.log2(k))))
    np.testing.assert_array_equal(unpack(pack(ids, bits), bits, len(ids)), ids)
    with pytest.raises(ValueError):
        pack([2**bits], bits)


def test_sst2_predictions_are_a_few_hundred_bytes() -> None:
    rng = np.random.default_rng(0)
    labels, preds = rng.integers(0, 2, 872), rng.integers(0, 2, 872)
    stored = encode(labels, preds, 2)
    assert len(stored["labels"]) + len(stored["predicted"]) < 320  # 2 × 109 bytes as base64
    back = decode(stored)
    assert back is not None
    np.testing.assert_array_equal(back.labels, labels)
    np.testing.assert_array_equal(back.correct, (labels == preds).astype(np.int8))


def test_confusion_scores_match_torchmetrics() -> None:
    rng = np.random.default_rng(1)
    labels, preds = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    counts = np.bincount(labels * 2 + preds, minlength=4)
    f1 = float(BinaryF1Score()(torch.tensor(preds), torch.tensor(labels)))
    mcc = float(BinaryMatthewsCorrCoef()(torch.tensor(preds), torch.tensor(labels)))
    assert confusion_scores(counts, "accuracy", 2) == pytest.approx(float((labels == preds).mean()), abs=1e-12)
    assert confusion_scores(counts, "f1", 2) == pytest.approx(f1, abs=1e-6)
    assert confusion_scores(counts, "mcc", 2) == pytest.approx(mcc, abs=1e-6)


def test_reference_rows_by_hand() -> None:
    p = decode(encode([1, 1, 1, 0], [1, 1, 1, 0], 2))
    assert p is not None
    assert reference_scores(p, "glue/sst2") == pytest.approx({"majority class": 75.0, "chance": 50.0})
    # MRPC = (accuracy + F1) / 2: majority 0.75 and 6/7; chance 0.5 and 2·3 / (4 + 2·3) = 0.6
    assert reference_scores(p, "glue/mrpc") == pytest.approx({"majority class": (75 + 600 / 7) / 2, "chance": 55.0})
    assert reference_scores(p, "glue/cola") == pytest.approx({"majority class": 0.0, "chance": 0.0})


def records_from(correct: dict[tuple[str, int], np.ndarray], labels: np.ndarray) -> list[dict[str, Any]]:
    """SST-2 records whose predictions have the given per-example correctness."""
    out = []
    for (row, seed), c in correct.items():
        predicted = np.where(c == 1, labels, 1 - labels)
        out.append({"row": row, "task": "glue/sst2", "seed": seed, "metrics": {"val/score": 100 * c.mean()},
                    "predictions": encode(labels, predicted, 2)})
    return out


def crossed_sample(rng: np.random.Generator, n_seeds: int, n_examples: int) -> dict[tuple[str, int], np.ndarray]:
    """Correctness of rows a and b: an item effect of a (examples), seed effects (training), and noise."""
    ease = rng.standard_normal(n_examples)
    item = 0.6 * rng.standard_normal(n_examples)  # where a beats b varies by example
    out = {}
    for s in range(n_seeds):
        out[("a", s)] = (ease + item + 0.08 * rng.standard_normal() + 0.25 * rng.standard_normal(n_examples) > 0)
        out[("b", s)] = (ease + 0.08 * rng.standard_normal() + 0.25 * rng.standard_normal(n_examples) > 0)
    return {k: v.astype(np.int64) for k, v in out.items()}


def test_bootstrap_se_matches_the_true_sampling_sd_of_a_crossed_design() -> None:
    """New examples AND new seeds each time: the true SD of the mean difference, vs the bootstrap SE from one
    sample; the seed-only t SE misses the example part and is too small."""
    rng = np.random.default_rng(2024)
    n_seeds, n_examples = 5, 300
    truth = []
    for _ in range(1500):
        sample = crossed_sample(rng, n_seeds, n_examples)
        truth.append(np.mean([100 * (sample[("a", s)].mean() - sample[("b", s)].mean()) for s in range(n_seeds)]))
    true_sd = float(np.std(truth, ddof=1))
    boot_se, t_se, covered = [], [], 0
    labels = rng.integers(0, 2, n_examples)
    for i in range(40):
        grid = Grid.build({"rows": ["a", "b"], "tasks": ["glue/sst2"]}, records_from(crossed_sample(rng, n_seeds,
                                                                                                 n_examples), labels))
        boot = bootstrap_diff(grid, "a", "b", ["glue/sst2"], n_boot=600, seed=i)
        assert boot is not None
        diffs = grid.paired_diffs("a", "b", lambda cells: cells["glue/sst2"]["metrics"]["val/score"])
        assert boot.mean == pytest.approx(float(np.mean(diffs)), abs=1e-9)  # rescoring = the recorded score
        boot_se.append(boot.se)
        t_se.append(float(np.std(diffs, ddof=1) / np.sqrt(n_seeds)))
        assert boot.lo is not None and boot.hi is not None
        covered += boot.lo <= float(np.mean(truth)) <= boot.hi
    assert np.mean(boot_se) == pytest.approx(true_sd, rel=0.25)
    assert np.mean(t_se) < 0.75 * true_sd  # what ignoring the eval set's sampling error costs
    assert covered >= 34  # 95% nominal over 40 samples


def test_bootstrap_needs_predictions_on_the_same_dev_labels() -> None:
    labels = np.array([0, 1, 1, 0, 1])
    recs = records_from({("a", 0): np.ones(5, int), ("b", 0): np.zeros(5, int), ("a", 1): np.ones(5, int),
                         ("b", 1): np.zeros(5, int)}, labels)
    grid = Grid.build({}, recs)
    assert bootstrap_diff(grid, "a", "b", ["glue/sst2"], n_boot=50) is not None
    recs[-1]["predictions"] = encode(1 - labels, labels, 2)  # another dev set
    assert bootstrap_diff(Grid.build({}, recs), "a", "b", ["glue/sst2"], n_boot=50) is None  # one seed left
    assert bootstrap_diff(grid, "a", "b", ["glue/stsb"]) is None  # regression: no example-level score
    assert [r["row"] for r in reference_rows(grid)] == ["majority class", "chance"]


def test_mde_by_hand_and_by_simulation() -> None:
    assert mde(1.0, 100_000) == pytest.approx(1.959964 + 0.841621, abs=2e-3)  # z₀.₉₇₅ + z₀.₈
    assert mde(1.0, 3) == pytest.approx(5.6535, abs=1e-3)
    assert mde(None, 3) is None and mde(0.0, 3) == 0.0
    # the paired t test at the MDE really has 80% power: simulate it (n = 4, sd = 2, se = 1)
    effect = mde(1.0, 4)
    assert effect is not None and power_at(effect, 1.0, 4) == pytest.approx(0.8, abs=1e-6)
    samples = effect + 2.0 * np.random.default_rng(5).standard_normal((4000, 4))
    t = samples.mean(axis=1) / (samples.std(axis=1, ddof=1) / 2)
    lo, hi = t_interval(list(samples[0]))[1:3]  # the report's own interval agrees with the vectorised test
    assert (verdict(lo, hi, "better") != "inconclusive") == (abs(t[0]) > 3.182446)
    assert float(np.mean(np.abs(t) > 3.182446)) == pytest.approx(0.8, abs=0.025)  # t₀.₉₇₅,₃ = 3.182446


def test_holm_by_hand() -> None:
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([None, 0.2]) == [None, 0.2]


@pytest.mark.parametrize("expect", ["better", "worse", "similar"])
@pytest.mark.parametrize("higher", [True, False])
def test_p_below_alpha_exactly_when_the_interval_decides(expect: str, higher: bool) -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        diffs = list(rng.normal(rng.normal(0, 2), rng.uniform(0.2, 2), size=int(rng.integers(2, 8))))
        mean, lo, hi, n = t_interval(diffs)
        se = float(np.std(diffs, ddof=1) / np.sqrt(n))
        p, supports = claim_test(mean, se, n, expect, higher)  # type: ignore[arg-type]
        decided = verdict(lo, hi, expect, higher, n)  # type: ignore[arg-type]
        assert p is not None
        assert (p < 0.05) == (decided != "inconclusive"), (diffs, p, decided)
        if p < 0.05:
            assert supports == decided


def test_two_validation_splits_average_like_task_score() -> None:
    """MNLI scores (matched + mismatched) / 2, not the pooled accuracy: 100% on 2 examples and 25% on 4 → 62.5."""
    labels = np.array([0, 1, 2, 0, 1, 2])
    predicted = np.array([0, 1, 2, 1, 2, 0])
    p = decode(encode(labels, predicted, 3, [2, 4]))
    assert p is not None
    ones = [np.ones((1, 2)), np.ones((1, 4))]
    assert float(score_replicates("glue/mnli", p, ones)[0]) == pytest.approx(62.5)


def test_identical_rows_are_not_significant() -> None:
    """Zero spread (two rows with the same predictions on every seed): p = 1 for a difference, not 0."""
    assert claim_test(0.0, 0.0, 4, "better") == (1.0, "disagrees")
    assert claim_test(0.0, 0.0, 4, "similar") == (0.0, "agrees")  # [0, 0] lies inside ±1
    assert claim_test(2.0, 0.0, 4, "better")[0] == 0.0
