"""Every flag of every command says what it does and shows its default; `attnlab dashboard` resolves a
study's storage and starts optuna-dashboard on it (a fake server here: nothing serves forever)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest

from attnlab import dashboard
from attnlab.cli import main
from attnlab.cli_parser import _all_parsers, build_parser
from attnlab.config import ConfigError

REPO = Path(__file__).resolve().parents[1]


def _flags() -> list[tuple[argparse.ArgumentParser, argparse.Action]]:
    out = []
    for parser in _all_parsers(build_parser()):
        for action in parser._actions:
            if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                out.append((parser, action))
    return out


def test_every_flag_of_every_command_has_help() -> None:
    flags = _flags()
    assert len(flags) > 80  # the walk reaches the subcommands' subcommands (bench attention|train|gpu)
    missing = [f"{p.prog} {a.option_strings or a.dest}" for p, a in flags if not a.help]
    assert not missing, f"flags without help text: {missing}"


def test_every_subparser_shows_defaults() -> None:
    for parser, action in _flags():
        if action.help == argparse.SUPPRESS or action.default in (None, False) or not action.option_strings:
            continue
        text = parser.format_help()
        assert "default" in text, parser.prog
        formatter = parser.formatter_class(prog=parser.prog)
        shown = formatter._expand_help(action)  # type: ignore[attr-defined]
        assert "default" in shown, f"{parser.prog} {action.option_strings}: {shown!r} hides its default"


def test_help_of_a_subcommand_prints_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "worker processes on this machine (default: 1)" in out
    assert "(default: offline)" in out


def test_list_imports_no_heavy_library(tmp_path: Path) -> None:
    """`attnlab list` needs torch (the attention classes) and nothing heavier: no Lightning, Optuna, W&B, datasets."""
    code = ("import sys, resource; from attnlab.cli import main; main(['list']); "
            "heavy = [m for m in ('pytorch_lightning', 'optuna', 'wandb', 'datasets', 'matplotlib', 'scipy') "
            "if m in sys.modules]; r = resource.getrusage(resource.RUSAGE_SELF); "
            "print('HEAVY', heavy, 'CPU', r.ru_utime + r.ru_stime)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
                         env={"PYTHONPATH": str(REPO / "platform"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert "dot " in out.stdout and "glue/sst2" in out.stdout
    last = out.stdout.splitlines()[-1].split()
    assert last[:2] == ["HEAVY", "[]"], last
    assert float(last[-1]) < 4.0, f"attnlab list used {last[-1]} s of CPU"  # torch's import is most of it


def _fake_server(calls: list[dict[str, Any]]) -> Any:
    def run_server(storage: str, host: str, port: int) -> None:
        calls.append({"storage": storage, "host": host, "port": port})

    return run_server


def test_dashboard_serves_the_study_storage_on_loopback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.db"
    optuna.create_study(study_name="s", storage=f"sqlite:///{db}")
    calls: list[dict[str, Any]] = []
    assert dashboard.serve(dashboard.storage_of(str(db)), 8123, run_server=_fake_server(calls)) == 0
    assert calls == [{"storage": f"sqlite:///{db}", "host": "127.0.0.1", "port": 8123}]
    assert "http://127.0.0.1:8123/" in capsys.readouterr().out


def test_dashboard_finds_a_sweep_files_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sweep = REPO / "sweeps" / "key_size_heads.yaml"
    from attnlab.experiments.sweep_config import load_sweep

    name = load_sweep(sweep).name
    with pytest.raises(ConfigError, match="no study database"):
        dashboard.storage_of(str(sweep))  # nothing ran yet: an error, not an empty database
    db = tmp_path / "results" / "sweeps" / f"{name}.db"  # conftest points ATTNLAB_RESULTS at tmp_path/results
    db.parent.mkdir(parents=True)
    optuna.create_study(study_name=name, storage=f"sqlite:///{db}")
    assert dashboard.storage_of(str(sweep)) == f"sqlite:///{db}"
    assert dashboard.storage_of(name) == f"sqlite:///{db}"
    assert dashboard.storage_of("anything", storage="postgresql://h/db") == "postgresql://h/db"


def test_dashboard_through_the_cli_uses_optuna_dashboard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("optuna_dashboard")
    import optuna_dashboard

    db = tmp_path / "x.db"
    optuna.create_study(study_name="x", storage=f"sqlite:///{db}")
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(optuna_dashboard, "run_server", _fake_server(calls))
    assert main(["dashboard", str(db), "--port", "8124"]) == 0
    assert calls and calls[0]["host"] == "127.0.0.1" and calls[0]["port"] == 8124
