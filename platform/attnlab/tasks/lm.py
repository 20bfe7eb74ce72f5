"""Language-modelling corpora: WikiText-2 and WikiText-103 (Merity et al., 2016), Song-dynasty ci poems, and the
CLUE CSL paper abstracts (each distinct abstract once; CSL's labels and keywords are not read), the
in-domain text for pretraining the CSL keyword generator.

Examples are documents `{"text_a": str}`: one non-blank line of WikiText-2 (headings included,
as in the usual word-level setup), or one ci poem with its lines joined. The poem corpus has no
official split: a poem is validation when sha256(text) mod 20 == 0 (about 1 in 20), else train.
Hashing the text, not counting poems, keeps the ~1% exact duplicates in the corpus on one side. WikiText's `<unk>` becomes `[UNK]`, so the tokenizer reads it as its
own unknown token instead of three pieces `<`, `unk`, `>`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attnlab.tasks.records import Example
from attnlab.tasks.spec import DataError, TaskSpec, register

SONGCI_VALIDATION_EVERY = 20

WIKITEXT_URL = "https://blog.salesforceairesearch.com/the-wikitext-long-term-dependency-language-modeling-dataset/"


def _wikitext(size: str, max_length: int) -> TaskSpec:
    """lm/wikitext<size>: the tokenized v1 release, `wikitext-<size>/{train,valid,test}.txt` under the data root or
    Salesforce/wikitext `wikitext-<size>-v1` on the hub."""
    return TaskSpec(
        name=f"lm/wikitext{size}", benchmark="lm", language="en", text_fields=("text_a",), labels=(),
        metrics=("perplexity",), primary_metric="perplexity",
        splits={split: f"wikitext-{size}/{file}.txt" for split, file in
                (("train", "train"), ("validation", "valid"), ("test", "test"))},
        hub_path="Salesforce/wikitext", hub_config=f"wikitext-{size}-v1", max_length=max_length,
        release_url=WIKITEXT_URL,
    )


register(_wikitext("2", 256))
register(_wikitext("103", 512))  # the gpu presets' pretraining corpus (~100M words): hub, or placed under the data root
register(
    TaskSpec(
        name="lm/songci",
        benchmark="lm",
        language="zh",
        text_fields=("text_a",),
        labels=(),
        metrics=("perplexity",),
        primary_metric="perplexity",
        splits={"train": "chinese-poetry-songci", "validation": "chinese-poetry-songci"},
        max_length=128,
        release_url="https://github.com/chinese-poetry/chinese-poetry (folder 宋词, files ci.song.*.json)",
    )
)

register(
    TaskSpec(
        name="lm/csl_abstracts",
        benchmark="lm",
        language="zh",
        text_fields=("text_a",),
        labels=(),
        metrics=("perplexity",),
        primary_metric="perplexity",
        splits={"train": "../clue/csl/train.json", "validation": "../clue/csl/dev.json"},
        max_length=128,
        release_url="https://github.com/CLUEbenchmark/CLUE (CSL, field abst)",
    )
)


WIKITEXT_UNK = "<unk>"


def _read_lines(path: Path) -> list[Example]:
    with path.open(encoding="utf-8") as handle:
        return [{"text_a": line.strip().replace(WIKITEXT_UNK, "[UNK]")} for line in handle if line.strip()]


def _file_number(path: Path) -> int:
    match = re.fullmatch(r"ci\.song\.(\d+)\.json", path.name)
    return int(match.group(1)) if match else -1


def songci_is_validation(text: str) -> bool:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % SONGCI_VALIDATION_EVERY == 0


def read_songci(folder: Path, split: str) -> list[Example]:
    files = sorted((p for p in folder.glob("ci.song.*.json") if _file_number(p) >= 0), key=_file_number)
    if not files:
        raise DataError(f"{folder}: no ci.song.<n>.json files found")
    examples: list[Example] = []
    for path in files:
        try:
            poems = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DataError(f"{path}, line {error.lineno}: not valid JSON ({error.msg})") from None
        if not isinstance(poems, list):
            raise DataError(f"{path}: expected a JSON array of poems")
        for number, poem in enumerate(poems):
            lines = poem.get("paragraphs") if isinstance(poem, dict) else None
            if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
                raise DataError(f"{path}, poem {number}: expected a 'paragraphs' list of strings")
            text = "".join(x.strip() for x in lines)
            if not text:
                continue
            if songci_is_validation(text) == (split == "validation"):
                examples.append({"text_a": text})
    return examples


def read_abstracts(path: Path) -> list[Example]:
    seen: dict[str, None] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}, line {number}: not valid JSON ({error.msg})") from None
            if not isinstance(record, dict) or not isinstance(record.get("abst"), str):
                raise DataError(f"{path}, line {number}: expected an object with a string 'abst'")
            seen.setdefault(record["abst"].strip(), None)
    return [{"text_a": text} for text in seen if text]


def read_local(spec: TaskSpec, path: Path, split: str) -> list[Example]:
    if spec.name == "lm/songci":
        return read_songci(path, split)
    if spec.name == "lm/csl_abstracts":
        return read_abstracts(path)
    return _read_lines(path)


def hub_texts(spec: TaskSpec, record: Mapping[str, Any]) -> tuple[str, ...]:
    return (str(record["text"]).strip().replace(WIKITEXT_UNK, "[UNK]"),)
