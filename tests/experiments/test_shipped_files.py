"""Every shipped sweep file runs end to end at a tiny size and reaches a leaderboard (the
lightning-hydra-template habit: every experiment file is a test case), and an ablation file written by a user —
no presets, no paper claims — runs as a plain comparison. The shipped ablations run at `smoke` in test_grid.py."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from attnlab.cli import main
from attnlab.experiments import load_sweep
from attnlab.record import records_from_trial_attrs

REPO = Path(__file__).resolve().parents[2]
SWEEPS = sorted((REPO / "sweeps").glob("*.yaml"))
TINY = {"train.max_steps": 2, "train.batch_size": 8, "train.val_every_n_steps": 0, "task.max_train_examples": 32,
        "task.max_eval_examples": 16, "task.max_length": 32, "task.vocab_size": 400, "model.n_layers": 1}


def shrink_sweep(path: Path, out: Path) -> Path:
    doc = yaml.safe_load(path.read_text())
    doc["base"] = str((path.parent / doc["base"]).resolve())
    doc["set"] = {**(doc.get("set") or {}), **TINY}
    doc["n_trials"] = 2
    doc["pruner"] = {"name": "none"}
    target = out / path.name
    target.write_text(yaml.safe_dump(doc))
    return target


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_every_sweep_file_runs_and_reaches_a_leaderboard(path: Path, data_root: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    small = shrink_sweep(path, tmp_path)
    name = load_sweep(path).name
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    out = tmp_path / "board"
    assert main(["sweep", str(small), "--storage", storage, "--wandb", "off", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"[{name}] trial   0 COMPLETE" in printed and f"[{name}] trial   1 COMPLETE" in printed
    study = optuna.load_study(study_name=name, storage=storage)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 2
    for t in complete:
        (record,) = records_from_trial_attrs(t.user_attrs)
        assert record.study == name and record.trial == t.number and record.cost.train_steps == 2
    for file in ("leaderboard.md", "leaderboard.csv", "report.html", "trials.jsonl", "meta.json"):
        assert (out / file).is_file(), file
    board = (out / "leaderboard.md").read_text()
    assert "#0" in board or "| 0 " in board
    # the leaderboard rebuilds from the storage (attnlab report FILE) and from its export alone
    again = tmp_path / "again"
    assert main(["report", str(small), "--storage", storage, "--out", str(again), "--wandb", "off"]) == 0
    assert (again / "leaderboard.md").is_file()
    exported = tmp_path / "exported"
    assert main(["report", str(out / "trials.jsonl"), "--out", str(exported)]) == 0
    assert (exported / "leaderboard.md").read_text() == (out / "leaderboard.md").read_text()


def test_a_users_comparison_without_presets_or_claims(data_root: Path, tmp_path: Path) -> None:
    doc = {"name": "my-comparison", "base": str(REPO / "sweeps/base/sst2.yaml"), "set": TINY,
           "rows": {"dot": {}, "linear": {"model.attention.kind": "linear"}},
           "tasks": ["glue/sst2"], "seeds": [0, 1]}
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(doc))
    out = tmp_path / "out"
    storage = f"sqlite:///{tmp_path / 'g.db'}"
    assert main(["reproduce", str(path), "--storage", storage, "--wandb", "off", "--out", str(out)]) == 0
    md = (out / "leaderboard.md").read_text()
    assert "dot" in md and "linear" in md
    assert len((out / "records.jsonl").read_text().splitlines()) == 4  # 2 rows × 1 task × 2 seeds


def test_a_seed_in_a_sweep_space_is_warned_about(tmp_path: Path) -> None:
    doc = {"name": "seedy", "base": str(REPO / "sweeps/base/sst2.yaml"),
           "space": {"train.seed": {"choices": [0, 1, 2]}}}
    path = tmp_path / "seedy.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.warns(UserWarning, match="replicate seeds|Replicate seeds"):
        load_sweep(path)


@pytest.mark.parametrize("name", ["../../x", "a/b", ".hidden"])
def test_names_cannot_leave_their_directory(name: str, tmp_path: Path) -> None:
    from attnlab.config import ConfigError

    doc = {"name": name, "base": str(REPO / "sweeps/base/sst2.yaml"), "space": {"train.lr": {"choices": [0.001]}}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match="name"):
        load_sweep(path)
