"""Reading-comprehension modules: every attention variant with a bidirectional (padding) mask trains both
heads; masked choices never win; `attnlab run` of the base configs and `attnlab baseline` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.testing import assert_close

from attnlab.attention import ATTENTION
from attnlab.cli import main
from attnlab.config import AttentionConfig, ModelConfig, TrainConfig
from attnlab.record import Record
from attnlab.tasks.choice_data import ChoiceCollator, ChoiceQuestion, choice_sequence
from attnlab.tasks.span_data import SpanCollator, encode_question
from attnlab.train.mrc import MultipleChoiceModule, SpanExtractionModule

REPO = Path(__file__).resolve().parents[2]
BIDIRECTIONAL = sorted(name for name, cls in ATTENTION.items() if "padding" in cls.supported_masks)
CLS, SEP, PAD = 2, 3, 0


def tiny_model(kind: str) -> ModelConfig:
    return ModelConfig(vocab_size=40, max_len=24, d_model=16, n_heads=4, n_layers=1, d_ff=32, dropout=0.0,
                       attention_dropout=0.0, attention=AttentionConfig(kind=kind))


def span_batch() -> dict[str, torch.Tensor]:
    """Two questions over 13- and 4-character contexts, windows of ≤ 16 tokens: 3 windows in all."""
    examples = [{"context": "abcdefghijklm", "spans": [[9, 11]]}, {"context": "wxyz", "spans": [[1, 2]]}]
    windows = []
    for index, (example, question) in enumerate(zip(examples, [[5, 6, 7], [8]], strict=True)):
        ids = [10 + i for i in range(len(example["context"]))]
        offsets = [(i, i + 1) for i in range(len(example["context"]))]
        windows += encode_question(example, index, question, ids, offsets, CLS, SEP, 16, 6)
    assert [(w.start, w.end) for w in windows] == [(0, 0), (8, 9), (4, 4)]  # the answer only in window 2
    return SpanCollator(PAD)(windows)


def choice_batch() -> dict[str, torch.Tensor]:
    """Three questions with 2, 3 and 4 choices in one batch."""
    questions = [ChoiceQuestion([choice_sequence([20 + i] * (3 + i), [30], [31 + c], CLS, SEP, 24, 8)
                                 for c in range(k)], k - 1, i) for i, k in enumerate((2, 3, 4))]
    return ChoiceCollator(PAD)(questions)


def assert_trains(module: torch.nn.Module, loss: torch.Tensor) -> None:
    assert torch.isfinite(loss)
    loss.backward()
    for name, p in module.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("kind", BIDIRECTIONAL)
def test_every_bidirectional_variant_trains_both_heads(kind: str) -> None:
    train = TrainConfig()
    span = SpanExtractionModule(tiny_model(kind), "clue/cmrc2018", train, total_steps=1)
    batch = span_batch()
    start, end = span(batch)
    assert start.shape == end.shape == batch["input_ids"].shape
    outside = ~batch["context_mask"]
    outside[:, 0] = False
    assert torch.isinf(start[outside]).all() and torch.isfinite(start[~outside]).all()
    assert_trains(span, span.loss((start, end), batch))

    choice = MultipleChoiceModule(tiny_model(kind), "clue/c3", train, total_steps=1)
    batch = choice_batch()
    logits = choice(batch)
    assert logits.shape == (3, 4)
    assert_trains(choice, choice.loss(logits, batch))


def test_masked_choices_never_win() -> None:
    module = MultipleChoiceModule(tiny_model("dot"), "clue/c3", TrainConfig(), total_steps=1).eval()
    batch = choice_batch()
    mask = batch["choice_mask"]
    for fill in (-1e30, 0.0, 1e30):  # whatever the real choices score, padding slots stay below them
        module.model.forward = lambda *a, fill=fill: torch.full((int(mask.sum()),), fill)  # type: ignore[method-assign]
        logits = module(batch)
        assert torch.isneginf(logits[~mask]).all()
        probs = logits.softmax(-1)
        assert_close(probs[~mask], torch.zeros(int((~mask).sum())))
        assert_close(probs.sum(-1), torch.ones(3))
        assert (logits.argmax(-1) < mask.sum(-1)).all()
    del module.model.forward  # the real scorer: scores land in the real slots, row-major
    scores = module.model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    assert_close(module(batch)[mask], scores)


TINY = ["model.d_model=32", "model.n_heads=2", "model.n_layers=1", "model.d_ff=64", "model.max_len=128",
        "task.max_length=128", "task.max_question_length=32", "task.vocab_size=800", "train.batch_size=8",
        "train.eval_batch_size=16", "train.max_steps=3", "task.max_train_examples=40", "task.max_eval_examples=24"]


@pytest.mark.parametrize(("config", "metrics"), [
    ("cmrc2018.yaml", ("val/exact_match", "val/char_f1", "data/train_answers_fixed", "data/validation_answers_missing")),
    ("c3.yaml", ("val/accuracy", "data/validation_sequences")),
])
def test_attnlab_run_base_config_on_a_tiny_slice(data_root: Path, tmp_path: Path, config: str,
                                                 metrics: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    extra = ["task.doc_stride=48"] if config == "cmrc2018.yaml" else []
    sets = [x for s in [*TINY, *extra] for x in ("--set", s)]
    code = main(["run", str(REPO / "sweeps/base" / config), *sets, "--data-root", str(data_root),
                 "--out", str(tmp_path / "runs"), "--no-progress"])
    assert code == 0
    (path,) = (tmp_path / "runs").glob("*.json")
    record = Record.read(path)
    assert set(metrics) <= set(record.metrics) and record.cost.train_steps == 3
    assert all(v == v for v in record.metrics.values())  # no NaN
    if config == "cmrc2018.yaml":
        m = record.metrics
        assert record.task == "clue/cmrc2018" and 0.0 <= m["val/exact_match"] <= m["val/char_f1"] <= 1.0
        assert m["val/score"] == pytest.approx(50 * (m["val/exact_match"] + m["val/char_f1"]))
        assert m["data/validation_questions"] == 24 and m["data/validation_windows"] > 24
    else:
        assert record.task == "clue/c3" and record.metrics["val/score"] == pytest.approx(
            100 * record.metrics["val/accuracy"])


def test_attnlab_baseline_writes_a_regenerable_file(data_root: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["baseline", "clue/cmrc2018", "--split", "trial", "--data-root", str(data_root),
                 "--out", str(tmp_path)]) == 0
    assert "best_overlap_sentence" in capsys.readouterr().out
    written = json.loads((tmp_path / "baseline-clue_cmrc2018.json").read_text(encoding="utf-8"))
    assert written["regenerate"].startswith("attnlab baseline clue/cmrc2018")
    trial = written["splits"]["trial"]["baselines"]["best_overlap_sentence"]
    assert written["splits"]["trial"]["questions"] == 1002
    assert trial["score"] == pytest.approx(50 * (trial["exact_match"] + trial["char_f1"]))
