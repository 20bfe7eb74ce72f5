"""Sweep reports from real (tiny, in-memory) Optuna studies: trials are added with `create_trial` and carry
hand-made records, so nothing trains. Checks the ranking, the Pareto front (against a brute force and
Optuna's own `best_trials`), importance, FAIL/PRUNED reasons and that the export rebuilds the same report."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from attnlab.experiments.results import TrialRow, read_trials_jsonl, study_trials
from attnlab.experiments.space import Param
from attnlab.experiments.sweep_config import Objective, SweepConfig
from attnlab.report.sweep import (
    build_sweep_report,
    is_sweep_export,
    leaderboard_table,
    load_sweep_export,
    report_sweep_study,
    sweep_meta,
)

DISTS = {
    "model.attention.kind": CategoricalDistribution(["dot", "linear", "synthesizer_dense"]),
    "train.lr": FloatDistribution(1e-4, 1e-2, log=True),
    "model.n_layers": IntDistribution(1, 4),
    "model.key_size": CategoricalDistribution([None, 32, 64]),
}
ACC, PARAMS = "val/accuracy", "cost/params"
FAIL_REASON = "NonFiniteLossError: training loss became nan at step 12"


def record(task: str, acc: float, n_params: int, trial: int) -> dict[str, Any]:
    return {"name": f"demo-t{trial}", "task": task, "trial": trial, "seed": 0,
            "metrics": {ACC: acc, "val/loss": 1.0 - acc},
            "cost": {"params": n_params, "train_tokens_per_s": 1000.0 + trial, "train_tokens": 4096,
                     "train_steps": 8, "wall_time_s": 2.5, "peak_mem_mib": 300.0 + trial}}


def meta_for(objectives: list[tuple[str, str]], out: Path, tasks: tuple[str, ...] = ("glue/sst2",)) -> dict[str, Any]:
    return {"kind": "sweep", "name": "demo", "title": "Sweep: demo", "description": "a test sweep",
            "command": "attnlab sweep sweeps/demo.yaml", "sweep_file": "sweeps/demo.yaml",
            "objectives": [{"metric": m, "direction": d} for m, d in objectives], "tasks": list(tasks),
            "sampler": {"name": "tpe", "seed": 0}, "pruner": {"name": "none"}, "n_trials": 20,
            "space": [], "attnlab_version": "0.1.0", "git_commit": "abc123", "date": "2026-01-02T03:04:05+00:00",
            "regenerate": f"attnlab report {out / 'trials.jsonl'}"}


def add_complete(study: optuna.Study, params: dict[str, Any], values: list[float], n_params: int = 1000) -> None:
    number = len(study.trials)
    study.add_trial(create_trial(params=params, distributions={k: DISTS[k] for k in params}, values=values,
                                 user_attrs={"records": [record("glue/sst2", values[0], n_params, number)]}))


def add_failed(study: optuna.Study) -> None:
    study.add_trial(create_trial(params={"model.attention.kind": "dot"},
                                 distributions={"model.attention.kind": DISTS["model.attention.kind"]},
                                 state=TrialState.FAIL,
                                 user_attrs={"fail_reason": FAIL_REASON, "failed_task": "glue/sst2"}))


def single_objective_study(direction: str) -> optuna.Study:
    """Trials #0-#4 complete with accuracies 0.70 0.85 0.60 0.85 0.75; #5 FAIL; #6 PRUNED at step 200."""
    study = optuna.create_study(direction=direction)
    study.set_user_attr("objectives", [ACC])
    for i, acc in enumerate([0.70, 0.85, 0.60, 0.85, 0.75]):
        add_complete(study, {"model.attention.kind": ["dot", "linear"][i % 2], "train.lr": 1e-3 * (i + 1)}, [acc])
    add_failed(study)
    study.add_trial(create_trial(params={"model.attention.kind": "linear"},
                                 distributions={"model.attention.kind": DISTS["model.attention.kind"]},
                                 state=TrialState.PRUNED, intermediate_values={100: 0.5, 200: 0.52}))
    return study


