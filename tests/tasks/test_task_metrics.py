"""Task metrics and benchmark scores against scikit-learn / scipy on the same random predictions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from attnlab.tasks import TASKS, get_task
from attnlab.tasks.metrics import build_metrics, clue_score, glue_score, task_score


def _classification(num_classes: int, n: int = 257, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(num_classes, (n,), generator=generator)
    logits = torch.randn(n, num_classes, generator=generator)
    logits[torch.arange(n), target] += 0.8  # better than chance, not perfect
    return logits, target


def _run(name: str, preds: torch.Tensor, target: torch.Tensor, batches: int = 3) -> dict[str, float]:
    metrics = build_metrics(name, prefix="val/")
    for p, t in zip(preds.chunk(batches), target.chunk(batches), strict=True):  # accumulate over batches
        metrics.update(p, t)
    return {key: float(value) for key, value in metrics.compute().items()}


@pytest.mark.parametrize("name", [n for n, s in TASKS.items() if not s.is_lm])
def test_metric_keys_follow_the_spec(name: str) -> None:
    assert set(build_metrics(name, prefix="val/").keys()) == {f"val/{m}" for m in TASKS[name].metrics}


def test_mcc_for_cola() -> None:
    logits, target = _classification(2)
    result = _run("glue/cola", logits, target)
    expected = matthews_corrcoef(target.numpy(), logits.argmax(-1).numpy())
    assert result["val/mcc"] == pytest.approx(expected, abs=1e-6) and 0.1 < expected < 0.9


def test_f1_and_accuracy_for_mrpc_from_logits_and_ids() -> None:
    logits, target = _classification(2, seed=1)
    ids = logits.argmax(-1)
    expected = {"val/f1": f1_score(target.numpy(), ids.numpy()), "val/accuracy": accuracy_score(target, ids)}
    assert _run("glue/mrpc", logits, target) == pytest.approx(expected, abs=1e-6)
    assert _run("glue/mrpc", ids, target) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(("name", "num_classes"), [("glue/sst2", 2), ("clue/ocnli", 3), ("clue/tnews", 15)])
def test_accuracy(name: str, num_classes: int) -> None:
    logits, target = _classification(num_classes, seed=num_classes)
    expected = accuracy_score(target.numpy(), logits.argmax(-1).numpy())
    assert _run(name, logits, target)["val/accuracy"] == pytest.approx(expected, abs=1e-6)


def test_pearson_and_spearman_for_stsb() -> None:
    generator = torch.Generator().manual_seed(2)
    target = torch.rand(300, generator=generator) * 5
    preds = (target + torch.randn(300, generator=generator)).unsqueeze(1)  # (N, 1) regression head
    result = _run("glue/stsb", preds, target)
    assert result["val/pearson"] == pytest.approx(pearsonr(preds.squeeze(1), target).statistic, abs=1e-5)
    assert result["val/spearman"] == pytest.approx(spearmanr(preds.squeeze(1), target).statistic, abs=1e-5)


def test_perplexity_is_exp_cross_entropy() -> None:
    generator = torch.Generator().manual_seed(3)
    logits, target = (
        torch.randn(2, 7, 11, generator=generator),
        torch.randint(11, (2, 7), generator=generator),
    )
    metrics = build_metrics("lm/wikitext2")
    metrics.update(logits, target)
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, 11), target.reshape(-1)).exp()
    torch.testing.assert_close(metrics.compute()["perplexity"], expected)


def test_task_score_in_percent() -> None:
    assert task_score("glue/mrpc", {"f1": 0.9, "accuracy": 0.8}) == pytest.approx(85.0)
    assert task_score("glue/cola", {"val/mcc": 0.5}) == pytest.approx(50.0)
    mnli = {"validation_matched/accuracy": 0.84, "val/validation_mismatched/accuracy": 0.82}
    assert task_score("glue/mnli", mnli) == pytest.approx(83.0)
    with pytest.raises(ValueError, match="'spearman'"):
        task_score("glue/stsb", {"pearson": 0.8})
    with pytest.raises(ValueError, match="no value"):
        task_score("glue/sst2", {"train/accuracy": 0.99})  # training metrics never count
    with pytest.raises(ValueError, match="no benchmark score"):
        task_score("lm/wikitext2", {"perplexity": 20.0})


def _random_glue_results(seed: int) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(seed)
    results: dict[str, dict[str, float]] = {}
    for spec in TASKS.values():
        if spec.benchmark != "glue":
            continue
        if spec.short_name == "mnli":
            results[spec.name] = {f"{s}/accuracy": float(rng.uniform(0.5, 1)) for s in spec.val_splits}
        else:
            results[spec.short_name] = {m: float(rng.uniform(0.2, 1)) for m in spec.metrics}
    return results


def test_glue_score_is_the_macro_average() -> None:
    results = _random_glue_results(0)
    per_task = [100 * float(np.mean(list(metrics.values()))) for metrics in results.values()]
    wnli = 100 * results["wnli"]["accuracy"]
    with_wnli = float(np.mean(per_task))
    without_wnli = (sum(per_task) - wnli) / (len(per_task) - 1)
    assert glue_score(results) == pytest.approx(without_wnli)  # BERT-paper convention
    assert glue_score(results, include_wnli=True) == pytest.approx(with_wnli)
    assert glue_score({**results, "clue/afqmc": {"accuracy": 0.0}}) == pytest.approx(without_wnli)
    partial = {k: v for k, v in results.items() if k not in ("qqp", "glue/mnli")}
    assert not math.isclose(glue_score(partial), without_wnli)
    with pytest.raises(ValueError, match=r"missing \['qqp', 'mnli'\]"):
        glue_score(partial, require_all=True)
    with pytest.raises(ValueError, match="unknown task"):
        glue_score({"glue/sst3": {"accuracy": 0.5}})


def test_clue_score_is_mean_accuracy() -> None:
    accuracies = {"afqmc": 0.7, "tnews": 0.56, "iflytek": 0.6, "ocnli": 0.72, "cluewsc2020": 0.63, "csl": 0.8}
    results = {name: {"accuracy": acc} for name, acc in accuracies.items()}
    assert clue_score(results) == pytest.approx(100 * float(np.mean(list(accuracies.values()))))
    assert clue_score(results, require_all=True) == pytest.approx(clue_score(results))
    with pytest.raises(ValueError, match="missing"):
        clue_score({"clue/afqmc": {"accuracy": 0.7}}, require_all=True)
    assert clue_score({"clue/cmnli": {"val/accuracy": 0.8}, "glue/sst2": {"accuracy": 0.1}}) == pytest.approx(
        80
    )
    assert get_task("clue/cmnli").metrics == ("accuracy",)
