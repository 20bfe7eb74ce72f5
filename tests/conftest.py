import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed_and_isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    monkeypatch.setenv("ATTNLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ATTNLAB_RESULTS", str(tmp_path / "results"))  # nothing a test runs writes into results/


@pytest.fixture
def data_root(monkeypatch: pytest.MonkeyPatch) -> Path:
    root = Path(os.environ.get("ATTNLAB_DATA", DEFAULT_DATA))
    if not root.is_dir():
        pytest.skip(f"real data root {root} absent: set ATTNLAB_DATA to the GLUE/CLUE data directory")
    monkeypatch.setenv("ATTNLAB_DATA", str(root))  # commands under test read it like a user's shell would
    return root
