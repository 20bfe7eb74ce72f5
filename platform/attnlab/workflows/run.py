"""`attnlab run`: one training run, its record and (rank 0 only) its W&B run."""


from __future__ import annotations

from pathlib import Path

from attnlab.paths import results_dir
from attnlab.workflows.wandb_glue import say_where, tracker_for


def run_one(config: str, overrides: list[str], *, out: str | None, progress: bool, checkpoint: str | None,
            wandb: str, wandb_project: str | None, wandb_checkpoints: bool) -> int:
    """`attnlab run`: one training run, its record written to `out` and logged to W&B like a trial's (one run
    in group "runs", categorical tags, train/val metrics every train.log_every_n_steps, the record artifact, and
    the checkpoint artifact when one is saved or `wandb_checkpoints` asks)."""
    import tempfile

    from attnlab.config import load_run_config, to_dict
    from attnlab.train.distributed import is_global_zero
    from attnlab.train.runner import train_run

    cfg = load_run_config(config, overrides)
    out_dir = Path(out) if out else results_dir() / "runs"
    lead = is_global_zero()  # under torchrun/srun every rank runs this: one W&B run, one printed record (rank 0)
    wandb = wandb if lead else "off"
    tracker = tracker_for(wandb, wandb_project, {}, checkpoints=wandb_checkpoints)
    run = tracker.start(name=cfg.name, group="runs", job_type=cfg.task.name, config=to_dict(cfg),
                        tags=[f"task={cfg.task.name}", f"kind={cfg.model.attention.kind}"],
                        log_every_n_steps=cfg.train.log_every_n_steps)
    with tempfile.TemporaryDirectory(prefix="attnlab-ckpt-") as scratch:
        ckpt = Path(checkpoint) if checkpoint else Path(scratch) / "model.ckpt" if run.wants_checkpoint else None
        try:
            record = train_run(cfg, out_dir=out_dir, callbacks=run.callbacks(), progress=progress,
                               checkpoint_path=ckpt)
        except BaseException:
            run.finish(exit_code=1)
            raise
        run.summary(record.summary())
        run.log_record(record, ckpt if run.wants_checkpoint else None)
        say_where(run, "run")
        run.finish()
    if lead:
        print(record.format())
        print(f"record: {out_dir / record.file_name()}")
    return 0


# ---- sweeps -------------------------------------------------------------------------------------
