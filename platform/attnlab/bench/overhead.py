"""Platform overhead: one trial through the whole platform — an Optuna study (RDB storage in a
temp dir, as sweeps use), a W&B offline run with its Lightning callback, `runner.train_run` (data
module, Lightning Trainer, dev evaluation) — vs a bare PyTorch loop doing the same work: the same
TaskDataModule batches, the same SequenceClassifier (same seed, so the same initial weights), AdamW
with the same warm-up/decay schedule and grad clipping, then the same dev evaluation.

Both are timed end to end (data set-up included); imports are paid once before either starts, as a
sweep worker pays them once. Runs are ordered bare, platform, platform, bare (ABBA) so a drift
of the machine's speed hits both sides alike. A short bare calibration run first sizes the trial
to `trial_seconds` of training and warms the tokenizer cache and the file cache for both.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from attnlab.bench.common import REPO_ROOT, OtherLoad, median, pick_device, target
from attnlab.bench.config import Log, TrainBenchConfig

if TYPE_CHECKING:
    from attnlab.config import RunConfig

OVERHEAD_TARGET, MIN_TRIAL_S = 1.10, 60.0
# The SST-2 base run of sweeps/base/sst2.yaml, restated so the benchmark does not move when it is tuned.
BASE = {"name": "bench-overhead",
        "model": {"d_model": 128, "n_heads": 4, "n_layers": 2, "d_ff": 512, "max_len": 64, "dropout": 0.1},
        "task": {"name": "glue/sst2", "max_length": 64, "vocab_size": 8000, "max_train_examples": 20000},
        "train": {"batch_size": 32, "lr": 1e-3, "warmup_ratio": 0.1, "seed": 0}}
TINY = ["model.d_model=32", "model.n_heads=2", "model.n_layers=1", "model.d_ff=64", "model.max_len=32",
        "task.max_length=32", "task.vocab_size=500", "task.max_train_examples=200", "task.max_eval_examples=64",
        "train.batch_size=16"]


def data_root(cfg: TrainBenchConfig) -> Path:
    return Path(cfg.data_root or os.environ.get("ATTNLAB_DATA") or REPO_ROOT.parent / "shared" / "data")


def run_config(cfg: TrainBenchConfig, steps: int) -> RunConfig:
    from attnlab.config import build_run_config

    # The data root travels through the environment, as for a user, so no machine path lands in the
    # recorded config (and so in results/bench/train.json).
    os.environ["ATTNLAB_DATA"] = str(data_root(cfg))
    sets = [*(TINY if cfg.overhead_tiny else []), f"train.max_steps={steps}", f"train.seed={cfg.seed}"]
    return build_run_config(BASE, sets, source="attnlab.bench.overhead")


def bare_trial(cfg: RunConfig) -> dict[str, Any]:
    """The same steps as `runner.train_run` with no Lightning, Optuna or W&B."""
    import pytorch_lightning as pl

    from attnlab.model import SequenceClassifier
    from attnlab.train.common import build_optimizer
    from attnlab.train.fit import build_datamodule

    started = time.perf_counter()
    pl.seed_everything(cfg.train.seed, workers=True, verbose=False)  # the RNG state train_run starts from
    dm: Any = build_datamodule(cfg)
    dm.setup("fit")
    total_steps = min(cfg.train.max_steps, cfg.train.max_epochs * len(dm.train_dataloader()))
    if dm.spec.is_regression:
        raise ValueError("the bare loop implements classification tasks only")
    device = pick_device("auto")
    model = SequenceClassifier(dataclasses.replace(cfg.model, vocab_size=dm.tokenizer_vocab_size),
                               len(dm.spec.labels)).to(device).train()
    opt, sched = build_optimizer(model, cfg.train, total_steps)
    step, step_s = 0, 0.0
    while step < total_steps:
        for batch in dm.train_dataloader():
            t0 = time.perf_counter()
            batch = {k: v.to(device) for k, v in batch.items()}
            logits = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])  # (B, C)
            loss = F.cross_entropy(logits.float(), batch["labels"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.train.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
            opt.step()
            sched.step()
            step += 1
            step_s += time.perf_counter() - t0
            if step >= total_steps:
                break
    model.eval()
    correct = count = 0
    with torch.no_grad():
        for batch in dm.val_dataloader():
            logits = model(batch["input_ids"].to(device), batch["attention_mask"].to(device),
                           batch["token_type_ids"].to(device))
            correct += int((logits.argmax(-1).cpu() == batch["labels"]).sum())
            count += len(batch["labels"])
    return {"wall_s": time.perf_counter() - started, "train_step_s": step_s, "steps": step,
            "val/accuracy": correct / max(count, 1)}


def platform_trial(cfg: RunConfig, tmp: Path) -> dict[str, Any]:
    """One `study.optimize(objective, n_trials=1)` whose objective is the platform's one trial body
    (`attnlab.experiments.trial.run_trial`: Optuna + W&B offline + Lightning), exactly as a sweep runs it."""
    import optuna

    from attnlab.experiments.study import open_storage
    from attnlab.experiments.trial import PlannedRun, run_trial
    from attnlab.record import Record
    from attnlab.tracking import TrackingConfig, WandbTracker

    started = time.perf_counter()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="bench-overhead", storage=open_storage(f"sqlite:///{tmp / 'study.db'}"),
                                direction="maximize", load_if_exists=True)
    tracker = WandbTracker(TrackingConfig(mode="offline", dir=str(tmp)))
    records: list[Record] = []

    def objective(trial: optuna.Trial) -> float:
        run = PlannedRun(cfg, label=f"bench-overhead#{trial.number}", tags=("bench",))
        records.extend(run_trial(trial, [run], study="bench-overhead", tracker=tracker))
        return records[-1].metrics["val/accuracy"]

    study.optimize(objective, n_trials=1)
    wall = time.perf_counter() - started
    cost = records[0].cost
    return {"wall_s": wall, "train_step_s": cost.train_tokens / max(cost.train_tokens_per_s, 1e-9),
            "steps": cost.train_steps, "val/accuracy": records[0].metrics["val/accuracy"], "wandb": True}


def run_overhead(cfg: TrainBenchConfig, log: Log) -> dict[str, Any]:
    root = data_root(cfg)
    if not root.is_dir():
        return {"status": f"not run: no data at {root} (set ATTNLAB_DATA or --data-root)"}
    import optuna  # noqa: F401  (imports paid before timing, as in a sweep worker)
    import pytorch_lightning  # noqa: F401

    import attnlab.train.runner  # noqa: F401

    steps = cfg.trial_steps
    calibration: dict[str, Any] = {}
    if not steps:
        calib_steps = 40
        calibration = bare_trial(run_config(cfg, calib_steps))
        steps = math.ceil(cfg.trial_seconds / (calibration["train_step_s"] / calibration["steps"]))
        log(f"[train] overhead: calibration {calibration['train_step_s'] / calib_steps * 1000:.1f} ms/step "
            f"→ {steps} steps for ~{cfg.trial_seconds:.0f} s of training")
    run_cfg = run_config(cfg, steps)
    order = ["bare", "platform", "platform", "bare"] * math.ceil(cfg.overhead_repeats / 2)
    order = order[: 2 * cfg.overhead_repeats]
    runs: list[dict[str, Any]] = []
    for side in order:
        other = OtherLoad()
        other.start()
        with tempfile.TemporaryDirectory(prefix="attnlab-bench-trial-") as tmp:
            result = bare_trial(run_cfg) if side == "bare" else platform_trial(run_cfg, Path(tmp))
        runs.append({"side": side, **result, "other_cpu_cores": other.stop()})
        log(f"[train] overhead: {side:<8} {result['wall_s']:7.1f} s wall, {result['train_step_s']:7.1f} s in "
            f"training steps, {result['steps']} steps, dev accuracy {result['val/accuracy']:.4f}")
    return {"status": "ok", "steps": steps, "order": order, "runs": runs, "calibration": calibration,
            "config": {"model": dataclasses.asdict(run_cfg.model), "task": dataclasses.asdict(run_cfg.task),
                       "train": dataclasses.asdict(run_cfg.train)},
            **summarize_runs(runs)}


def summarize_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The ratio uses each side's fastest run. Other load on the machine only ever adds time, and a
    1-minute run is long enough to catch a busy spell (visible as a run whose training steps alone
    ran > 20% slower than the fastest run's: both sides do the same steps); the median is kept too."""
    walls = {s: [r["wall_s"] for r in runs if r["side"] == s] for s in ("bare", "platform")}
    step_s = {s: [r["train_step_s"] for r in runs if r["side"] == s] for s in ("bare", "platform")}
    fastest_steps = min(r["train_step_s"] for r in runs)
    for r in runs:
        r["disturbed"] = r["train_step_s"] > 1.2 * fastest_steps
    return {
        "wandb_included": all(r.get("wandb", True) for r in runs),
        "estimator": "fastest run per side (median also given)",
        "bare_wall_s": min(walls["bare"]), "platform_wall_s": min(walls["platform"]),
        "ratio": min(walls["platform"]) / min(walls["bare"]),
        "ratio_median": median(walls["platform"]) / median(walls["bare"]),
        "step_time_ratio": min(step_s["platform"]) / min(step_s["bare"]),
        "fixed_overhead_s": min(walls["platform"]) - min(walls["bare"]),
    }


