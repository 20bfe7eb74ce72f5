"""Per-task metrics (torchmetrics) and the GLUE / CLUE aggregate scores.

`build_metrics(spec)` returns a MetricCollection keyed by `spec.metrics` ("accuracy", "f1", "mcc",
"pearson", "spearman", "perplexity"). Classification metrics take either logits (N, C) or class
ids (N,); regression metrics take scores (N,) or (N, 1); targets are (N,). F1 and MCC are binary,
with class 1 (e.g. MRPC "equivalent", CoLA "acceptable") as the positive class. CMRC 2018's
"exact_match" / "char_f1" (official script, see `mrc_metrics.py`) take predicted texts and lists of
reference texts; C3's accuracy takes (B, C) choice logits or answer positions.

CLUE scores (all on dev, in percent; a task's score is `task_score`, e.g. CMRC = (EM + F1) / 2):
- `clue_score`: the classification average, as before (AFQMC, TNEWS, IFLYTEK, OCNLI/CMNLI, WSC, CSL);
- `clue_rc_score`: the reading-comprehension average over CMRC 2018 and C3;
- `clue_overall_score`: every counted CLUE task given (classification and reading comprehension) once,
  unweighted — CLUE 1.0's convention of averaging all its tasks. CLUE 1.0 also has ChID, which is absent
  here, so this is not CLUE 1.0's exact task set; the FewCLUE ChID stand-in is never counted.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import BinaryF1Score, BinaryMatthewsCorrCoef, MulticlassAccuracy
from torchmetrics.regression import PearsonCorrCoef, SpearmanCorrCoef
from torchmetrics.text import Perplexity

from attnlab.tasks.mrc_metrics import CMRCCharF1, CMRCExactMatch
from attnlab.tasks.spec import CLUE_RC_TASKS, CLUE_SCORE_TASKS, GLUE_SCORE_TASKS, TaskSpec, get_task


def _class_ids(preds: Tensor) -> Tensor:
    return preds.argmax(dim=-1) if preds.ndim == 2 else preds


class BinaryF1(BinaryF1Score):
    def update(self, preds: Tensor, target: Tensor) -> None:
        super().update(_class_ids(preds), target)


class BinaryMCC(BinaryMatthewsCorrCoef):
    def update(self, preds: Tensor, target: Tensor) -> None:
        super().update(_class_ids(preds), target)


class Pearson(PearsonCorrCoef):
    def update(self, preds: Tensor, target: Tensor) -> None:
        super().update(preds.reshape(-1).float(), target.reshape(-1).float())


class Spearman(SpearmanCorrCoef):
    def update(self, preds: Tensor, target: Tensor) -> None:
        super().update(preds.reshape(-1).float(), target.reshape(-1).float())


def _metric(spec: TaskSpec, name: str) -> Metric:
    binary = spec.num_labels == 2
    if name == "accuracy":
        return MulticlassAccuracy(num_classes=spec.num_labels, average="micro")
    if name in ("f1", "mcc") and not binary:
        raise ValueError(f"{spec.name}: {name} is defined here for binary tasks only")
    if name == "f1":
        return BinaryF1()
    if name == "mcc":
        return BinaryMCC()
    if name == "pearson":
        return Pearson()
    if name == "spearman":
        with warnings.catch_warnings():  # it keeps all predictions: intended (STS-B dev has 1500)
            warnings.filterwarnings("ignore", message=".*will save all targets and predictions")
            return Spearman()
    if name == "perplexity":
        return Perplexity(ignore_index=-100)  # logits (B, T, V) already shifted against targets (B, T)
    if name == "exact_match":
        return CMRCExactMatch()
    if name == "char_f1":
        return CMRCCharF1()
    raise ValueError(f"{spec.name}: unknown metric {name!r}")


def build_metrics(task: TaskSpec | str, prefix: str = "") -> MetricCollection:
    """Metrics of a task, keyed `prefix + name` (e.g. prefix="val/" gives "val/accuracy")."""
    spec = get_task(task)
    return MetricCollection({name: _metric(spec, name) for name in spec.metrics}, prefix=prefix or None)


def _values_for(spec: TaskSpec, metrics: Mapping[str, float], name: str) -> list[float]:
    # Accept "accuracy", "val/accuracy", "validation_matched/accuracy", "val/validation_matched/accuracy".
    scopes = {"val", "validation", *spec.val_splits}
    values = []
    for key, value in metrics.items():
        *scope, metric = key.split("/")
        if metric == name and all(part in scopes for part in scope):
            values.append(float(value))
    return values


def task_score(task: TaskSpec | str, metrics: Mapping[str, float]) -> float:
    """A task's leaderboard score in percent: 100 × the mean of its metrics.

    Metric values are fractions (accuracy 0.84) or correlations. A metric reported for several
    validation splits (MNLI: "validation_matched/accuracy", "validation_mismatched/accuracy") counts
    as the mean over those splits, so MNLI scores (matched + mismatched) / 2.
    """
    spec = get_task(task)
    if spec.is_lm:
        raise ValueError(f"{spec.name} is a language-modelling corpus; it has no benchmark score")
    means = []
    for name in spec.metrics:
        values = _values_for(spec, metrics, name)
        if not values:
            raise ValueError(f"{spec.name}: no value for metric {name!r} in {sorted(metrics)}")
        means.append(sum(values) / len(values))
    return 100.0 * sum(means) / len(means)


def _benchmark_score(
    per_task: Mapping[str, Mapping[str, float]], benchmark: str, counted: tuple[str, ...], require_all: bool
) -> float:
    specs = {get_task(name).name: (get_task(name), scores) for name, scores in per_task.items()}
    chosen = {n: v for n, v in specs.items() if v[0].benchmark == benchmark and v[0].short_name in counted}
    missing = [t for t in counted if f"{benchmark}/{t}" not in chosen]
    if require_all and missing:
        raise ValueError(f"{benchmark} score needs all of {list(counted)}; missing {missing}")
    if not chosen:
        raise ValueError(f"no {benchmark} task among {sorted(per_task)}; counted tasks: {list(counted)}")
    return sum(task_score(spec, scores) for spec, scores in chosen.values()) / len(chosen)


def glue_score(
    per_task: Mapping[str, Mapping[str, float]], include_wnli: bool = False, require_all: bool = False
) -> float:
    """GLUE macro average: the unweighted mean of `task_score` over the GLUE tasks given.

    `per_task` maps a task name ("glue/sst2" or "sst2") to its metrics ({"accuracy": 0.92}); tasks
    of other benchmarks are ignored. Convention: the BERT paper's average excludes WNLI (the
    default here); the official GLUE leaderboard includes it (include_wnli=True) and scores the
    hidden test sets, not dev. require_all=True insists on every counted task.
    """
    counted = (*GLUE_SCORE_TASKS, "wnli") if include_wnli else GLUE_SCORE_TASKS
    return _benchmark_score(per_task, "glue", counted, require_all)


def clue_score(per_task: Mapping[str, Mapping[str, float]], require_all: bool = False) -> float:
    """CLUE classification average: the mean accuracy × 100 over the CLUE tasks given
    (AFQMC, TNEWS, IFLYTEK, OCNLI, CMNLI, CLUEWSC2020, CSL; require_all asks for the CLUE 1.1 six,
    which use OCNLI in place of CMNLI)."""
    counted = (*CLUE_SCORE_TASKS, "cmnli")
    score = _benchmark_score(per_task, "clue", counted, require_all=False)
    if require_all:
        _benchmark_score(per_task, "clue", CLUE_SCORE_TASKS, require_all=True)
    return score


CLUE_COUNTED = (*CLUE_SCORE_TASKS, "cmnli")  # classification tasks `clue_score` counts (CMNLI may stand in)


def clue_rc_score(per_task: Mapping[str, Mapping[str, float]], require_all: bool = False) -> float:
    """CLUE reading-comprehension average: the mean `task_score` over CMRC 2018 and C3 given
    (CMRC's score is (EM + F1) / 2 × 100, C3's is accuracy × 100)."""
    return _benchmark_score(per_task, "clue", CLUE_RC_TASKS, require_all)


def clue_overall_score(per_task: Mapping[str, Mapping[str, float]]) -> float:
    """Overall CLUE average: the unweighted mean `task_score` over every counted CLUE task given,
    classification and reading comprehension alike (each task once, as CLUE 1.0 averages all its
    tasks; ChID is absent here and FewCLUE's ChID stand-in is never counted)."""
    return _benchmark_score(per_task, "clue", (*CLUE_COUNTED, *CLUE_RC_TASKS), require_all=False)
