"""UniLM seq2seq on CSL and the CLN label-conditioned LM on TNEWS at smoke size; `attnlab generate`."""

from __future__ import annotations

from pathlib import Path

import pytest

from attnlab.cli import main
from attnlab.config import load_run_config
from attnlab.lit.generation import keyword_prf, rouge_l, split_keywords
from attnlab.runner import train_run

REPO = Path(__file__).resolve().parents[2]
TINY = ["model.d_model=32", "model.n_heads=2", "model.n_layers=1", "model.d_ff=64", "task.vocab_size=800",
        "train.batch_size=8", "train.max_steps=4", "task.max_train_examples=200", "task.max_eval_examples=20"]


def test_rouge_l_and_keyword_f1_by_hand() -> None:
    assert rouge_l("abcd", "abd") == pytest.approx(2 * (3 / 4) * (3 / 3) / (3 / 4 + 1))  # LCS "abd" = 3
    assert rouge_l("xyz", "abc") == 0.0
    assert split_keywords("水声学，FFT, 波束形成") == {"水声学", "FFT", "波束形成"}
    # 2 predicted sets vs gold: tp = 1 + 1, predicted 2 + 2, gold 3 + 1 → P 0.5, R 0.5
    p, r, f = keyword_prf(["a，b", "c，d"], ["a，x，y", "d"])
    assert (p, r, f) == pytest.approx((0.5, 0.5, 0.5))


def test_seq2seq_csl_trains_decodes_and_generates(data_root: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    cfg = load_run_config(REPO / "sweeps/base/csl_seq2seq.yaml", [*TINY, "task.gen_examples=3",
                                                                   "task.target_length=8", "model.max_len=96",
                                                                   "task.max_length=96"])
    record = train_run(cfg, progress=False, checkpoint_path=tmp_path / "ckpt" / "model.ckpt")
    m = record["metrics"]
    assert 0.0 <= m["val/keyword_f1"] <= 1.0 and 0.0 <= m["val/rouge_l"] <= 1.0 and m["val/perplexity"] > 1
    assert record["samples"] and {"source", "gold", "generated"} <= set(record["samples"][0])
    capsys.readouterr()
    assert main(["generate", str(tmp_path / "ckpt" / "model.ckpt"), "--prompt", "本文提出一种新的算法",
                 "--max-new-tokens", "5"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1


def test_cln_conditional_lm_on_tnews(data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = load_run_config(REPO / "sweeps/base/tnews_cln.yaml", [*TINY, "task.samples_per_label=2",
                                                                "model.condition_size=8", "model.condition_hidden=4"])
    record = train_run(cfg, progress=False, checkpoint_path=tmp_path / "c" / "model.ckpt")
    m = record["metrics"]
    assert m["gen/chance"] == pytest.approx(1 / 15)
    assert 0.0 <= m["gen/label_agreement"] <= 1.0 and 0.0 <= m["judge/val_accuracy"] <= 1.0
    assert len(record["samples"]) == 15
    capsys.readouterr()
    assert main(["generate", str(tmp_path / "c" / "model.ckpt"), "--label", "news_sports", "--strategy", "sample",
                 "--top-k", "5", "--max-new-tokens", "4", "--num-samples", "2"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    assert main(["generate", str(tmp_path / "c" / "model.ckpt")]) == 2
    assert "pass --label" in capsys.readouterr().err