def overhead_target(overhead: dict[str, Any]) -> dict[str, Any]:
    goal = f"platform trial (Optuna + W&B offline + Lightning) ≤ {OVERHEAD_TARGET}× bare loop wall time, trial ≥ 1 min"
    if overhead.get("status") != "ok":
        return target("platform_overhead", goal, None, None, overhead.get("status", "not run"))
    ratio, bare = overhead["ratio"], overhead["bare_wall_s"]
    detail = (f"fastest run per side: wall {overhead['platform_wall_s']:.1f} s vs {bare:.1f} s "
              f"({overhead['fixed_overhead_s']:+.1f} s); time inside training steps {overhead['step_time_ratio']:.3f}×; "
              f"ratio of medians {overhead['ratio_median']:.3f}×; {overhead['steps']} steps")
    disturbed = [i + 1 for i, r in enumerate(overhead["runs"]) if r.get("disturbed")]
    if disturbed:
        detail += f"; run(s) {disturbed} slowed by other load (training steps > 1.2× the fastest run's)"
    if not overhead["wandb_included"]:
        detail += "; W&B NOT included (attnlab.tracking not importable): Lightning + Optuna only"
    if bare < MIN_TRIAL_S:
        detail += f"; trial only {bare:.0f} s (< {MIN_TRIAL_S:.0f} s): not the target's setting"
    return target("platform_overhead", goal, ratio, ratio <= OVERHEAD_TARGET, detail)
