"""W&B as its users expect, read back from offline runs: group, name, job type, config (with attnlab version and
commit), summary, categorical tags, artifacts (records, checkpoints, the study's report), the best trial marked,
`train.log_every_n_steps` honoured, stable run ids so a retried trial resumes its own run, `attnlab run` tracked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from attnlab.cli import main
from attnlab.experiments.trial import (
    SALT_ATTR,
    PlannedRun,
    origin_trial,
    stable_run_id,
    study_salt,
    trial_tags,
)
from attnlab.tracking import TrackingConfig, categorical_tags, read_offline_run, start_run

REPO = Path(__file__).resolve().parents[1]
TINY_SET = {"model.d_model": 16, "model.n_heads": 2, "model.n_layers": 1, "model.d_ff": 32, "model.max_len": 32,
            "task.max_length": 32, "task.vocab_size": 300, "task.max_train_examples": 128,
            "task.max_eval_examples": 64, "train.batch_size": 16, "train.max_steps": 4,
            "train.log_every_n_steps": 2}


def _runs(root: Path) -> list[dict[str, Any]]:
    return [{**read_offline_run(d, history=True), "dir": d} for d in sorted(root.rglob("offline-run-*"))]


@pytest.mark.slow  # ~40 s: two trials, three reports, nine offline runs read back
def test_sweep_trials_and_leaderboard_read_back(data_root: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    doc = {"name": "wbt", "base": str(REPO / "sweeps/base/sst2.yaml"),
           "set": {**TINY_SET, "task.data_root": str(data_root)},
           "objectives": [{"metric": "val/accuracy", "direction": "maximize"}],
           "space": {"model.attention.kind": {"choices": ["dot", "linear"]},
                     "train.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
           "sampler": {"name": "random", "seed": 0}, "pruner": {"name": "none"}, "n_trials": 2}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(doc))
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    assert main(["sweep", str(path), "--storage", storage, "--wandb", "offline", "--wandb-checkpoints"]) == 0
    study = optuna.load_study(study_name="wbt", storage=storage)
    runs = _runs(tmp_path / "wb")
    trials = [r for r in runs if r["job_type"] == "glue/sst2"]
    (board,) = [r for r in runs if r["job_type"] == "report"]
    assert len(trials) == 2

    for run in trials:
        number = int(run["name"].split("#")[1])
        assert run["group"] == "wbt" and run["state"] == "finished" and run["exit_code"] == 0
        assert run["run_id"] == stable_run_id("wbt", f"trial{number}/glue/sst2", study.user_attrs[SALT_ATTR])
        config = run["config"]
        assert {"model", "task", "train", "trial", "params", "attnlab_version", "git_commit"} <= set(config)
        assert config["attnlab_version"] == "0.1.0" and config["git_commit"]
        assert config["params"]["train.lr"] == pytest.approx(study.trials[number].params["train.lr"])
        assert run["tags"] == [f"kind={study.trials[number].params['model.attention.kind']}"]  # lr: config only
        assert 0.0 <= run["summary"]["val/accuracy"] <= 1.0 and run["summary"]["cost/params"] > 0
        train_steps = [h["_step"] for h in run["history"] if "train/loss" in h]
        assert train_steps == [2, 4]  # train.log_every_n_steps: 2 of max_steps 4
        artifacts = {a["type"]: a for a in run["artifacts"]}
        assert artifacts["record"]["files"] == ["record.json"]
        assert artifacts["record"]["metadata"]["trial"] == number
        assert artifacts["model"]["files"] == ["model.ckpt"]  # --wandb-checkpoints

    assert board["group"] == "wbt" and board["name"] == "wbt-leaderboard" and board["tags"] == ["leaderboard"]
    assert board["summary"]["leaderboard"]["nrows"] == 2
    best = board["summary"]["best"]
    assert best["trial"] == study.best_trial.number
    assert best["run_ids"] == [stable_run_id("wbt", f"trial{study.best_trial.number}/glue/sst2",
                                             study.user_attrs[SALT_ATTR])]
    assert best["run_ids"][0] in {r["run_id"] for r in trials}
    (report,) = [a for a in board["artifacts"] if a["type"] == "report"]  # (W&B keeps the table as one too)
    assert {"leaderboard.md", "leaderboard.csv", "report.html", "trials.jsonl"} <= set(report["files"])

    # `report --wandb offline` writes what it says: the leaderboard run again, the same (resumed) id
    assert main(["report", str(path), "--storage", storage, "--wandb", "offline"]) == 0
    boards = [r for r in _runs(tmp_path / "wb") if r["job_type"] == "report"]
    assert len(boards) == 2 and boards[0]["run_id"] == boards[1]["run_id"]
    assert main(["report", str(path), "--storage", storage, "--wandb", "off"]) == 0
    assert len([r for r in _runs(tmp_path / "wb") if r["job_type"] == "report"]) == 2
    # ... from the exported folder alone as well (no storage: the table and the report artifact, no best run ids)
    assert main(["report", str(tmp_path / "results" / "wbt"), "--wandb", "offline"]) == 0
    boards = [r for r in _runs(tmp_path / "wb") if r["job_type"] == "report"]
    assert len(boards) == 3
    exported = next(b for b in boards if b["run_id"] != board["run_id"])
    assert exported["group"] == "wbt" and exported["summary"]["leaderboard"]["nrows"] == 2
    assert any(a["type"] == "report" and "report.html" in a["files"] for a in exported["artifacts"])


def test_retried_trial_resumes_its_own_run(tmp_path: Path) -> None:
    study = optuna.create_study()
    first = study.ask({"x": optuna.distributions.CategoricalDistribution(["a", "b"])})
    study.tell(first, state=optuna.trial.TrialState.FAIL)
    # what RetryFailedTrialCallback enqueues for a trial whose worker died
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.WAITING, params=first.params,
                                              distributions=first.distributions,
                                              system_attrs={"failed_trial": first.number}))
    retry = study.ask()
    assert retry.number != first.number and origin_trial(retry) == first.number

    from attnlab.config import RunConfig

    planned = PlannedRun(RunConfig(), label="s#x")
    assert planned.run_key(retry) == planned.run_key(first)
    cfg = TrackingConfig(mode="offline", dir=str(tmp_path / "runs"))
    run_id = stable_run_id("s", planned.run_key(retry))
    for exit_code in (1, 0):  # killed, then redone
        run = start_run(cfg, name="s#x", group="s", job_type="t", tags=[], config={}, run_id=run_id)
        assert run.active
        run.finish(exit_code=exit_code)
    back = [read_offline_run(d) for d in sorted((tmp_path / "runs").rglob("offline-run-*"))]
    assert [b["run_id"] for b in back] == [run_id, run_id]  # `wandb sync` merges them into one run
    assert sorted(b["exit_code"] for b in back) == [0, 1]

    # the same study name created again (its database deleted) gets new ids: it never resumes the old runs
    salt = study_salt(study)
    assert study_salt(study) == salt and len(salt) == 8
    assert stable_run_id("s", "k", salt) != stable_run_id("s", "k", study_salt(optuna.create_study()))


def test_tags_are_categorical() -> None:
    assert categorical_tags(["kind=linear", "lr=0.00123", "wd=1e-4", "seed=0", "n_heads=4", "leaderboard",
                             "x=nan", "y=-inf", "kind=linear"]) == ["kind=linear", "seed=0", "n_heads=4", "leaderboard"]
    assert trial_tags({"model.attention.kind": "dot", "train.lr": 0.001, "model.n_heads": 4, "m.flag": True}) == (
        "kind=dot", "n_heads=4", "flag=True")


def test_run_command_is_tracked(data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    overrides = [f"{k}={v}" for k, v in TINY_SET.items()]
    argv = ["run", str(REPO / "sweeps/base/sst2.yaml"), "--data-root", str(data_root), "--no-progress",
            "--out", str(tmp_path / "out")]
    for item in overrides:
        argv += ["--set", item]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "record: " in out and "wandb: run in " in out
    (run,) = _runs(tmp_path / "wb")
    assert run["group"] == "runs" and run["job_type"] == "glue/sst2"
    assert "kind=dot" in run["tags"] and "attnlab_version" in run["config"]
    assert [a["type"] for a in run["artifacts"]] == ["record"]
    assert [h["_step"] for h in run["history"] if "train/loss" in h] == [2, 4]
    assert main([*argv, "--wandb", "off"]) == 0
    assert len(_runs(tmp_path / "wb")) == 1
