"""Keyword generation metrics and the extractive reference they are compared with.

A keyword list is one string, keywords joined by "，" (full-width comma). Only the full-width
comma and semicolons separate: CSL's own keywords contain the ASCII comma ("疾病模型,动物",
"1,2,4-三唑啉酮", 372 of the 36,276 train keywords), so splitting on "," would cut them in pieces.
Every keyword and every ROUGE-L string is normalised the same way before comparing (NFKC, lower
case, no whitespace): the model's tokenizer lower-cases and its decoder spaces out the text, and
neither may count as an error.

- `keyword_prf`: micro precision / recall / F1 of predicted keyword sets against the gold sets.
- `rouge_l`: character ROUGE-L F1 (Lin 2004, β = 1).
- `TfidfKeywords`: the extractive reference, the k highest-scoring character n-grams of the text
  by tf · idf, with idf = log((1 + N) / (1 + df)) over a fitted corpus (N documents).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

KEYWORD_SEPARATOR = "，"
_SEPARATORS = re.compile("[，；;]")
_WHITESPACE = re.compile(r"\s+")
# n-grams never cross punctuation or spaces (after NFKC, full-width marks are ASCII)
_SEGMENT_BREAK = re.compile(r"[\s,.;:!?()\[\]{}<>\"'“”‘’、。《》【】·~%=+/\\|-]+")


def normalize(text: str) -> str:
    return _WHITESPACE.sub("", unicodedata.normalize("NFKC", text).lower())


def split_keywords(text: str) -> list[str]:
    """"a，b；c" → normalised keywords in order, each once (a generated duplicate counts once)."""
    out: list[str] = []
    for raw in _SEPARATORS.split(text):
        key = normalize(raw)
        if key and key not in out:
            out.append(key)
    return out


def keyword_prf(preds: Sequence[str], golds: Sequence[str]) -> tuple[float, float, float]:
    """Micro precision / recall / F1 of predicted keyword sets against the gold sets."""
    tp = n_pred = n_gold = 0
    for p, g in zip(preds, golds, strict=True):
        ps, gs = set(split_keywords(p)), set(split_keywords(g))
        tp += len(ps & gs)
        n_pred += len(ps)
        n_gold += len(gs)
    prec = tp / n_pred if n_pred else 0.0
    rec = tp / n_gold if n_gold else 0.0
    return prec, rec, (2 * prec * rec / (prec + rec) if prec + rec else 0.0)


def lcs_length(a: str, b: str) -> int:
    prev = [0] * (len(b) + 1)
    for ca in a:
        cur = [0]
        for j, cb in enumerate(b):
            cur.append(prev[j] + 1 if ca == cb else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(pred: str, gold: str) -> float:
    """Character-level ROUGE-L F1 (Lin 2004 with β = 1) of the normalised strings."""
    pred, gold = normalize(pred), normalize(gold)
    lcs = lcs_length(pred, gold)
    if lcs == 0:
        return 0.0
    p, r = lcs / len(pred), lcs / len(gold)
    return 2 * p * r / (p + r)


def keyword_scores(preds: Sequence[str], golds: Sequence[str], prefix: str) -> dict[str, float]:
    """`{prefix}keyword_precision/recall/f1` and `{prefix}rouge_l` (mean over examples)."""
    p, r, f = keyword_prf(preds, golds)
    rouge = sum(rouge_l(a, b) for a, b in zip(preds, golds, strict=True)) / max(len(preds), 1)
    return {f"{prefix}keyword_precision": p, f"{prefix}keyword_recall": r, f"{prefix}keyword_f1": f,
            f"{prefix}rouge_l": rouge}


def char_ngrams(text: str, sizes: Sequence[int]) -> list[str]:
    grams: list[str] = []
    for segment in _SEGMENT_BREAK.split(normalize_spaced(text)):
        for n in sizes:
            grams += [segment[i : i + n] for i in range(len(segment) - n + 1)]
    return grams


def normalize_spaced(text: str) -> str:
    """NFKC + lower case, whitespace kept (it separates segments)."""
    return unicodedata.normalize("NFKC", text).lower()


class TfidfKeywords:
    """Top-k TF-IDF character n-grams as keywords. Candidates that contain or lie inside an already
    chosen keyword are skipped, so "波束形成" does not also yield "波束形" and "束形成"."""

    def __init__(self, corpus: Iterable[str], sizes: Sequence[int] = (2, 3, 4), k: int = 4) -> None:
        self.sizes, self.k = tuple(sizes), k
        self.df: Counter[str] = Counter()
        self.n_docs = 0
        for doc in corpus:
            self.df.update(set(char_ngrams(doc, self.sizes)))
            self.n_docs += 1

    def idf(self, gram: str) -> float:
        return math.log((1 + self.n_docs) / (1 + self.df[gram]))

    def extract(self, text: str) -> list[str]:
        tf = Counter(char_ngrams(text, self.sizes))
        ranked = sorted(tf, key=lambda g: (-tf[g] * self.idf(g), g))  # ties: alphabetical, deterministic
        chosen: list[str] = []
        for gram in ranked:
            if any(gram in c or c in gram for c in chosen):
                continue
            chosen.append(gram)
            if len(chosen) == self.k:
                break
        return chosen

    def __call__(self, text: str) -> str:
        return KEYWORD_SEPARATOR.join(self.extract(text))
