"""`attnlab generate`: the tokenizer travels inside the checkpoint (two checkpoints in one folder keep their own),
old checkpoints with tokenizer.json beside them still load, and a wrong --label or vocabulary is an error."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from attnlab.cli import main
from attnlab.config import load_run_config
from attnlab.train.callbacks import TOKENIZER_KEY
from attnlab.train.runner import train_run

REPO = Path(__file__).resolve().parents[2]
TINY = ["model.d_model=16", "model.n_heads=2", "model.n_layers=1", "model.d_ff=32", "train.batch_size=8",
        "train.max_steps=2", "task.max_train_examples=100", "task.max_eval_examples=8", "task.max_length=24",
        "task.target_length=4", "task.gen_examples=0"]


def _train(folder: Path, name: str, vocab: int) -> Path:
    cfg = load_run_config(REPO / "sweeps/base/songci_lm.yaml", [*TINY, f"task.vocab_size={vocab}"])
    ckpt = folder / name
    train_run(cfg, progress=False, checkpoint_path=ckpt)
    return ckpt


def _generate(ckpt: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["generate", str(ckpt), "--prompt", "明月", "--max-new-tokens", "3", *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_tokenizer_travels_inside_the_checkpoint(data_root: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    small = _train(tmp_path, "small.ckpt", 300)
    small_vocab = len(torch.load(small, map_location="cpu", weights_only=True)[TOKENIZER_KEY])
    large = _train(tmp_path, "large.ckpt", 600)  # same folder: its tokenizer.json overwrites the small one's
    for ckpt in (small, large):
        assert _generate(ckpt, capsys)[0] == 0
    (tmp_path / "tokenizer.json").unlink()  # nothing beside them: both still load
    assert _generate(small, capsys)[0] == 0
    assert small_vocab != len(torch.load(large, map_location="cpu", weights_only=True)[TOKENIZER_KEY])

    # a checkpoint from before this key still loads with tokenizer.json beside it ...
    old = torch.load(small, map_location="cpu", weights_only=True)
    tokenizer_json = old.pop(TOKENIZER_KEY)
    old_dir = tmp_path / "old"
    old_dir.mkdir()
    torch.save(old, old_dir / "model.ckpt")
    (old_dir / "tokenizer.json").write_text(tokenizer_json)
    assert _generate(old_dir / "model.ckpt", capsys)[0] == 0
    # ... and a tokenizer.json of another checkpoint is a vocabulary mismatch, not garbage output
    (old_dir / "tokenizer.json").write_text(torch.load(large, map_location="cpu", weights_only=True)[TOKENIZER_KEY])
    code, _, err = _generate(old_dir / "model.ckpt", capsys)
    assert code == 2 and "vocabulary mismatch" in err
    (old_dir / "tokenizer.json").unlink()
    code, _, err = _generate(old_dir / "model.ckpt", capsys)
    assert code == 2 and "no tokenizer inside" in err

    # --label on a model without CLN is an error
    code, _, err = _generate(small, capsys, "--label", "news_sports")
    assert code == 2 and "not label-conditioned" in err
