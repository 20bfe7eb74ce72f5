"""Keyword metrics, the TF-IDF extractive reference, CSL keyword targets and the CSL abstract corpus."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from attnlab.tasks import get_task
from attnlab.tasks.generation_data import merge_keyword_rows
from attnlab.tasks.keywords import (
    TfidfKeywords,
    char_ngrams,
    keyword_prf,
    keyword_scores,
    rouge_l,
    split_keywords,
)
from attnlab.tasks.loading import load_examples


def test_split_keywords_keeps_ascii_commas_inside_keywords_and_normalises() -> None:
    # CSL keywords such as "疾病模型,动物" contain the ASCII comma: only "，" / "；" / ";" separate
    assert split_keywords("水声学，FFT，疾病模型,动物；Ｘ线 成像，水声学") == ["水声学", "fft", "疾病模型,动物", "x线成像"]
    assert split_keywords("，，") == []


def test_keyword_prf_by_hand() -> None:
    # tp = 1 + 1 (case and spaces do not matter), predicted 2 + 3 (the duplicate counts once), gold 3 + 1
    p, r, f = keyword_prf(["a，b", "c，D ，d，e"], ["a，x，y", "d"])
    assert (p, r, f) == pytest.approx((2 / 5, 2 / 4, 2 * (2 / 5) * (2 / 4) / (2 / 5 + 2 / 4)))
    assert keyword_prf([""], ["a"]) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        keyword_prf(["a"], [])


def test_rouge_l_by_hand_on_normalised_text() -> None:
    assert rouge_l("abcd", "abd") == pytest.approx(2 * (3 / 4) * 1.0 / (3 / 4 + 1))  # LCS "abd"
    assert rouge_l("F F T", "fft") == 1.0  # the tokenizer lower-cases and its decoder spaces out
    assert rouge_l("xyz", "abc") == 0.0
    scores = keyword_scores(["a，b"], ["a，c"], "val/tfidf_")
    assert scores["val/tfidf_keyword_f1"] == pytest.approx(0.5) and set(scores) == {
        "val/tfidf_keyword_precision", "val/tfidf_keyword_recall", "val/tfidf_keyword_f1", "val/tfidf_rouge_l"}


def test_char_ngrams_do_not_cross_punctuation() -> None:
    assert char_ngrams("甲乙丙，丁戊", (2,)) == ["甲乙", "乙丙", "丁戊"]
    assert char_ngrams("AB(CD)", (2, 3)) == ["ab", "cd"]


def test_tfidf_reference_by_hand() -> None:
    ref = TfidfKeywords(["甲乙丙", "甲乙丁", "戊己庚"], sizes=(2,), k=2)
    assert ref.n_docs == 3 and ref.df["甲乙"] == 2 and ref.df["乙丙"] == 1
    assert ref.idf("乙丙") == pytest.approx(math.log(4 / 2)) and ref.idf("丙丁") == pytest.approx(math.log(4))
    # "丙丁丙丁乙丙": tf·idf 丙丁 2·log 4, 丁丙 = 丁乙 = log 4 (tie: the smaller string first), 乙丙 log 2
    assert ref.extract("丙丁丙丁乙丙") == ["丙丁", "丁丙"]
    assert ref("丙丁丙丁乙丙") == "丙丁，丁丙"
    # equal scores, alphabetical: 形成, 束形, (束形成 contains 形成: skipped), 波束
    assert TfidfKeywords(["无关"], sizes=(2, 3), k=3).extract("波束形成") == ["形成", "束形", "波束"]


def test_merge_keyword_rows_takes_the_union_in_order_of_occurrence() -> None:
    rows = [{"text_a": "用遗传算法优化波束形成", "text_b": "波束形成，遗传算法", "label": 1},
            {"text_a": "用遗传算法优化波束形成", "text_b": "声呐，遗传算法", "label": 1},
            {"text_a": "另一篇", "text_b": "甲", "label": 1}]
    merged = merge_keyword_rows(rows)
    assert [m["text_b"] for m in merged] == ["遗传算法，波束形成，声呐", "甲"]  # absent keywords last


def test_csl_abstract_corpus_holds_each_train_abstract_once(data_root: Path) -> None:
    spec = get_task("lm/csl_abstracts")
    train = load_examples(spec, "train", data_root)
    texts = [r["text_a"] for r in train]
    assert len(texts) == len(set(texts)) == 3954
    dev = {r["text_a"] for r in load_examples(spec, "validation", data_root)}
    assert len(dev) == 592 and not dev & set(texts)
