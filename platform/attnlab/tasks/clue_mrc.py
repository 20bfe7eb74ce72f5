"""CLUE reading comprehension: task specs and parsers for CMRC 2018, C3 and the FewCLUE ChID stand-in.

Examples are plain dicts (no `text_a`/`text_b`):
- span extraction (CMRC 2018, SQuAD v1 JSON): id, question, context, answers (reference texts),
  spans ([start, end) character offsets of each reference in the context, or None) and alignment
  ("exact" | "fixed" | "missing" per reference). As released, 221 train+dev answers have an
  `answer_start` that does not point at their text: `locate_answer` finds the occurrence nearest
  to it ("fixed"); a text that never occurs in the context (193 extra dev references, written by
  annotators in their own words, answer_start −1) is "missing": still a reference for the metric,
  never a training target.
- multiple choice (C3, FewCLUE ChID): id, document, question, choices and label (the answer's position).
  C3 trains and evaluates on its dialogue (d-) and mixed (m-) parts together, as CLUE does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attnlab.tasks.records import Example
from attnlab.tasks.spec import DataError, TaskSpec, register

HUB_PATH = "clue/clue"
CHOICE_NAMES = tuple("ABCDEFG")
# split -> files under clue/c3/ (d- and m- parts together); "labelled_test1.0" is the original C3 release
# of the CLUE 1.0 test set, with its answers (CLUE's own test1.0.json has none); "test" is CLUE 1.1's.
C3_FILES = {
    "train": ("d-train.json", "m-train.json"),
    "validation": ("d-dev.json", "m-dev.json"),
    "labelled_test1.0": ("nlpdata/c3-d-test.json", "nlpdata/c3-m-test.json"),
    "test1.0": ("test1.0.json",),
    "test": ("test1.1.json",),
}
CHID_BLANK = "#idiom#"
# Splits of the hub copies (`clue/clue`); C3's test there is CLUE 1.1's (our "test").
HUB_SPLITS = {"clue/cmrc2018": ("train", "validation", "trial", "test"), "clue/c3": ("train", "validation", "test")}

CMRC = register(TaskSpec(
    name="clue/cmrc2018", benchmark="clue", language="zh", text_fields=(), labels=(),
    metrics=("exact_match", "char_f1"), primary_metric="char_f1", kind="span_extraction",
    splits={"train": "cmrc2018/train.json", "validation": "cmrc2018/dev.json", "trial": "cmrc2018/trial.json",
            "test": "cmrc2018/test.json"},
    hub_path=HUB_PATH, hub_config="cmrc2018", max_length=256, release_url="https://github.com/ymcui/cmrc2018",
))
C3 = register(TaskSpec(
    name="clue/c3", benchmark="clue", language="zh", text_fields=(), labels=CHOICE_NAMES[:4],
    metrics=("accuracy",), primary_metric="accuracy", kind="multiple_choice",
    splits={split: "c3" for split in C3_FILES}, hub_path=HUB_PATH, hub_config="c3", max_length=256,
    release_url="https://github.com/nlpdata/c3",
))
# Not CLUE's CHID (numbered blanks, 84,709 passages, not available offline): FewCLUE's few-shot copy,
# one blank per passage and 7 candidate idioms. Never counted in a CLUE score.
CHID_FEWCLUE = register(TaskSpec(
    name="clue/chid_fewclue", benchmark="clue", language="zh", text_fields=(), labels=CHOICE_NAMES,
    metrics=("accuracy",), primary_metric="accuracy", kind="multiple_choice",
    splits={"train": "chid/fewclue/train_few_all.json", "validation": "chid/fewclue/dev_few_all.json",
            "public_test": "chid/fewclue/test_public.json"},
    max_length=256, release_url="https://github.com/CLUEbenchmark/FewCLUE",
))


def locate_answer(context: str, text: str, start: int) -> tuple[tuple[int, int] | None, str]:
    """[start, end) of the (whitespace-stripped) answer in the context and how it was found:
    "exact" (answer_start is right), "fixed" (the occurrence nearest to answer_start) or "missing"."""
    core = text.strip()
    if not core:
        return None, "missing"
    lead = len(text) - len(text.lstrip())
    if start >= 0 and context[start : start + len(text)] == text:
        return (start + lead, start + lead + len(core)), "exact"
    found = []
    at = context.find(core)
    while at >= 0:
        found.append(at)
        at = context.find(core, at + 1)
    if not found:
        return None, "missing"
    best = min(found, key=lambda pos: abs(pos - (start + lead)))
    return (best, best + len(core)), "fixed"


def cmrc_example(qid: str, question: str, context: str, answers: list[tuple[str, int]]) -> Example:
    located = [locate_answer(context, text, start) for text, start in answers]
    return {"id": qid, "question": question.strip(), "context": context,
            "answers": [text.strip() for text, _ in answers],
            "spans": [list(span) if span else None for span, _ in located],
            "alignment": [how for _, how in located]}


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from None


def _get(record: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(record, Mapping) or key not in record:
        found = sorted(record) if isinstance(record, Mapping) else type(record).__name__
        raise DataError(f"{where}: missing field {key!r}; found {found}")
    return record[key]


def read_cmrc(path: Path, labelled: bool) -> list[Example]:
    examples = []
    for a, article in enumerate(_get(_json(path), "data", str(path))):
        for p, paragraph in enumerate(_get(article, "paragraphs", f"{path}: data[{a}]")):
            where = f"{path}: data[{a}].paragraphs[{p}]"
            context = _get(paragraph, "context", where)
            for qa in _get(paragraph, "qas", where):
                answers = [(_get(x, "text", where), int(_get(x, "answer_start", where)))
                           for x in _get(qa, "answers", where)] if labelled else []
                if labelled and not answers:
                    raise DataError(f"{where}: question {qa.get('id')!r} has no answer")
                examples.append(cmrc_example(str(_get(qa, "id", where)), _get(qa, "question", where), context,
                                             answers))
    return examples


def choice_example(qid: str, document: str, question: str, choices: list[str], answer: str | int | None,
                   where: str) -> Example:
    example: Example = {"id": qid, "document": document, "question": question.strip(),
                        "choices": [c.strip() for c in choices]}
    if len(choices) < 2:  # (C3's unlabelled CLUE 1.1 test has one question with 9 choices)
        raise DataError(f"{where}: {len(choices)} choice(s); a multiple-choice question needs at least 2")
    if answer is not None:
        if isinstance(answer, int):
            label = answer
        elif answer.strip() in example["choices"]:
            label = example["choices"].index(answer.strip())
        else:
            raise DataError(f"{where}: answer {answer!r} is not one of the choices {choices}")
        if not 0 <= label < len(choices):
            raise DataError(f"{where}: answer index {label} out of range for {len(choices)} choices")
        example["label"] = label
    return example


def read_c3(folder: Path, split: str, labelled: bool) -> list[Example]:
    examples = []
    for name in C3_FILES[split]:
        path = folder / name
        if not path.is_file():
            raise DataError(f"clue/c3 split {split!r} needs {path}, which does not exist. "
                            f"Get it from {C3.release_url} or CLUE's c3_public.zip.")
        for d, entry in enumerate(_json(path)):
            where = f"{path}: entry {d}"
            if not isinstance(entry, list) or len(entry) < 2:
                raise DataError(f"{where}: expected [sentences, questions, (doc id)]")
            document = "\n".join(s.strip() for s in entry[0])
            doc_id = entry[2] if len(entry) > 2 else f"{path.stem}-{d}"
            for q, item in enumerate(entry[1]):
                qid = str(item.get("id", f"{doc_id}-{q}"))
                answer = _get(item, "answer", where) if labelled else None
                examples.append(choice_example(qid, document, _get(item, "question", where),
                                               _get(item, "choice", where), answer, where))
    return examples


def read_chid_fewclue(path: Path, labelled: bool) -> list[Example]:
    examples = []
    for line_number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {line_number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{where}: not valid JSON ({error.msg})") from None
        # The blank becomes [MASK] (a special token: one token the model can look for).
        document = str(_get(record, "content", where)).replace(CHID_BLANK, "[MASK]")
        answer = int(_get(record, "answer", where)) if labelled else None
        examples.append(choice_example(str(record.get("id", line_number)), document, "",
                                       _get(record, "candidates", where), answer, where))
    return examples


def read_local(spec: TaskSpec, path: Path, split: str, labelled: bool) -> list[Example]:
    if spec.name == CMRC.name:
        return read_cmrc(path, labelled)
    if spec.name == C3.name:
        return read_c3(path, split, labelled)
    return read_chid_fewclue(path, labelled)


def from_hub(spec: TaskSpec, record: Mapping[str, Any], labelled: bool) -> Example:
    """One `clue/clue` hub row (configs cmrc2018, c3) as an example."""
    where = f"{spec.hub_path}/{spec.hub_config}"
    if spec.name == CMRC.name:
        raw = _get(record, "answers", where)
        answers = list(zip(raw["text"], raw["answer_start"], strict=True)) if labelled else []
        return cmrc_example(str(record["id"]), record["question"], record["context"], answers)
    answer = record.get("answer") if labelled else None
    return choice_example(str(record["id"]), "\n".join(record["context"]), record["question"],
                          list(record["choice"]), answer or None, where)


def alignment_counts(examples: list[Example]) -> dict[str, int]:
    """CMRC answers by how `locate_answer` found them, and questions left without any located span."""
    counts = {"answers": 0, "answers_exact": 0, "answers_fixed": 0, "answers_missing": 0}
    for example in examples:
        for how in example["alignment"]:
            counts["answers"] += 1
            counts[f"answers_{how}"] += 1
    counts["questions_without_span"] = sum(
        1 for e in examples if e["answers"] and all(s is None for s in e["spans"]))
    return counts
