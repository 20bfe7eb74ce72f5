"""Every bad input of issue #11 (items 6-8) as one table: each case runs `attnlab.cli.main` and must end with
exit code 2 and ONE named error (the file or URL, and the key), never a traceback, never a file written.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from attnlab.cli import main

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "sweeps/base/sst2.yaml"
TINY = {"model.d_model": 16, "model.n_heads": 2, "model.n_layers": 1, "model.d_ff": 32, "model.max_len": 32,
        "task.max_length": 32, "task.vocab_size": 300, "train.max_steps": 4}


def sweep_doc(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": "bad", "base": str(BASE), "set": dict(TINY),
                           "objectives": [{"metric": "val/accuracy"}],
                           "space": {"train.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
                           "sampler": {"name": "random", "seed": 0}, "n_trials": 2}
    doc.update(fields)
    return doc


def run_doc(**train: Any) -> dict[str, Any]:
    doc = yaml.safe_load(BASE.read_text())
    for dotted, value in train.items():
        section, key = dotted.split("__")
        doc[section][key] = value
    return doc


def ablation_doc(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": "badabl", "base": str(BASE), "set": dict(TINY), "rows": {"dot": {}},
                           "tasks": ["glue/sst2"], "seeds": [0]}
    doc.update(fields)
    return doc


@dataclass(frozen=True)
class Case:
    id: str
    kind: str  # sweep | run | ablation | raw
    doc: Any = None  # YAML document (or bytes for raw files)
    argv: tuple[str, ...] = ()  # extra arguments
    expect: tuple[str, ...] = ()  # every one of these must be in the error line
    setup: Callable[[Path, pytest.MonkeyPatch], None] | None = field(default=None, compare=False)


def _readonly(tmp: Path, mp: pytest.MonkeyPatch) -> None:
    db = tmp / "ro.db"
    db.write_bytes(b"")
    db.chmod(0o444)
    if os.geteuid() == 0:  # root may write anything: simulate the permission the check reads
        real = os.access
        mp.setattr("attnlab.experiments.storage.os.access",
                   lambda p, mode: False if Path(p) == db and mode == os.W_OK else real(p, mode))


CASES = [
    # item 7: sweep sections strict, with did-you-mean
    Case("sampler-typo", "sweep", sweep_doc(sampler={"name": "random", "sede": 0}), expect=("sampler.sede", "'seed'")),
    Case("sampler-name", "sweep", sweep_doc(sampler={"name": "rnadom"}), expect=("sampler.name", "rnadom")),
    Case("heartbeat-typo", "sweep", sweep_doc(heartbeat={"intervl_s": 1}), expect=("heartbeat.intervl_s", "interval_s")),
    Case("wandb-typo", "sweep", sweep_doc(wandb={"projet": "x"}), expect=("wandb.projet", "'project'")),
    Case("pruner-typo", "sweep", sweep_doc(pruner={"name": "median", "n_warmup_step": 5}),
         expect=("pruner.n_warmup_step", "'n_warmup_steps'")),
    Case("pruner-name", "sweep", sweep_doc(pruner={"name": "medain"}), expect=("pruner.name", "medain")),
    Case("grace-abc", "sweep", sweep_doc(heartbeat={"grace_s": "abc"}), expect=("heartbeat.grace_s", "'abc'")),
    Case("interval-0", "sweep", sweep_doc(heartbeat={"interval_s": 0}), expect=("heartbeat.interval_s", ">= 1")),
    Case("tasks-5", "sweep", sweep_doc(tasks=5), expect=("tasks", "list of task names")),
    Case("storage-scheme-file", "sweep", sweep_doc(storage="postgress://u@h/db"), expect=("storage", "postgress://")),
    Case("storage-scheme-flag", "sweep", sweep_doc(), argv=("--storage", "foo://x"), expect=("--storage", "foo://x")),
    Case("n-trials-0", "sweep", sweep_doc(n_trials=0), expect=("n_trials", ">= 1")),
    # ranges validated in full
    Case("heads-range", "sweep", sweep_doc(space={"model.n_heads": {"type": "int", "low": 2, "high": 3}}),
         expect=("space.model.n_heads", "value 3", "divisible")),
    Case("low-gt-high", "sweep", sweep_doc(space={"train.lr": {"type": "float", "low": 1e-2, "high": 1e-4}}),
         expect=("space.train.lr", "must be <= high")),
    Case("step-divides", "sweep", sweep_doc(space={"model.n_layers": {"type": "int", "low": 1, "high": 4, "step": 2}}),
         expect=("space.model.n_layers.step", "does not divide")),
    Case("choice-invalid", "sweep", sweep_doc(space={"model.n_heads": [2, 5]}), expect=("space.model.n_heads", "5")),
    # item 6: names cannot leave their folder
    Case("sweep-name-traversal", "sweep", sweep_doc(name="../../x"), expect=("name", "../../x", "no '/'")),
    Case("run-name-traversal", "run", {**run_doc(), "name": "../../x"}, expect=("name", "../../x")),
    Case("row-name-traversal", "ablation", ablation_doc(rows={"../x": {}}), expect=("rows.../x", "no '/'")),
    # every numeric run-config field range-checked at load
    Case("batch-size-0", "run", run_doc(train__batch_size=0), expect=("train.batch_size", ">= 1")),
    Case("max-length-0", "run", run_doc(task__max_length=0), expect=("task.max_length", ">= 1")),
    Case("val-every-neg", "run", run_doc(train__val_every_n_steps=-1), expect=("train.val_every_n_steps", ">= 0")),
    Case("lr-nan", "run", run_doc(train__lr=float("nan")), expect=("train.lr", "finite")),
    Case("max-train-neg", "run", run_doc(task__max_train_examples=-5), expect=("task.max_train_examples", "null")),
    Case("accelerator-tpu", "run", run_doc(train__accelerator="tpu"), expect=("train.accelerator", "tpu")),
    Case("max-epochs-0", "run", run_doc(train__max_epochs=0), expect=("train.max_epochs", ">= 1")),
    Case("empty-run-config", "raw", b"", expect=("empty config file",)),
    Case("binary-file", "raw", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", expect=("binary file",)),
    Case("directory", "raw", None, expect=("is a directory",)),
    Case("over-1mb", "raw", b"# " + b"x" * 1_100_000 + b"\n", expect=("capped at 1000000 bytes",)),
    Case("set-typo", "run", run_doc(), argv=("--set", "train.learnig_rate=0.1"),
         expect=("command line: --set train.learnig_rate=0.1", "unknown key")),
    Case("set-bad-value", "run", run_doc(), argv=("--set", "train.batch_size=0"),
         expect=("command line: --set train.batch_size=0", ">= 1")),
    # ablation sections strict
    Case("ablation-pretrain-typo", "ablation", ablation_doc(pretrain={"tsk": "lm/wikitext2"}),
         expect=("pretrain.tsk", "'task'")),
    Case("ablation-claims-typo", "ablation",
         ablation_doc(claims=[{"row": "dot", "vs": "dot", "expect": "better", "txt": "x"}]),
         expect=("claims[0].txt", "'text'")),
    Case("ablation-row-long-form-typo", "ablation", ablation_doc(rows={"dot": {"set": {}, "untei": True}}),
         expect=("rows.dot.untei", "'untie'")),
    Case("ablation-preset-typo", "ablation", ablation_doc(presets={"smoke": {"seds": [0]}}),
         expect=("presets.smoke.seds", "'seeds'")),
    Case("ablation-seeds", "ablation", ablation_doc(seeds="0,1"), expect=("seeds", "list of integers")),
    Case("ablation-wandb-typo", "ablation", ablation_doc(wandb={"projetc": "x"}), expect=("wandb.projetc",)),
    # item 8: storage that cannot be written, and status that must not create a database
    Case("sqlite-missing-folder", "sweep", sweep_doc(), argv=("--storage", "sqlite:////nonexistent/dir/s.db"),
         expect=("/nonexistent/dir", "does not exist")),
    Case("sqlite-read-only", "sweep", sweep_doc(), argv=("--storage", "sqlite:///{tmp}/ro.db"),
         expect=("ro.db", "read-only"), setup=_readonly),
    Case("status-wrong-storage", "status", None, argv=("--storage", "sqlite:///{tmp}/nothing.db"),
         expect=("no study database at", "nothing.db")),
    Case("status-default-storage", "status", None, expect=("no study database at", "nosuchstudy.db")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_one_named_error(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    if case.setup is not None:
        case.setup(tmp_path, monkeypatch)
    path = tmp_path / f"{case.kind}.yaml"
    if case.kind == "raw":
        if case.doc is None:
            path.mkdir()
        else:
            path.write_bytes(case.doc)
        argv = ["run", str(path)]
    elif case.kind == "status":
        argv = ["sweep", "status", "nosuchstudy"]
    else:
        path.write_text(yaml.safe_dump(case.doc))
        argv = {"sweep": ["sweep", str(path), "--wandb", "off"], "run": ["run", str(path), "--wandb", "off"],
                "ablation": ["reproduce", str(path), "--dry-run"]}[case.kind]
    argv += [a.replace("{tmp}", str(tmp_path)) for a in case.argv]
    before = sorted(p.name for p in tmp_path.rglob("*"))  # ATTNLAB_RESULTS (default storage) is under tmp_path
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, f"expected one line, got:\n{err}"
    assert err.startswith("attnlab: config error:")
    for needle in case.expect:
        assert needle in err, f"{needle!r} not in {err!r}"
    if "--set" in argv:  # the command line is to blame, not the file
        assert str(path) not in err
    elif "--storage" not in argv and case.kind != "status":
        assert str(path) in err, f"file not named: {err}"
    assert sorted(p.name for p in tmp_path.rglob("*")) == before, "a bad input wrote a file"