def md_trial_order(md: str, section: str = "## Leaderboard") -> list[int]:
    """Trial numbers in the order the first table after `section` lists them."""
    part = md.split(section, 1)[1].split("\n## ", 1)[0]
    return [int(m) for m in re.findall(r"^\| (?:\d+ \| )?#(\d+) \|", part, flags=re.M)]


@pytest.mark.parametrize(("direction", "expected", "ranks"), [
    ("maximize", [1, 3, 4, 0, 2], [1, 1, 3, 4, 5]),
    ("minimize", [2, 0, 4, 1, 3], [1, 2, 3, 4, 4]),
])
def test_leaderboard_orders_best_first_then_lists_unfinished_trials(
        tmp_path: Path, direction: str, expected: list[int], ranks: list[int]) -> None:
    study = single_objective_study(direction)
    meta = meta_for([(ACC, direction)], tmp_path)
    rows = study_trials(study)
    columns, body = leaderboard_table(meta, rows)
    at = {c: i for i, c in enumerate(columns)}
    assert [line[at["trial"]] for line in body] == [*expected, 5, 6]
    assert [line[at["rank"]] for line in body] == [*ranks, None, None]
    assert [line[at["state"]] for line in body][-2:] == ["FAIL", "PRUNED"]
    assert body[0][at[ACC]] == pytest.approx(0.60 if direction == "minimize" else 0.85)

    build_sweep_report(meta, rows, tmp_path)
    md = (tmp_path / "leaderboard.md").read_text()
    assert md_trial_order(md) == expected
    assert md_trial_order(md, "## Trials that did not complete") == [5, 6]
    csv_lines = (tmp_path / "leaderboard.csv").read_text().splitlines()
    assert [int(line.split(",")[1]) for line in csv_lines[1:]] == [*expected, 5, 6]


def test_failed_and_pruned_trials_appear_with_their_reason(tmp_path: Path) -> None:
    study = single_objective_study("maximize")
    build_sweep_report(meta_for([(ACC, "maximize")], tmp_path), study_trials(study), tmp_path)
    md = (tmp_path / "leaderboard.md").read_text()
    others = md.split("## Trials that did not complete", 1)[1]
    assert f"| #5 | FAIL | kind=dot | {FAIL_REASON} (task glue/sst2) |" in others
    assert "| #6 | PRUNED | kind=linear | pruned at step 200 (val/accuracy = 0.52) |" in others
    assert FAIL_REASON in (tmp_path / "leaderboard.csv").read_text()
    assert FAIL_REASON in (tmp_path / "report.html").read_text()


def test_trials_read_from_a_sqlite_storage_keep_distributions_and_schema_1_records(tmp_path: Path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", study_name="s", direction="maximize")
    old = {"glue/sst2": {"task": "glue/sst2", "name": "old", "metrics": {ACC: 0.8},
                         "cost": {"params": 7, "peak_mem_mb": 123.0}}}  # schema 1: task → record, MB name
    study.add_trial(create_trial(params={"train.lr": 0.001}, distributions={"train.lr": DISTS["train.lr"]},
                                 value=0.8, user_attrs={"records": old}))
    [row] = study_trials(optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 's.db'}"))
    assert row.distributions == {"train.lr": DISTS["train.lr"]}
    assert row.records[0].cost.peak_mem_mib == 123.0 and row.values == [0.8] and row.fail_reason is None


def brute_force_front(points: dict[int, tuple[float, float]]) -> set[int]:
    """Trials no other trial beats: accuracy at least as high AND params at most as many, one strictly."""
    def beats(a: tuple[float, float], b: tuple[float, float]) -> bool:
        return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])

    return {i for i, p in points.items() if not any(beats(q, p) for j, q in points.items() if j != i)}


def two_objective_study() -> tuple[optuna.Study, dict[int, tuple[float, float]]]:
    """25 trials on a coarse grid, so duplicates and ties on one axis occur; plus one FAIL; one parameter
    (`key_size`) is conditional (only sampled for dot)."""
    rng = random.Random(7)
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_user_attr("objectives", [ACC, PARAMS])
    points = {}
    for i in range(25):
        acc, n_params = rng.choice([0.6, 0.7, 0.8, 0.9]), rng.choice([1000, 2000, 3000])
        kind = rng.choice(["dot", "linear"])
        params: dict[str, Any] = {"model.attention.kind": kind, "model.n_layers": rng.randint(1, 4),
                                  "train.lr": 10 ** rng.uniform(-4, -2)}
        if kind == "dot":
            params["model.key_size"] = rng.choice([None, 32, 64])
        add_complete(study, params, [acc, float(n_params)], n_params)
        points[i] = (acc, float(n_params))
    add_failed(study)
    return study, points


