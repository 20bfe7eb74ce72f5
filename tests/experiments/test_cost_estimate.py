"""The compute estimate of an ablation preset (experiments/cost_estimate.py) and its `reproduce --dry-run` lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attnlab.cli import main
from attnlab.config import config_hash
from attnlab.errors import DataError
from attnlab.experiments import cost_estimate as ce
from attnlab.experiments import grid as g
from attnlab.experiments.grid_config import load_ablation
from attnlab.tasks import get_task

REPO = Path(__file__).resolve().parents[2]

# d_model 16, 2 heads (dk = dv = 8), 2 layers, d_ff 32, embedding 8, T = max_length 8
TINY = """\
name: tiny_cost
base: base.yaml
rows:
  a: {}
  b: {train.lr: 0.01}
tasks: [glue/sst2]
seeds: [0, 1]
presets:
  cpu: {set: {train.max_steps: 5}}
  gpu: {set: {train.max_steps: 500}}
"""
BASE = """\
model: {d_model: 16, n_heads: 2, n_layers: 2, d_ff: 32, max_len: 8, embedding_size: 8, vocab_size: 100}
task: {name: glue/sst2, max_length: 8}
train: {batch_size: 4, max_steps: 5}
"""
# by hand, 2 FLOPs per multiply-add: embedding projection 2·8·16 = 256; per layer attention: q, k, v, o
# projections 4 · 2·16·16 = 2048 + QKᵀ and weights·V 2·T·h·(dk + dv) = 2·8·2·16 = 512; FFN 2·(16·32 + 32·16) = 2048
HAND_FWD_PER_TOKEN = 256 + 2 * (2048 + 512 + 2048)


def _tiny(tmp_path: Path) -> Path:
    (tmp_path / "base.yaml").write_text(BASE)
    path = tmp_path / "tiny_cost.yaml"
    path.write_text(TINY)
    return path


def test_flops_and_gpu_hours_match_a_hand_computation(tmp_path: Path) -> None:
    abl = load_ablation(_tiny(tmp_path))
    est = ce.estimate(abl, abl.resolve("cpu"))
    tokens_per_run = 4 * 8 * 5  # batch × max_length × max_steps
    assert (est.finetune_runs, est.pretrain_runs) == (4, 0)  # 2 rows × 1 task × 2 seeds, no pretraining
    assert est.finetune_tokens == 4 * tokens_per_run
    assert est.total_flops == 3 * HAND_FWD_PER_TOKEN * 4 * tokens_per_run  # 3× = forward + backward
    assert est.gpu_hours == pytest.approx(est.total_flops / (312e12 * 0.35) / 3600)
    assert not est.measured and "A100 80GB" in est.basis and "MFU 0.35" in est.basis
    given = ce.estimate(abl, abl.resolve("cpu"), device_flops=1e12, mfu=0.5)
    assert given.gpu_hours == pytest.approx(est.total_flops / 0.5e12 / 3600)
    assert ce.estimate(abl, abl.resolve("gpu")).total_flops == pytest.approx(100 * est.total_flops)  # 500 vs 5 steps


def test_shared_pretraining_is_counted_once_per_corpus() -> None:
    abl = load_ablation(REPO / "ablations/albert_untie.yaml")
    r = abl.resolve("cpu")
    languages = sorted({get_task(t).language for t in r.tasks})
    rows = {row.name: row for row in r.rows if row.pretrain}

    def key(name: str, language: str) -> str:  # the grid's own pretraining cache key
        return config_hash(g.pretrain_run_config(abl, r, rows[name], language))

    for lang in languages:  # albert and albert_untied differ only after pretraining: one checkpoint; bert its own
        assert key("albert", lang) == key("albert_untied", lang) != key("bert", lang)
    keys = {key(name, lang) for name in rows for lang in languages}
    est = ce.estimate(abl, r)
    assert est.pretrain_runs == len(keys) == (len(rows) - 1) * len(languages)  # not rows × corpora
    cfg = g.pretrain_run_config(abl, r, rows["bert"], languages[0])
    assert est.pretrain_tokens == len(keys) * cfg.train.batch_size * cfg.task.max_length * cfg.train.max_steps
    assert est.finetune_runs == len(r.rows) * len(r.tasks) * len(r.seeds)
    assert any(f"+ {len(keys)} pretraining" in line for line in ce.cost_lines(est))


def _bench_file(tmp_path: Path, tested_on_gpu: bool = True, tokens_per_s: object = 250_000.0) -> Path:
    path = tmp_path / "results" / "bench" / "gpu.json"  # conftest points ATTNLAB_RESULTS at tmp_path/results
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "benchmark": "gpu", "tested_on_gpu": tested_on_gpu,
        "config": {"d_model": 64, "n_layers": 2, "n_heads": 4, "seq_len": 128, "batch": 8, "vocab_size": 1000},
        "training": {"tokens_per_s": tokens_per_s}, "machine": {"device": "cuda", "gpu": "NVIDIA H200"}}))
    return path


def test_a_bench_gpu_result_file_makes_the_estimate_measured(tmp_path: Path) -> None:
    path = _bench_file(tmp_path)
    measured = ce.load_gpu_bench()
    assert measured is not None and measured.source == str(path) and measured.device == "NVIDIA H200"
    abl = load_ablation(_tiny(tmp_path))
    est = ce.estimate(abl, abl.resolve("cpu"), measured=measured)
    assert est.measured and "measured on NVIDIA H200 by attnlab bench gpu" in est.basis and str(path) in est.basis
    # the preset's tokens/s = measured tokens/s × (benchmarked FLOPs/token ÷ the preset's FLOPs/token)
    preset_tokens_per_s = 250_000.0 * measured.flops_per_token / HAND_FWD_PER_TOKEN
    assert est.gpu_hours == pytest.approx(est.finetune_tokens / preset_tokens_per_s / 3600)
    lines = ce.cost_lines(est)
    assert any("measured on NVIDIA H200" in line for line in lines)
    assert not any("measure it:" in line for line in lines)
    assert not ce.estimate(abl, abl.resolve("cpu"), measured=measured, mfu=0.5).measured  # explicit values win


def test_a_cpu_test_run_of_bench_gpu_is_not_a_measurement_and_a_broken_file_says_so(tmp_path: Path) -> None:
    assert ce.load_gpu_bench() is None  # no file
    _bench_file(tmp_path, tested_on_gpu=False)
    assert ce.load_gpu_bench() is None
    path = _bench_file(tmp_path, tokens_per_s="fast")
    with pytest.raises(DataError, match=r"gpu\.json: training\.tokens_per_s.*attnlab bench gpu"):
        ce.load_gpu_bench(path)


def test_dry_run_prints_the_cost_estimate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["reproduce", str(_tiny(tmp_path)), "--dry-run", "--storage", storage]) == 0
    out = capsys.readouterr().out
    assert "cells: 4 (0 done, 4 to run)" in out and "estimated time" in out  # the plan as before
    assert "- compute (preset cpu): 4 fine-tuning runs" in out and "GPU-hours" in out
    assert "- preset gpu: GPU-hours" in out and "attnlab bench gpu" in out
    assert not (tmp_path / "s.db").exists()  # still nothing created
