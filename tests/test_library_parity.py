"""Our statistics against maintained libraries on the same inputs.

ROUGE-L: ours equals torchmetrics' once torchmetrics is given character tokens and our normalisation. (We keep
our own: torchmetrics' default tokenizer splits on whitespace and its default normaliser deletes everything but
[a-z0-9], so every Chinese keyword would score 0; with both overridden only the LCS is left, which torchmetrics
computes in float32 tensors per pair.)"""

from __future__ import annotations

import pytest
from torchmetrics.functional.text.rouge import rouge_score

from attnlab.tasks.keywords import normalize, rouge_l

PAIRS = [("深度学习，神经网络", "神经网络，深度 学习"), ("Attention Is All", "attention is all you need"),
         ("", "abc"), ("图像分割", "图像分割"), ("ＡＢＣ１２", "abc12 x"), ("卷积 神经 网络", "循环神经网络模型")]


@pytest.mark.parametrize(("pred", "gold"), PAIRS)
def test_rouge_l_matches_torchmetrics_on_characters(pred: str, gold: str) -> None:
    reference = rouge_score(pred, gold, rouge_keys="rougeL", tokenizer=list, normalizer=normalize)
    assert rouge_l(pred, gold) == pytest.approx(float(reference["rougeL_fmeasure"]), abs=1e-6)


def test_paired_t_interval_matches_scipy_ttest() -> None:
    """report.stats.t_interval is scipy's one-sample t interval of the paired differences, checked against the
    textbook mean ± t_{0.975, n−1}·sd/√n; identical differences give a zero-width interval."""
    import math

    from scipy.stats import t as student_t
    from scipy.stats import ttest_1samp

    from attnlab.report.stats import t_interval

    for diffs in ([2.5, 2.5, 1.0], [0.1, -0.4, 0.3, 0.9], [-3.0, -1.0]):
        mean, lo, hi, n = t_interval(diffs)
        ci = ttest_1samp(diffs, 0.0).confidence_interval(0.95)
        assert (lo, hi) == pytest.approx((ci.low, ci.high), abs=1e-12) and n == len(diffs)
        sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
        half = student_t.ppf(0.975, n - 1) * sd / math.sqrt(n)
        assert (lo, hi) == pytest.approx((mean - half, mean + half), abs=1e-12)
    assert t_interval([1.0, 1.0, 1.0])[1:3] == (1.0, 1.0)
