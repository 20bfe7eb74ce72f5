"""The official CMRC 2018 metric (Cui et al., 2019; `cmrc2018_evaluate.py`, "v5 - special"), and its
torchmetrics wrappers.

Per question, against every reference answer, keeping the best:
- EM: 1 if prediction and reference are equal after lower-casing, stripping the ends and removing the
  script's punctuation list (`PUNCTUATION`; inner whitespace is kept, as in the script);
- F1: both are segmented (each CJK character, and each punctuation mark of the list, is one segment;
  runs of other characters are split into words), the punctuation segments are dropped, and
  precision/recall come from the longest common *contiguous* run of segments (the script's `find_lcs`).
The task's EM and F1 are the means over all questions (an empty prediction scores 0); the CMRC score
is (EM + F1) / 2. The script splits non-CJK runs with `nltk.word_tokenize`; here a regular expression
does (words with inner `.`/`,`/`'` kept whole, every other non-space character alone), which differs
only on rare Latin-text cases such as a trailing abbreviation period ("U.S.").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

# The script's `sp_char` list. It also lists "……" (two characters), which a per-character test never
# matches, so a single "…" is kept, exactly as the script does.
PUNCTUATION = frozenset("-:_*^/\\~`+=，。：？！“”；’《》·、「」（）－～『』")
_CJK = re.compile(r"[\u4e00-\u9fa5]")
_WORDS = re.compile(r"\w+(?:[.,'’]\w+)*|\S")


def _latin_words(run: str) -> list[str]:
    return _WORDS.findall(run)


def mixed_segmentation(text: str, remove_punctuation: bool = False) -> list[str]:
    """CJK characters and listed punctuation one segment each; other runs split into words."""
    segments: list[str] = []
    run = ""
    for char in text.lower().strip():
        if remove_punctuation and char in PUNCTUATION:
            continue
        if _CJK.match(char) or char in PUNCTUATION:
            segments += _latin_words(run)
            run = ""
            segments.append(char)
        else:
            run += char
    return segments + _latin_words(run)


def strip_punctuation(text: str) -> str:
    return "".join(c for c in text.lower().strip() if c not in PUNCTUATION)


def longest_common_run(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common contiguous subsequence (substring) of two segment lists."""
    best = 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b):
            if x == y:
                cur[j + 1] = prev[j] + 1
                best = max(best, cur[j + 1])
        prev = cur
    return best


def cmrc_f1(prediction: str, references: Sequence[str]) -> float:
    pred = mixed_segmentation(prediction, remove_punctuation=True)
    scores = [0.0]
    for reference in references:
        ref = mixed_segmentation(reference, remove_punctuation=True)
        common = longest_common_run(ref, pred)
        if common:
            precision, recall = common / len(pred), common / len(ref)
            scores.append(2 * precision * recall / (precision + recall))
    return max(scores)


def cmrc_em(prediction: str, references: Sequence[str]) -> float:
    pred = strip_punctuation(prediction)
    return float(any(strip_punctuation(r) == pred for r in references))


def cmrc_scores(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """{"exact_match", "char_f1"} as fractions (the script reports them × 100) over all questions."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} questions")
    n = max(1, len(predictions))
    return {"exact_match": sum(cmrc_em(p, r) for p, r in zip(predictions, references)) / n,
            "char_f1": sum(cmrc_f1(p, r) for p, r in zip(predictions, references)) / n}


class _CMRCMetric(Metric):
    """Mean of a per-question score over the questions seen: update(predicted texts, reference lists)."""

    full_state_update = False
    higher_is_better = True
    total: Tensor
    count: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def score(self, prediction: str, references: Sequence[str]) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def update(self, preds: Sequence[str], target: Sequence[Sequence[str]]) -> None:
        if len(preds) != len(target):
            raise ValueError(f"{len(preds)} predictions for {len(target)} questions")
        self.total += sum(self.score(p, r) for p, r in zip(preds, target))
        self.count += len(preds)

    def compute(self) -> Tensor:
        return (self.total / self.count.clamp(min=1)).float()


class CMRCExactMatch(_CMRCMetric):
    def score(self, prediction: str, references: Sequence[str]) -> float:
        return cmrc_em(prediction, references)


class CMRCCharF1(_CMRCMetric):
    def score(self, prediction: str, references: Sequence[str]) -> float:
        return cmrc_f1(prediction, references)
