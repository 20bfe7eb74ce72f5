"""A rerun with the same recorded settings reproduces every cell bit-for-bit: the same tiny grid run with
`--workers 1` and with `--workers 2` (same per-trial thread count) gives identical metrics in every cell."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from attnlab.cli import main

REPO = Path(__file__).resolve().parents[2]


def tiny_ablation(tmp_path: Path, data_root: Path) -> Path:
    doc = {
        "name": "bitwise", "title": "bit-for-bit", "paper": "—", "base": str(REPO / "sweeps/base/sst2.yaml"),
        "set": {"model.d_model": 16, "model.n_heads": 2, "model.n_layers": 1, "model.d_ff": 32, "model.max_len": 32,
                "task.max_length": 32, "task.vocab_size": 300, "task.max_train_examples": 192,
                "task.max_eval_examples": 64, "train.batch_size": 16, "train.max_steps": 12,
                "train.num_threads": 1, "task.data_root": str(data_root)},
        "baseline": "dot",
        "rows": {"dot": {"model.attention.kind": "dot"}, "linear": {"model.attention.kind": "linear"}},
        "tasks": ["glue/sst2"], "seeds": [0, 1],
        "claims": [{"kind": "ours", "row": "linear", "vs": "dot", "expect": "similar", "text": "linear ≈ dot"}],
    }
    path = tmp_path / "bitwise.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def cells(out: Path) -> dict[tuple[str, str, int], dict[str, object]]:
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    return {(r["row"], r["task"], r["seed"]): r for r in records}


@pytest.mark.slow
def test_workers_1_and_2_give_identical_cells(data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "platform"), os.environ.get("PYTHONPATH", "")]))
    path = tiny_ablation(tmp_path, data_root)
    runs = {}
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        code = main(["reproduce", str(path), "--workers", str(workers), "--storage",
                     f"sqlite:///{tmp_path / f'w{workers}.db'}", "--wandb", "off", "--out", str(out)])
        assert code == 0
        runs[workers] = cells(out)
    one, two = runs[1], runs[2]
    assert set(one) == set(two) and len(one) == 4
    for cell in one:
        assert one[cell]["metrics"] == two[cell]["metrics"], cell  # exact equality, every metric
        assert one[cell]["curves"] == two[cell]["curves"], cell
        assert one[cell]["threads"] == two[cell]["threads"] == 1
        assert one[cell]["concurrent_workers"] == 1 and two[cell]["concurrent_workers"] == 2
    # the report of the two-worker run flags its throughput as measured on shared cores
    md = (tmp_path / "out2" / "leaderboard.md").read_text()
    assert "shared cores" in md
    assert "shared cores" not in (tmp_path / "out1" / "leaderboard.md").read_text()
    # rebuilt from the storage, the header keeps the producing command and adds the rebuilding one
    produced = next(line for line in md.splitlines() if line.startswith("- Produced by:"))
    assert main(["report", str(path), "--storage", f"sqlite:///{tmp_path / 'w2.db'}", "--wandb", "off",
                 "--out", str(tmp_path / "rebuilt")]) == 0
    rebuilt = (tmp_path / "rebuilt" / "leaderboard.md").read_text()
    assert produced in rebuilt
    assert f"- Report rebuilt by: `attnlab report {path} --preset default`" in rebuilt
