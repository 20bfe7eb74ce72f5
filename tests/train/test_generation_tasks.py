"""UniLM seq2seq on CSL (after MLM pretraining), the causal LM on Song ci and the CLN label-conditioned LM on
TNEWS at smoke size; `attnlab generate` and its documented decoding controls."""

from __future__ import annotations

from pathlib import Path

import pytest

from attnlab.cli import main
from attnlab.config import load_run_config
from attnlab.train.runner import train_run

REPO = Path(__file__).resolve().parents[2]
TINY = ["model.d_model=32", "model.n_heads=2", "model.n_layers=1", "model.d_ff=64", "task.vocab_size=800",
        "train.batch_size=8", "train.max_steps=4", "task.max_train_examples=200", "task.max_eval_examples=20"]


def test_csl_protocol_pretrain_then_seq2seq_beside_the_reference(data_root: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Both stages of the shipped protocol at smoke size, through the seam (checkpoint + tokenizer)."""
    pre = load_run_config(REPO / "sweeps/base/csl_pretrain.yaml", [*TINY, "model.max_len=96", "task.max_length=64"])
    train_run(pre, progress=False, checkpoint_path=tmp_path / "pre" / "model.ckpt")
    cfg = load_run_config(REPO / "sweeps/base/csl_seq2seq.yaml", [
        *TINY, "task.gen_examples=3", "task.target_length=8", "model.max_len=96", "task.max_length=96",
        f"model.init_from={tmp_path / 'pre' / 'model.ckpt'}", f"task.tokenizer={tmp_path / 'pre'}"])
    record = train_run(cfg, progress=False, checkpoint_path=tmp_path / "ckpt" / "model.ckpt")
    m = record.metrics
    for prefix in ("val/", "val/tfidf_"):
        for key in ("keyword_precision", "keyword_recall", "keyword_f1", "rouge_l"):
            assert 0.0 <= m[prefix + key] <= 1.0
    assert m["val/perplexity"] > 1 and m["gen/repeat_rate"] == 0.0  # no repeated 3-gram: forbidden
    assert record.samples and {"source", "gold", "generated", "tfidf"} <= set(record.samples[0])
    assert all(s["tfidf"].count("，") == 3 for s in record.samples)  # 4 extracted keywords each
    capsys.readouterr()
    assert main(["generate", str(tmp_path / "ckpt" / "model.ckpt"), "--prompt", "本文提出一种新的算法",
                 "--max-new-tokens", "5", "--strategy", "beam"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1


def test_songci_causal_lm_reports_perplexity_and_controlled_samples(data_root: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    cfg = load_run_config(REPO / "sweeps/base/songci_lm.yaml", [*TINY, "task.max_length=32", "task.target_length=12"])
    record = train_run(cfg, progress=False, checkpoint_path=tmp_path / "lm" / "model.ckpt")
    m = record.metrics
    assert m["val/perplexity"] > 1 and m["gen/repeat_rate"] == 0.0 and 0.0 <= m["gen/repeat_rate_no_controls"] <= 1
    assert 8 <= m["gen/mean_length"] <= 12  # min_new_tokens 8 holds [SEP] back, target_length caps
    assert len(record.samples) == 8 and all(s["generated"] for s in record.samples)
    capsys.readouterr()
    assert main(["generate", str(tmp_path / "lm" / "model.ckpt"), "--prompt", "明月", "--strategy", "sample",
                 "--top-k", "5", "--max-new-tokens", "6", "--num-samples", "2"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2


def test_generate_help_documents_every_decoding_control(capsys: pytest.CaptureFixture[str]) -> None:
    from attnlab.train.generation.modules import CAUSAL_DECODING, SEQ2SEQ_DECODING

    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--no-repeat-ngram-size", "--repetition-penalty", "--length-penalty", "--min-new-tokens",
                 "--top-k", "--top-p", "--temperature", "--num-beams"):
        assert flag in text
    assert text.count("(default:") >= 10
    assert f"(default: {CAUSAL_DECODING.no_repeat_ngram_size})" in text
    assert f"(default: {CAUSAL_DECODING.repetition_penalty}; {SEQ2SEQ_DECODING.repetition_penalty} for seq2seq" in text
    assert (f"(default: {SEQ2SEQ_DECODING.min_new_tokens} for seq2seq, else {CAUSAL_DECODING.min_new_tokens})"
            in text)


def test_cln_conditional_lm_on_tnews(data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = load_run_config(REPO / "sweeps/base/tnews_cln.yaml", [*TINY, "task.samples_per_label=2",
                                                                "model.condition_size=8", "model.condition_hidden=4"])
    record = train_run(cfg, progress=False, checkpoint_path=tmp_path / "c" / "model.ckpt")
    m = record.metrics
    assert m["gen/chance"] == pytest.approx(1 / 15)
    assert 0.0 <= m["gen/label_agreement"] <= 1.0 and 0.0 <= m["judge/val_accuracy"] <= 1.0
    assert len(record.samples) == 15
    capsys.readouterr()
    assert main(["generate", str(tmp_path / "c" / "model.ckpt"), "--label", "news_sports", "--strategy", "sample",
                 "--top-k", "5", "--max-new-tokens", "4", "--num-samples", "2"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    assert main(["generate", str(tmp_path / "c" / "model.ckpt")]) == 2
    assert "pass --label" in capsys.readouterr().err