def test_pareto_front_matches_a_brute_force_and_optunas_best_trials(tmp_path: Path) -> None:
    study, points = two_objective_study()
    expected = brute_force_front(points)
    assert 1 < len(expected) < len(points)  # the data really has a front, with dominated trials
    assert {t.number for t in study.best_trials} == expected
    meta = meta_for([(ACC, "maximize"), (PARAMS, "minimize")], tmp_path)
    columns, body = leaderboard_table(meta, study_trials(study))
    at = {c: i for i, c in enumerate(columns)}
    assert {line[at["trial"]] for line in body if line[at["pareto"]] == 1} == expected
    assert {line[at["trial"]] for line in body if line[at["pareto"]] == 0} == set(points) - expected

    paths = build_sweep_report(meta, study_trials(study), tmp_path)
    assert "pareto.png" in {p.name for p in paths}
    md = (tmp_path / "leaderboard.md").read_text()
    assert set(md_trial_order(md, "## Pareto front")) == expected


def test_importance_covers_every_varying_parameter_and_sums_to_one(tmp_path: Path) -> None:
    """Accuracy is driven by n_layers alone (the others are noise): it must come out most important."""
    rng = random.Random(3)
    study = optuna.create_study(directions=["maximize", "minimize"])
    for _ in range(30):
        layers = rng.randint(1, 4)
        params = {"model.attention.kind": rng.choice(["dot", "linear", "synthesizer_dense"]),
                  "train.lr": 10 ** rng.uniform(-4, -2), "model.n_layers": layers,
                  "model.key_size": rng.choice([None, 32, 64])}
        add_complete(study, params, [0.5 + 0.1 * layers + 0.01 * rng.random(), 1000.0 + rng.random()])
    from attnlab.report.sweep_data import compute_sweep

    meta = meta_for([(ACC, "maximize"), (PARAMS, "minimize")], tmp_path)
    importance = compute_sweep(meta, study_trials(study)).importance
    assert importance.message is None
    assert set(importance.values) == set(DISTS)
    for j in range(2):
        column = [vs[j] for vs in importance.values.values()]
        assert all(v is not None and v >= 0 for v in column)
        assert sum(v for v in column if v is not None) == pytest.approx(1.0)
    assert next(iter(importance.values)) == "model.n_layers"
    assert importance.values["model.n_layers"][0] > 0.5
    build_sweep_report(meta, study_trials(study), tmp_path)
    assert "| model.n_layers | " in (tmp_path / "leaderboard.md").read_text()
    assert (tmp_path / "importance.png").is_file()


def test_too_few_trials_or_one_value_give_a_message_not_a_crash(tmp_path: Path) -> None:
    study = optuna.create_study(direction="maximize")
    add_complete(study, {"model.n_layers": 2, "train.lr": 0.001}, [0.7])
    add_failed(study)
    meta = meta_for([(ACC, "maximize")], tmp_path)
    names = {p.name for p in build_sweep_report(meta, study_trials(study), tmp_path / "one")}
    assert "importance.png" not in names and "history.png" in names
    assert "importance needs ≥ 3 complete trials; this study has 1." in (tmp_path / "one" / "leaderboard.md").read_text()

    for lr in (0.001, 0.002, 0.003):
        add_complete(study, {"model.n_layers": 2, "train.lr": lr}, [0.7])  # n_layers fixed, accuracy constant
    build_sweep_report(meta, study_trials(study), tmp_path / "flat")
    md = (tmp_path / "flat" / "leaderboard.md").read_text()
    assert "`model.n_layers` took one value in every complete trial" in md
    assert "importance needs objective values that differ" in md

    empty = optuna.create_study(direction="maximize")
    add_failed(empty)
    build_sweep_report(meta, study_trials(empty), tmp_path / "none")
    assert "No trial has completed yet." in (tmp_path / "none" / "leaderboard.md").read_text()


