"""The CMRC 2018 metric against hand-worked cases and an independent re-implementation, and the CLUE
reading-comprehension / overall averages."""

from __future__ import annotations

import difflib
import random
import re
from pathlib import Path

import pytest

from attnlab.tasks.loading import load_examples
from attnlab.tasks.metrics import build_metrics, clue_overall_score, clue_rc_score, clue_score, task_score
from attnlab.tasks.mrc_metrics import cmrc_em, cmrc_f1, cmrc_scores, mixed_segmentation
from attnlab.tasks.span_data import span_predictions

# (prediction, references, EM, F1), each worked out by hand.
HAND_WORKED = [
    ("北京。", ["北京"], 1.0, 1.0),  # Chinese full stop removed
    ("“北京”", ["《北京》"], 1.0, 1.0),  # quotes and book-title marks removed
    ("北京市", ["北京"], 0.0, 0.8),  # common run 2: P = 2/3, R = 1
    ("北京市", ["上海", "北京市"], 1.0, 1.0),  # max over references
    ("", ["北京"], 0.0, 0.0),  # empty prediction
    ("甲乙丙丁", ["甲丙丁"], 0.0, 4 / 7),  # contiguous run 丙丁 (2), not the subsequence 甲丙丁: P = 1/2, R = 2/3
    ("丙丁", ["甲乙", "乙丙丁"], 0.0, 0.8),  # P = 1, R = 2/3 against the 2nd reference
    ("2008年 Beijing", ["2008年北京"], 0.0, 4 / 7),  # segments 2008|年|beijing vs 2008|年|北|京
    ("北 京", ["北京"], 0.0, 1.0),  # the script keeps inner spaces for EM; segmentation drops them
    ("  Apple，", ["apple"], 1.0, 1.0),  # lower-cased, ends stripped, ， removed
    ("约1.5万人", ["1.5万"], 0.0, 2 / 3),  # 1.5 stays one word: 约|1.5|万|人 vs 1.5|万 → P = 1/2, R = 1
]


@pytest.mark.parametrize(("prediction", "references", "em", "f1"), HAND_WORKED)
def test_hand_worked_cases(prediction: str, references: list[str], em: float, f1: float) -> None:
    assert cmrc_em(prediction, references) == em
    assert cmrc_f1(prediction, references) == pytest.approx(f1)


def test_segmentation() -> None:
    assert mixed_segmentation("2008年 Beijing-Olympics！") == ["2008", "年", "beijing", "-", "olympics", "！"]
    # as in the script, a removed mark does not end the word it stood in
    assert mixed_segmentation("2008年 Beijing-Olympics！", remove_punctuation=True) == ["2008", "年", "beijingolympics"]


def test_answer_spanning_a_window_boundary() -> None:
    """Window 1 ends inside the answer 上海交通大学 (chars 2–8); window 2 holds all of it. The best-scoring
    window's span wins; had window 1 won, its cut span 上海交通 would score F1 = 2·1·(4/6)/(1 + 4/6) = 0.8."""
    example = {"context": "位于上海交通大学的图书馆", "answers": ["上海交通大学"]}
    cut, whole = (0, 1.5, 2, 6), (0, 2.5, 2, 8)  # (question, score, char start, char end) per window
    assert span_predictions([example], [cut, whole]) == ["上海交通大学"]
    assert span_predictions([example], [(0, 3.0, 2, 6), whole]) == ["上海交通"]
    assert cmrc_f1("上海交通", example["answers"]) == pytest.approx(0.8)
    assert span_predictions([example, example], [cut]) == ["上海交通", ""]  # no window: empty prediction


# ---- an independent re-implementation, written differently from attnlab.tasks.mrc_metrics ------------------
_PUNCT = "-:_*^/\\~`+=，。：？！“”；’《》·、「」（）－～『』"
_CJK_PIECE = re.compile(r"([\u4e00-\u9fa5])")


