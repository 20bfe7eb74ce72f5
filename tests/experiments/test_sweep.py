"""Sweeps on SQLite end to end: states, pruning, resume, Pareto front, validation errors."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from attnlab.cli import main
from attnlab.config import ConfigError
from attnlab.experiments import load_sweep
from attnlab.experiments.status import pareto_front
from attnlab.record import records_from_trial_attrs

REPO = Path(__file__).resolve().parents[2]
TINY_SET = {"model.d_model": 16, "model.n_heads": 2, "model.n_layers": 1, "model.d_ff": 32, "model.max_len": 32,
            "task.max_length": 32, "task.vocab_size": 300, "task.max_train_examples": 128,
            "task.max_eval_examples": 64, "train.batch_size": 16, "train.max_steps": 4}


def write_sweep(tmp_path: Path, data_root: Path, **fields: object) -> Path:
    doc: dict[str, object] = {
        "name": "tiny", "base": str(REPO / "sweeps/base/sst2.yaml"),
        "set": {**TINY_SET, "task.data_root": str(data_root)},
        "objectives": [{"metric": "val/accuracy", "direction": "maximize"}],
        "space": {"model.attention.kind": {"choices": ["dot", "linear"]},
                  "train.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
        "sampler": {"name": "random", "seed": 0}, "pruner": {"name": "none"}, "n_trials": 3,
    }
    doc.update(fields)
    p = tmp_path / "sweep.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def run_sweep(path: Path, storage: str, *extra: str) -> int:
    return main(["sweep", str(path), "--storage", storage, "--wandb", "off", *extra])


def test_sweep_runs_resumes_and_records(data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_sweep(tmp_path, data_root)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    assert run_sweep(path, storage, "--n-trials", "2") == 0
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    (record,) = records_from_trial_attrs(study.trials[0].user_attrs)
    assert record.task == "glue/sst2" and record.study == "tiny" and record.trial == 0
    assert record.config["model"]["attention"]["kind"] == study.trials[0].params["model.attention.kind"]
    assert record.params == study.trials[0].params
    assert record.cost.params > 0 and record.cost.peak_mem_mib > 0 and record.cost.wall_time_s > 0
    assert record.git_commit and record.seed == 0 and "val/accuracy" in record.metrics
    assert study.trials[0].value == pytest.approx(record.metrics["val/accuracy"])
    # rerun: continues to the file's n_trials (3), does not start over
    assert run_sweep(path, storage) == 0
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert len(study.trials) == 3
    out = capsys.readouterr().out
    assert "COMPLETE=3" in out
    assert main(["sweep", "status", str(path), "--storage", storage]) == 0
    assert "best trials by val/accuracy" in capsys.readouterr().out


def test_pruned_trial_recorded_as_pruned(data_root: Path, tmp_path: Path) -> None:
    """A pruner that always prunes after the first report: the trial must end PRUNED, not FAIL."""
    path = write_sweep(tmp_path, data_root, pruner={"name": "median", "n_startup_trials": 1, "n_warmup_steps": 0},
                       set={**TINY_SET, "task.data_root": str(data_root), "train.val_every_n_steps": 2,
                            "train.max_steps": 6})
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    sweep = load_sweep(path)
    from attnlab.experiments.study import load_or_create

    study = load_or_create(sweep, storage)
    # Seed the history with one excellent complete trial so the median pruner prunes the next one.
    excellent = optuna.trial.create_trial(
        params={"model.attention.kind": "dot", "train.lr": 1e-3},
        distributions={"model.attention.kind": optuna.distributions.CategoricalDistribution(["dot", "linear"]),
                       "train.lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)},
        value=1.0, intermediate_values={0: 1.0, 2: 1.0, 4: 1.0, 6: 1.0})
    study.add_trial(excellent)
    assert run_sweep(path, storage, "--n-trials", "2") == 0
    study = optuna.load_study(study_name="tiny", storage=storage)
    states = [t.state for t in study.trials]
    assert states[1] == TrialState.PRUNED, states
    assert study.trials[1].user_attrs["pruned_at_step"] == 2


def test_nan_loss_fails_trial_with_reason_and_study_goes_on(data_root: Path, tmp_path: Path) -> None:
    path = write_sweep(tmp_path, data_root, space={"train.lr": {"choices": [1e30]}}, n_trials=2,
                       set={**TINY_SET, "task.data_root": str(data_root), "train.grad_clip": 0.0,
                            "train.warmup_ratio": 0.0})
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    run_sweep(path, storage)
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert len(study.trials) == 2, "the study went on after the first failure"
    for t in study.trials:
        assert t.state == TrialState.FAIL
        assert "loss became" in t.user_attrs["fail_reason"]


def test_pareto_front_of_two_objectives(data_root: Path, tmp_path: Path) -> None:
    path = write_sweep(tmp_path, data_root, objectives=[{"metric": "val/accuracy", "direction": "maximize"},
                                                        {"metric": "cost/params", "direction": "minimize"}],
                       space={"model.d_model": {"choices": [16, 32]}}, sampler={"name": "grid"}, n_trials=2)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    assert run_sweep(path, storage) == 0
    study = optuna.load_study(study_name="tiny", storage=storage)
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(done) == 2
    # brute-force Pareto front
    def dominated(a: optuna.trial.FrozenTrial) -> bool:
        return any(b.values[0] >= a.values[0] and b.values[1] <= a.values[1] and b.values != a.values for b in done)

    expected = sorted(t.number for t in done if not dominated(t))
    assert sorted(t.number for t in pareto_front(study)) == expected


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"space": {"model.attention.kindd": {"choices": ["dot"]}}}, r"space\.model\.attention\.kindd.*kind"),
        ({"space": {"model.attention.kind": {"choices": []}}}, r"space\.model\.attention\.kind\.choices: .*non-empty"),
        ({"space": {"model.attention.kind": {"choices": ["dot", "lineer"]}}}, r"choice 'lineer'.*linear"),
        ({"objectives": [{"metric": "val/f1"}]}, r"objectives\[0\]\.metric: glue/sst2 does not log 'val/f1'"),
        ({"pruner": {"name": "median"}, "objectives": [{"metric": "val/accuracy"}, {"metric": "cost/params"}]},
         "cannot prune multi-objective"),
        ({"n_trails": 3}, r"n_trails: unknown key.*n_trials"),
        ({"space": {"train.lr": {"type": "float", "low": 1.0, "high": 0.1}}}, r"space\.train\.lr: low"),
    ],
)
def test_bad_sweep_files_name_file_and_key(data_root: Path, tmp_path: Path, fields: dict[str, object],
                                           message: str) -> None:
    path = write_sweep(tmp_path, data_root, **fields)
    with pytest.raises(ConfigError, match=message) as e:
        load_sweep(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("path", sorted((REPO / "sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_sweep_files_load_and_validate(path: Path, data_root: Path) -> None:
    sweep = load_sweep(path)
    assert sweep.params and sweep.n_trials >= 1
    assert sweep.objectives, "a sweep needs an objective"
    for o in sweep.objectives:  # `val/<metric>` as the modules log them, or a `cost/<field>` of the record
        assert o.metric.count("/") == 1 and o.metric.split("/")[0] in ("val", "test", "cost"), o.metric
        assert o.direction in ("maximize", "minimize"), o.direction


def test_each_trial_is_one_offline_wandb_run(data_root: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from attnlab.tracking import read_offline_run

    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    path = write_sweep(tmp_path, data_root, n_trials=2)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    assert main(["sweep", str(path), "--storage", storage, "--wandb", "offline"]) == 0
    all_runs = sorted((tmp_path / "wb").rglob("offline-run-*"))
    assert len(all_runs) == 3  # one per trial + the study's leaderboard table
    runs = [r for r in all_runs if read_offline_run(r)["name"] != "tiny-leaderboard"]
    assert len(runs) == 2
    study = optuna.load_study(study_name="tiny", storage=storage)
    kinds = {t.params["model.attention.kind"] for t in study.trials}
    seen = set()
    for run_dir in runs:
        run = read_offline_run(run_dir)
        assert run["config"]["model"]["attention"]["kind"] in kinds
        assert run["config"]["task"]["name"] == "glue/sst2"
        assert 0.0 <= run["summary"]["val/accuracy"] <= 1.0
        assert run["summary"]["cost/params"] > 0
        seen.add(run["name"])
    assert seen == {"tiny#0", "tiny#1"}
