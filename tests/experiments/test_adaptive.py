"""`attnlab reproduce NAME --until-conclusive --max-seeds N` end to end on a smoke-size grid with a known effect.

Training is replaced by a fake with known scores (the statistics are what is under test, and the sequential
procedure's error rate is checked on synthetic data in tests/report/test_sequential.py): the row `broken`
scores 25 points below `dot`, `dup` is `dot` again with its own seed noise. The broken row must be declared
different (and get no seeds beyond its decision), the duplicate must not, and a rerun must add nothing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from attnlab import workflows
from attnlab.cli import main
from attnlab.config import RunConfig
from attnlab.experiments.adaptive import extension_name
from attnlab.predictions import encode
from attnlab.record import Cost, Record

REPO = Path(__file__).resolve().parents[2]
N_DEV = 200


def fake_train_run(cfg: RunConfig, *args: Any, **kwargs: Any) -> Record:
    """Per-example correctness with a known accuracy: dot and dup ~80%, broken ~55%, seed noise ±2 points."""
    row = cfg.name.rsplit("-", 1)[-1]
    noise = np.random.default_rng(int(hashlib.sha256(f"{row}/{cfg.train.seed}".encode()).hexdigest()[:8], 16))
    accuracy = (0.55 if row == "broken" else 0.80) + 0.02 * noise.standard_normal()
    labels = np.random.default_rng(0).integers(0, 2, N_DEV)  # the same dev set for every run
    correct = noise.random(N_DEV) < accuracy
    predicted = np.where(correct, labels, 1 - labels)
    score = 100.0 * float(correct.mean())
    return Record(name=cfg.name, task=cfg.task.name, config_hash="x", config={}, metrics={"val/score": score},
                  cost=Cost(1, 1.0, 1, 1, 0.1, 1.0), seed=cfg.train.seed, attnlab_version="test", git_commit="test",
                  device="cpu", created="2026-01-01T00:00:00+00:00", predictions=encode(labels, predicted, 2),
                  curves={"val/score": [[1, score / 2], [2, score]], "train/loss": [[1, 0.7], [2, 0.5]]})


ABLATION = """
name: adaptive_smoke
title: "Known effect: a broken row and a duplicated row"
base: {base}
baseline: dot
rows:
  dot: {{}}
  broken: {{}}
  dup: {{}}
tasks: [glue/sst2]
seeds: [0, 1, 2]
claims:
  - {{kind: ours, row: broken, vs: dot, expect: better, effect: 1.0, text: "the broken row is better (it is not)"}}
  - {{kind: ours, row: dup, vs: dot, expect: better, text: "a copy of dot is better (it is not)"}}
presets:
  smoke:
    set: {{model.d_model: 16, model.n_layers: 1, model.d_ff: 32, train.max_steps: 1}}
"""


def test_until_conclusive_adds_seeds_only_where_undecided(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("attnlab.train.runner.train_run", fake_train_run)
    path = tmp_path / "adaptive_smoke.yaml"
    path.write_text(ABLATION.format(base=REPO / "sweeps/base/sst2.yaml"))
    storage, out = f"sqlite:///{tmp_path / 's.db'}", tmp_path / "out"

    def reproduce() -> int:
        return workflows.reproduce(str(path), preset="smoke", storage=storage, workers=1, dry_run=False,
                                   out=str(out), report=True, wandb="off", wandb_project=None, command="test",
                                   until_conclusive=True, max_seeds=6)

    assert reproduce() == 0
    ext = optuna.load_study(study_name=extension_name("adaptive_smoke-smoke"), storage=storage)
    added = sorted((t.params["row"], t.params["seed"]) for t in ext.get_trials())
    broken_seeds = {s for r, s in added if r == "broken"}
    assert {("dup", s) for s in (3, 4, 5)} <= set(added) and {("dot", s) for s in (3, 4, 5)} <= set(added)
    assert broken_seeds < {3, 4, 5}  # decided before max seeds: it stopped getting seeds
    md = (out / "leaderboard.md").read_text()
    lines = {line.split("[")[1].split(",")[0]: line for line in md.splitlines()
             if "(it is not) [" in line and line.startswith("|")}  # the claims table's rows
    assert "disagrees (at n=" in lines["broken vs dot"]  # sequential verdict: detected
    assert "inconclusive (n=6, undecided" in lines["dup vs dot"]  # never declared different
    assert "majority class (reference)" in md and "chance (reference)" in md
    assert "Bootstrap seeds × examples" in md and (out / "curves.png").is_file()
    n_trials = len(ext.get_trials())
    capsys.readouterr()
    assert main(["reproduce", str(path), "--preset", "smoke", "--storage", storage, "--out", str(out), "--wandb",
                 "off", "--until-conclusive", "--max-seeds", "6"]) == 0  # resumable: a rerun adds nothing
    assert len(ext.get_trials()) == n_trials
    assert "cell(s) for the next look" not in capsys.readouterr().out


@pytest.mark.slow
def test_until_conclusive_with_real_training(data_root: Path, tmp_path: Path) -> None:
    """The same path with real smoke-size training (talking_heads: 6 rows, SST-2, seeds 0–1): its undecided
    claims get seed 2 for their rows, and the report carries the sequential verdicts and the added seed."""
    storage, out = f"sqlite:///{tmp_path / 's.db'}", tmp_path / "out"
    assert main(["reproduce", "talking_heads", "--preset", "smoke", "--storage", storage, "--out", str(out),
                 "--wandb", "off", "--until-conclusive", "--max-seeds", "3"]) == 0
    ext = optuna.load_study(study_name=extension_name("talking_heads-smoke"), storage=storage)
    assert {t.params["seed"] for t in ext.get_trials()} <= {2}
    md = (out / "leaderboard.md").read_text()
    assert "Sequential verdict" in md and "Per-task verdicts" in md and "majority class (reference)" in md
    records = (out / "records.jsonl").read_text().splitlines()
    assert len(records) == 12 + len(ext.get_trials())