def _reference_segments(text: str) -> list[str]:
    """F1 segments: punctuation deleted first, then each CJK character alone, other runs split into words."""
    out = []
    text = "".join(c for c in text.lower().strip() if c not in _PUNCT)
    for i, piece in enumerate(_CJK_PIECE.split(text)):
        if i % 2:  # odd pieces are the captured CJK characters
            out.append(piece)
        else:
            for word in piece.split():
                out += re.findall(r"\w+(?:[.,'’]\w+)*|[^\w\s]", word)
    return out


def _reference_f1(prediction: str, references: list[str]) -> float:
    pred = _reference_segments(prediction)
    best = 0.0
    for reference in references:
        ref = _reference_segments(reference)
        match = difflib.SequenceMatcher(None, ref, pred, autojunk=False).find_longest_match(0, len(ref), 0, len(pred))
        if match.size:
            p, r = match.size / len(pred), match.size / len(ref)
            best = max(best, 2 * p * r / (p + r))
    return best


def _reference_em(prediction: str, references: list[str]) -> float:
    norm = lambda s: re.sub("[" + re.escape(_PUNCT) + "]", "", s.lower().strip())  # noqa: E731
    return float(norm(prediction) in {norm(r) for r in references})


def test_matches_an_independent_implementation_on_real_dev_rows(data_root: Path) -> None:
    rng = random.Random(0)
    dev = load_examples("clue/cmrc2018", "validation", data_root, max_examples=400, seed=0)
    predictions, references = [], []
    for example in dev:
        context, (start, end) = example["context"], next(s for s in example["spans"] if s)
        a, b = max(0, start + rng.randint(-6, 3)), min(len(context), end + rng.randint(-3, 6))
        predictions.append(context[a:b] if rng.random() < 0.8 else example["answers"][0])
        references.append(example["answers"])
    predictions[:3] = ["", " ", "！"]
    ours = [(cmrc_em(p, r), cmrc_f1(p, r)) for p, r in zip(predictions, references)]
    theirs = [(_reference_em(p, r), _reference_f1(p, r)) for p, r in zip(predictions, references)]
    assert [x for pair in ours for x in pair] == pytest.approx([x for pair in theirs for x in pair])
    assert 0 < sum(em for em, _ in ours) < len(ours)  # the sample has hits and misses
    expected = {"exact_match": sum(e for e, _ in theirs) / len(dev), "char_f1": sum(f for _, f in theirs) / len(dev)}
    assert cmrc_scores(predictions, references) == pytest.approx(expected)
    metrics = build_metrics("clue/cmrc2018", prefix="val/")
    for i in range(0, len(dev), 64):  # batches accumulate into the same means
        metrics.update(predictions[i : i + 64], references[i : i + 64])
    values = {k: float(v) for k, v in metrics.compute().items()}
    assert values == pytest.approx({f"val/{k}": v for k, v in expected.items()}, abs=1e-6)
    assert task_score("clue/cmrc2018", values) == pytest.approx(50 * (expected["exact_match"] + expected["char_f1"]))


def test_clue_reading_comprehension_and_overall_averages() -> None:
    per_task = {"clue/afqmc": {"accuracy": 0.70}, "clue/tnews": {"accuracy": 0.50},
                "clue/cmrc2018": {"exact_match": 0.20, "char_f1": 0.40}, "clue/c3": {"accuracy": 0.36},
                "clue/chid_fewclue": {"accuracy": 0.99}, "glue/sst2": {"accuracy": 0.1}}
    assert clue_score(per_task) == pytest.approx(60.0)  # classification only, as before
    assert clue_rc_score(per_task) == pytest.approx((30.0 + 36.0) / 2)
    assert clue_overall_score(per_task) == pytest.approx((70 + 50 + 30 + 36) / 4)  # each task once; no ChID
    with pytest.raises(ValueError, match="missing"):
        clue_rc_score({"clue/c3": {"accuracy": 0.3}}, require_all=True)