def test_export_rebuilds_an_identical_report(tmp_path: Path) -> None:
    study, _ = two_objective_study()
    add_complete(study, {"train.lr": 0.0012345678901234}, [0.8123456789012345, 1234.5678901234])  # full precision
    meta = meta_for([(ACC, "maximize"), (PARAMS, "minimize")], tmp_path / "first")
    rows = study_trials(study)
    first = build_sweep_report(meta, rows, tmp_path / "first")
    for source in (tmp_path / "first", tmp_path / "first" / "trials.jsonl"):
        assert is_sweep_export(source)
        got_meta, got_rows = load_sweep_export(source)
        assert got_meta == meta and got_rows == rows
    second = build_sweep_report(got_meta, got_rows, tmp_path / "second")
    assert [p.name for p in first] == [p.name for p in second]
    for p, q in zip(first, second):
        assert p.read_bytes() == q.read_bytes(), p.name
    md = (tmp_path / "first" / "leaderboard.md").read_text()
    assert f"- Regenerate: `attnlab report {tmp_path / 'first' / 'trials.jsonl'}`" in md


def test_load_sweep_export_names_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"trials\.jsonl"):
        load_sweep_export(tmp_path)
    (tmp_path / "records.jsonl").write_text("")
    with pytest.raises(FileNotFoundError, match="ablation report"):
        load_sweep_export(tmp_path)
    (tmp_path / "trials.jsonl").write_text('{"number": 0, "state": "FAIL", "params": {}}\nnot json\n')
    with pytest.raises(FileNotFoundError, match=r"meta\.json"):
        load_sweep_export(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"kind": "ablation"}))
    with pytest.raises(ValueError, match="not a sweep report"):
        load_sweep_export(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps(meta_for([(ACC, "maximize")], tmp_path)))
    with pytest.raises(ValueError, match="line 2: not JSON"):
        load_sweep_export(tmp_path)
    (tmp_path / "trials.jsonl").write_text('{"number": 0, "state": "DONE", "params": {}}\n')
    with pytest.raises(ValueError, match=r"line 1: state 'DONE'"):
        read_trials_jsonl(tmp_path / "trials.jsonl")


def test_report_from_a_sweep_config_and_study_is_self_contained(tmp_path: Path) -> None:
    sweep = SweepConfig(name="demo", path=Path("sweeps/demo.yaml"), base={}, tasks=("glue/sst2",), fixed={},
                        objectives=(Objective(ACC, "maximize"),),
                        params=(Param("model.attention.kind", "categorical", ("dot", "linear")),
                                Param("train.lr", "float", low=1e-4, high=1e-2, log=True),
                                Param("model.key_size", "categorical", (None, 32),
                                      when={"model.attention.kind": ("dot",)})),
                        sampler={"name": "tpe", "seed": 0}, n_trials=7)
    meta = sweep_meta(sweep, "attnlab sweep sweeps/demo.yaml", tmp_path)
    assert meta["kind"] == "sweep" and meta["objectives"] == [{"metric": ACC, "direction": "maximize"}]
    assert meta["regenerate"] == f"attnlab report {tmp_path / 'trials.jsonl'}"
    assert json.loads(json.dumps(meta)) == meta  # plain JSON, nothing lost in meta.json
    paths = report_sweep_study(sweep, single_objective_study("maximize"), tmp_path, "attnlab sweep sweeps/demo.yaml")
    assert {"leaderboard.md", "leaderboard.csv", "report.html", "trials.jsonl", "meta.json", "history.png"} <= {
        p.name for p in paths}
    html = (tmp_path / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == sum(p.suffix == ".png" for p in paths)
    assert not re.findall(r"""\b(?:src|href)\s*=\s*(?!["']?data:)|<script\b|<link\b|url\(""", html, re.I)
    md = (tmp_path / "leaderboard.md").read_text()
    assert "| model.key_size | categorical | null, 32 | model.attention.kind ∈ {dot} |" in md
    assert isinstance(load_sweep_export(tmp_path)[1][0], TrialRow)
