"""Trivial baselines for the reading-comprehension tasks, scored by the same metric code as the models
(`build_metrics` → the official CMRC 2018 EM / F1, accuracy), so that a from-scratch model's number
has a floor to be read against:

- CMRC 2018 "best overlap sentence": the context sentence (cut after 。！？；!?; or a line break)
  sharing the most distinct characters with the question (punctuation and spaces not counted;
  ties → the earlier sentence).
- C3 / ChID "most frequent position": the answer position most frequent in train, among the positions
  the question has; "longest choice": the longest choice (ties → the first); and the expected accuracy
  of a uniform random guess, Σ 1/#choices over the questions.

`attnlab baseline TASK --out DIR` writes one JSON file per task, which names the command that made it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from attnlab.tasks.loading import is_labelled, load_examples
from attnlab.tasks.metrics import build_metrics, task_score
from attnlab.tasks.mrc_metrics import PUNCTUATION
from attnlab.tasks.records import Example
from attnlab.tasks.spec import TaskSpec, get_task

DESCRIPTIONS = {
    "best_overlap_sentence": "the context sentence sharing the most distinct characters with the question",
    "most_frequent_position": "the answer position most frequent in train, among the question's positions",
    "longest_choice": "the longest choice (ties: the first)",
    "uniform_random_expected": "expected accuracy of a uniform random guess (mean of 1/#choices)",
}
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;\n])")
_NOT_COUNTED = PUNCTUATION | set("，。！？；、,.!?;:：\"'“”‘’（）()《》 \t\r\n")


def sentences(context: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(context) if s.strip()] or [context]


def best_overlap_sentence(question: str, context: str) -> str:
    wanted = set(question) - _NOT_COUNTED
    best, best_overlap = "", -1
    for sentence in sentences(context):
        overlap = len(wanted & set(sentence))
        if overlap > best_overlap:
            best, best_overlap = sentence, overlap
    return best.strip()


def most_frequent_position(train: Sequence[Example]) -> list[int]:
    """Answer positions ranked by their frequency in train (most frequent first; ties → lower)."""
    counts = Counter(int(e["label"]) for e in train)
    return sorted(counts, key=lambda p: (-counts[p], p))


def predict_position(ranking: Sequence[int], n_choices: int) -> int:
    return next((p for p in ranking if p < n_choices), 0)


def longest_choice(choices: Sequence[str]) -> int:
    return max(range(len(choices)), key=lambda i: (len(choices[i]), -i))


def _score(spec: TaskSpec, preds: Any, targets: Any) -> dict[str, float]:
    metrics = build_metrics(spec)
    metrics.update(preds, targets)
    values = {k: float(v) for k, v in metrics.compute().items()}
    return {**values, "score": task_score(spec, values)}


def cmrc_baselines(spec: TaskSpec, examples: Sequence[Example]) -> dict[str, dict[str, float]]:
    preds = [best_overlap_sentence(e["question"], e["context"]) for e in examples]
    return {"best_overlap_sentence": _score(spec, preds, [e["answers"] for e in examples])}


def choice_baselines(spec: TaskSpec, examples: Sequence[Example], train: Sequence[Example]) -> dict[
        str, dict[str, float]]:
    ranking = most_frequent_position(train)
    labels = torch.tensor([e["label"] for e in examples])
    out = {
        "most_frequent_position": _score(spec, torch.tensor([predict_position(ranking, len(e["choices"]))
                                                             for e in examples]), labels),
        "longest_choice": _score(spec, torch.tensor([longest_choice(e["choices"]) for e in examples]), labels),
    }
    chance = sum(1 / len(e["choices"]) for e in examples) / max(1, len(examples))
    out["uniform_random_expected"] = {"accuracy": chance, "score": 100 * chance}
    out["most_frequent_position"]["train_position_ranking"] = ranking  # type: ignore[assignment]
    return out


def eval_splits(spec: TaskSpec) -> list[str]:
    """The labelled splits other than train (CMRC: validation, trial; C3: validation, labelled_test1.0)."""
    return [s for s in spec.splits if s != "train" and is_labelled(spec, s)]


def run_baselines(task: TaskSpec | str, data_root: str | Path | None = None,
                  splits: Sequence[str] | None = None) -> dict[str, Any]:
    spec = get_task(task)
    if not spec.is_reading_comprehension:
        raise ValueError(f"{spec.name}: trivial baselines are defined for the reading-comprehension tasks only")
    train = load_examples(spec, "train", data_root) if spec.kind == "multiple_choice" else []
    results: dict[str, dict[str, Any]] = {}
    for split in splits or eval_splits(spec):
        examples = load_examples(spec, split, data_root)
        by_name = cmrc_baselines(spec, examples) if spec.kind == "span_extraction" else choice_baselines(
            spec, examples, train)
        results[split] = {"questions": len(examples), "baselines": by_name}
    names = {name for entry in results.values() for name in entry["baselines"]}
    return {"task": spec.name, "metrics_code": "attnlab.tasks.metrics.build_metrics + task_score (as in training)",
            "baselines": {n: DESCRIPTIONS[n] for n in sorted(names)}, "splits": results}


def write_baselines(result: dict[str, Any], out_dir: str | Path, command: str) -> Path:
    import attnlab

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"baseline-{result['task'].replace('/', '_')}.json"
    stamped = {"regenerate": command, "attnlab_version": attnlab.__version__,
               "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), **result}
    path.write_text(json.dumps(stamped, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def format_baselines(result: dict[str, Any]) -> str:
    lines = [f"Trivial baselines on {result['task']} (score = task score in percent)"]
    for split, entry in result["splits"].items():
        for name, values in entry["baselines"].items():
            shown = ", ".join(f"{k}={v:.4f}" for k, v in values.items() if isinstance(v, float))
            lines.append(f"  {split:<18}{name:<26}{shown}")
    return "\n".join(lines)
