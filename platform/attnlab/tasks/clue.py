"""CLUE (Xu et al., 2020): task specs and a parser for the official JSON-lines files.

Labels are strings in the CLUE files (integers in FewCLUE copies; both are accepted). OCNLI and
CMNLI rows labelled "-" (no annotator majority) are dropped, as CLUE does (OCNLI dev: 3000 -> 2950).
TNEWS codes 100-116 skip 105 and 111; they map to class ids 0..14 in code order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from attnlab.tasks.records import Example, make_example, parse_label
from attnlab.tasks.spec import DataError, TaskSpec, register

HUB_PATH = "clue/clue"
RELEASE_URL = "https://github.com/CLUEbenchmark/CLUE"
NLI3 = ("entailment", "neutral", "contradiction")
DROPPED_LABELS = {"clue/ocnli": "-", "clue/cmnli": "-"}

TNEWS_CODES = tuple(str(c) for c in (*range(100, 105), *range(106, 111), *range(112, 117)))
# labels.json spells 114 "news_kstoc"; the data rows say "news_stock".
_TNEWS_TOPICS = """story culture entertainment sports finance house car edu tech military travel world
stock agriculture game"""
TNEWS_NAMES = tuple(f"news_{topic}" for topic in _TNEWS_TOPICS.split())


def _field(record: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in record or record[key] is None:
        raise DataError(f"{where}: missing field {key!r}; found {sorted(record)}")
    return record[key]


def _text(record: Mapping[str, Any], key: str, where: str) -> str:
    value = _field(record, key, where)
    if not isinstance(value, str):
        raise DataError(f"{where}: field {key!r} should be a string, got {type(value).__name__}")
    return value.strip()


def _pair(record: Mapping[str, Any], where: str) -> tuple[str, ...]:
    return _text(record, "sentence1", where), _text(record, "sentence2", where)


def _sentence(record: Mapping[str, Any], where: str) -> tuple[str, ...]:
    return (_text(record, "sentence", where),)


def _csl(record: Mapping[str, Any], where: str) -> tuple[str, ...]:
    keywords = _field(record, "keyword", where)
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        raise DataError(f"{where}: field 'keyword' should be a list of strings")
    return _text(record, "abst", where), "，".join(k.strip() for k in keywords)


def _wsc(record: Mapping[str, Any], where: str) -> tuple[str, ...]:
    """Mark the candidate (span1) with [ ] and the pronoun (span2) with < > inside the text."""
    text = _text(record, "text", where)
    target = _field(record, "target", where)
    marks = []
    for span, (left, right) in (("span1", ("[", "]")), ("span2", ("<", ">"))):
        start = _field(target, f"{span}_index", where)
        span_text = _field(target, f"{span}_text", where)
        if not isinstance(start, int) or text[start : start + len(span_text)] != span_text:
            raise DataError(
                f"{where}: {span}_text {span_text!r} is not at {span}_index {start!r} of the text"
            )
        marks += [(start, left), (start + len(span_text), right)]
    # Insert from the right so earlier offsets stay valid; closing marks before opening ones.
    for offset, mark in sorted(marks, key=lambda m: (m[0], m[1] in "[<"), reverse=True):
        text = text[:offset] + mark + text[offset:]
    return (text,)


TextFn = Callable[[Mapping[str, Any], str], tuple[str, ...]]
TEXT_FNS: dict[str, TextFn] = {}


def _clue(
    short: str,
    texts: TextFn,
    labels: tuple[str, ...],
    *,
    codes: tuple[str, ...] = (),
    files: tuple[str, ...] = ("train", "dev", "test"),
    max_length: int = 128,
) -> None:
    split_of = {"train": "train", "dev": "validation", "test": "test"}
    spec = TaskSpec(
        name=f"clue/{short}",
        benchmark="clue",
        language="zh",
        text_fields=("text_a", "text_b")[: 2 if texts in (_pair, _csl) else 1],
        labels=labels,
        label_codes=codes,
        metrics=("accuracy",),
        primary_metric="accuracy",
        splits={split_of[f]: f"{short}/{f}.json" for f in files},
        hub_path=HUB_PATH,
        hub_config=short,
        max_length=max_length,
        release_url=RELEASE_URL,
    )
    TEXT_FNS[spec.name] = texts
    register(spec)


_clue("afqmc", _pair, ("different", "same"), codes=("0", "1"))
_clue("tnews", _sentence, TNEWS_NAMES, codes=TNEWS_CODES, max_length=64)
_clue("iflytek", _sentence, tuple(str(i) for i in range(119)), max_length=256)
_clue("ocnli", _pair, NLI3)
_clue("cmnli", _pair, NLI3)
_clue("csl", _csl, ("fake", "genuine"), codes=("0", "1"), max_length=256)
_clue("cluewsc2020", _wsc, ("false", "true"))


def read_local(spec: TaskSpec, path: Path, split: str) -> list[Example]:
    texts_of = TEXT_FNS[spec.name]
    dropped = DROPPED_LABELS.get(spec.name)
    labelled = not split.startswith("test")
    examples: list[Example] = []
    with path.open(encoding="utf-8-sig") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}, line {line_number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{where}: not valid JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
            label = None
            if labelled:
                raw = str(_field(record, "label", where))
                if raw == dropped:
                    continue
                label = parse_label(spec, raw, path, line_number)
            examples.append(make_example(spec, texts_of(record, where), label))
    return examples


def hub_texts(spec: TaskSpec, record: Mapping[str, Any]) -> tuple[str, ...]:
    return TEXT_FNS[spec.name](record, f"{spec.hub_path}/{spec.hub_config}")
