"""One training run: `train_run(cfg)` → a `Record` (written to `out_dir` when given).

Used by `attnlab run` and by the one trial body of every study (sweeps and grids). The generation judges
(label agreement of a conditioned LM) run here, after the fit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from attnlab.config import RunConfig
from attnlab.record import Record
from attnlab.train.fit import fit, objective_of


def train_run(cfg: RunConfig, out_dir: str | Path | None = None, callbacks: list[pl.Callback] | None = None,
              logger: Any = None, progress: bool = True, checkpoint_path: str | Path | None = None,
              checkpoint_dir: str | Path | None = None) -> Record:
    """Train and evaluate one config; returns the record (and writes it to `out_dir` when given: on rank 0
    only, when several processes train it). `checkpoint_dir`: see `fit`.

    A multi-device run started here trains in a child process that launches the ranks
    (`attnlab.train.distributed`); the callbacks and logger stay in this process, so such a run reports to
    them once, through its record (no per-step pruning or curves)."""
    import dataclasses

    from attnlab.train.distributed import is_global_zero, launch, needs_launch

    if needs_launch(cfg.train):
        record = launch(cfg, progress, checkpoint_path, checkpoint_dir)
        if out_dir is not None:
            record.write(out_dir)
        return record
    module, dm, record = fit(cfg, callbacks, logger, progress, checkpoint_path, checkpoint_dir)
    if objective_of(cfg) == "conditional_lm":
        from attnlab.train.generation.judge import condition_agreement

        record = dataclasses.replace(record, metrics={**record.metrics, **condition_agreement(cfg, module, dm, progress)})
    if getattr(module, "samples", None):
        record = dataclasses.replace(record, samples=list(module.samples))
    if out_dir is not None and is_global_zero():
        record.write(out_dir)
    return record
