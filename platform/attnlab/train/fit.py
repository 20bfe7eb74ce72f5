"""Building and fitting one run: config → datamodule → LightningModule → Trainer → (module, datamodule, Record).

Knows Lightning, not Optuna or W&B: callers pass callbacks (pruning, tracking) in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import resource
import time
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

import attnlab
from attnlab.config import ConfigError, RunConfig, config_hash, to_dict
from attnlab.record import Cost, Record
from attnlab.tasks import get_task

REPO_ROOT = Path(__file__).resolve().parents[2]


def git_commit() -> str:
    from attnlab.paths import git_commit as checkout_commit  # "unknown" in an installed wheel

    return checkout_commit()


def peak_memory_mib(device: torch.device) -> float:
    """Peak GPU memory allocated (CUDA) or the process's peak resident set size (CPU), in MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def resolve_precision(precision: str) -> str:
    if precision != "auto":
        return "32-true" if precision == "32" else precision
    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"  # CPU autocast (bf16) is slower than fp32 on most CPUs


def quiet_lightning() -> None:
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # sync_dist / not resumable: attnlab reduces its metrics over ranks and resumes its loaders mid-epoch itself
    # (train.distributed: reduce_sum, StepBatchSampler)
    warnings.filterwarnings("ignore", message=r".*(LeafSpec|litlogger|does not have many workers|"
                            r"number of training batches|GPU available but not used|Checkpoint directory|"
                            r"sync_dist=True|dataloader is not resumable).*")
    os.environ.setdefault("LITLOGGER_DISABLE_TIP", "1")


GENERATION_OBJECTIVES = ("seq2seq", "conditional_lm")


def objective_of(cfg: RunConfig) -> str:
    """`task.objective: auto` → classify for GLUE/CLUE tasks, causal for LM corpora, the task's kind
    (span_extraction | multiple_choice) for reading comprehension."""
    if cfg.task.objective != "auto":
        return cfg.task.objective
    spec = get_task(cfg.task.name)
    return "causal" if spec.is_lm else spec.kind if spec.is_reading_comprehension else "classify"


def build_datamodule(cfg: RunConfig) -> pl.LightningDataModule:
    from attnlab.tasks.data import TaskDataModule
    from attnlab.tasks.lm_data import LMDataModule

    t, tr = cfg.task, cfg.train
    spec = get_task(t.name)
    objective = objective_of(cfg)
    if spec.is_reading_comprehension:
        from attnlab.train.mrc import build_reading_datamodule

        return build_reading_datamodule(cfg)
    if not spec.is_lm and objective in GENERATION_OBJECTIVES:
        from attnlab.tasks.generation_data import GenerationDataModule

        return GenerationDataModule(spec.name, t.data_root, objective=objective, vocab_size=t.vocab_size,
                                    max_length=t.max_length, target_length=t.target_length, batch_size=tr.batch_size,
                                    eval_batch_size=tr.eval_batch_size, max_train_examples=t.max_train_examples,
                                    max_eval_examples=t.max_eval_examples, seed=tr.seed,
                                    source=t.source, pretrained_dir=t.tokenizer)  # type: ignore[arg-type]
    if (objective == "classify") == spec.is_lm or (spec.is_lm and objective in GENERATION_OBJECTIVES):
        raise ConfigError(f"task.objective: {objective!r} does not apply to {spec.name}")
    cls = LMDataModule if spec.is_lm else TaskDataModule
    return cls(spec.name, t.data_root, vocab_size=t.vocab_size, max_length=t.max_length, batch_size=tr.batch_size,
               eval_batch_size=tr.eval_batch_size, max_train_examples=t.max_train_examples,
               max_eval_examples=t.max_eval_examples, seed=tr.seed, source=t.source,  # type: ignore[arg-type]
               pretrained_dir=t.tokenizer)


def build_module(cfg: RunConfig, dm: Any, total_steps: int) -> pl.LightningModule:
    from attnlab.train import ClassifierModule, LanguageModelModule
    from attnlab.train.generation.modules import CausalSamplesModule, ConditionalLMModule, Seq2SeqModule

    model_cfg = dataclasses.replace(cfg.model, vocab_size=dm.tokenizer_vocab_size, init_from=None, untie=False)
    module: pl.LightningModule
    objective = objective_of(cfg)
    if dm.spec.is_reading_comprehension:
        from attnlab.train.mrc import build_reading_module

        module = build_reading_module(cfg, model_cfg, total_steps)
    elif objective != "classify":
        ids = dm.special_ids
        special = tuple(i for i in (ids.pad, ids.cls, ids.sep, ids.mask, ids.unk) if i is not None)
        kw: dict[str, Any] = {"special_ids": special, "mask_id": ids.mask}
        if objective == "seq2seq" and not dm.spec.is_lm:
            module = Seq2SeqModule(model_cfg, cfg.train, total_steps, gen_examples=cfg.task.gen_examples,
                                   target_length=cfg.task.target_length, **kw)
        elif objective == "conditional_lm":
            module = ConditionalLMModule(model_cfg, cfg.train, total_steps, num_labels=len(dm.spec.labels),
                                         label_names=tuple(dm.spec.labels), **kw)
        elif objective == "causal" and cfg.task.gen_examples > 0:  # perplexity + samples with decoding controls
            module = CausalSamplesModule(model_cfg, cfg.train, total_steps, bos_id=ids.sep,
                                         sample_length=cfg.task.target_length, seed=cfg.train.seed, **kw)
        else:
            module = LanguageModelModule(model_cfg, cfg.train, total_steps, objective=objective, **kw)
    else:
        module = ClassifierModule(model_cfg, cfg.task.name, cfg.train, total_steps)
    if cfg.model.init_from:
        from attnlab.model.checkpoints import init_from

        init_from(module.model, cfg.model.init_from)
    if cfg.model.untie:
        from attnlab.model import untie

        untie(module.model)  # "use ALBERT as BERT": every layer starts from the (loaded) shared weights
        module.hparams["model_cfg"] = to_dict(module.model.transformer.cfg)  # type: ignore[union-attr]
    return module


def compile_model(module: torch.nn.Module) -> int:
    """`train.compile: true`: torch.compile every attnlab Transformer inside `module` in place
    (`nn.Module.compile`, so parameter names, checkpoints and the optimiser are unchanged; the small
    task heads stay eager). Returns how many were compiled."""
    from attnlab.model.transformer import Transformer

    compiled = [m for m in module.modules() if isinstance(m, Transformer)]
    for m in compiled:
        m.compile()
    return len(compiled)


def fit(cfg: RunConfig, *args: Any, **kwargs: Any) -> tuple[Any, Any, Record]:
    """Train + final validation → (module, datamodule, record) (arguments as `_fit`), with the run pinned
    (`train.num_threads`, `train.deterministic`) and its settings, library versions, git state, peak memory and
    analytic FLOPs per token in the record (`provenance.pinned_run`)."""
    from tokenizers import Tokenizer

    from attnlab.model.flops import flops_per_token
    from attnlab.tasks.tokenizer import vocabulary_hash
    from attnlab.train.provenance import pinned_run

    quiet_lightning()  # before pinned_run: its warning filters must outlive the run
    with pinned_run(cfg.train) as run:
        module, dm, record = _fit(cfg, *args, **kwargs)
    tokenizer = getattr(dm, "tokenizer", None)
    vocab = vocabulary_hash(tokenizer) if isinstance(tokenizer, Tokenizer) else None
    return module, dm, run.complete(record, module.device, flops_per_token(cfg.model, cfg.task.max_length), vocab)


def _fit(cfg: RunConfig, callbacks: list[pl.Callback] | None = None, logger: Any = None, progress: bool = True,
        checkpoint_path: str | Path | None = None, checkpoint_dir: str | Path | None = None,
        ) -> tuple[Any, Any, Record]:
    """Train + final validation → (module, datamodule, record). `cfg` is validated (RunConfig.validate).
    `checkpoint_dir`: with `train.checkpoint_every_n_steps` > 0, checkpoint there and resume from there
    (`train.resume`). Multi-device: runs on every rank; only rank 0 should keep the record (`distributed`)."""
    from attnlab.train.callbacks import StepProgressBar, TokenizerInCheckpoint
    from attnlab.train.distributed import prepare_loaders, trainer_kwargs
    from attnlab.train.resume import PeriodicCheckpoint, resume_point

    quiet_lightning()
    pl.seed_everything(cfg.train.seed, workers=True, verbose=False)
    started = time.time()
    dm: Any = build_datamodule(cfg)
    dm.setup("fit")
    steps_per_epoch = len(dm.train_dataloader())
    total_steps = min(cfg.train.max_steps, cfg.train.max_epochs * steps_per_epoch)
    module = build_module(cfg, dm, total_steps)
    if cfg.train.compile:
        compile_model(module)
    tr = cfg.train
    val_every = tr.val_every_n_steps
    callbacks = [*(callbacks or []), TokenizerInCheckpoint(dm.tokenizer)]  # the vocab travels in every checkpoint
    if progress:
        callbacks.append(StepProgressBar())  # steps of max_steps and the run's ETA, not the epoch's
    resumable = checkpoint_dir is not None and tr.checkpoint_every_n_steps > 0
    resume_from, resumed_step, epoch, skip = resume_point(checkpoint_dir if resumable else None, steps_per_epoch)
    if resumable:
        callbacks.append(PeriodicCheckpoint(checkpoint_dir, tr.checkpoint_every_n_steps))  # type: ignore[arg-type]
    if tr.world_size > 1 or resumable:
        prepare_loaders(dm, skip, epoch)
    trainer = pl.Trainer(
        max_steps=total_steps, max_epochs=tr.max_epochs, **trainer_kwargs(tr),
        precision=resolve_precision(tr.precision), gradient_clip_val=tr.grad_clip or None,  # type: ignore[arg-type]
        val_check_interval=min(val_every, steps_per_epoch) if val_every else None,
        check_val_every_n_epoch=None if val_every else tr.max_epochs + 1,
        num_sanity_val_steps=0, logger=logger if logger is not None else False, callbacks=callbacks,
        enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=progress,
        log_every_n_steps=tr.log_every_n_steps, deterministic="warn" if tr.deterministic else False,
    )
    trainer.fit(module, datamodule=dm, ckpt_path=resume_from)
    trainer.validate(module, datamodule=dm, verbose=False)
    if checkpoint_path is not None:
        Path(checkpoint_path).parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(str(checkpoint_path))
        if trainer.is_global_zero:
            dm.tokenizer.save(str(Path(checkpoint_path).parent / "tokenizer.json"))  # the vocab the weights belong to
    if trainer.world_size > 1:  # every rank counted its shard's tokens: the run's are their sum
        from attnlab.train.distributed import reduce_sum

        throughput: Any = module.throughput
        throughput.tokens = int(reduce_sum(module, torch.tensor(throughput.tokens)))
        throughput.examples = int(reduce_sum(module, torch.tensor(throughput.examples)))
    record = make_record(cfg, module, trainer, time.time() - started)
    if resume_from is not None:
        record = dataclasses.replace(record, resumed_from_step=resumed_step)
    return module, dm, record


def data_metrics(cfg: RunConfig, module: Any) -> dict[str, float]:
    """`data/train_tokens_per_example`: the mean real (non-padding) length of the training sequences, after
    truncation; `data/len_over_key_size`: that length over the per-head query/key size. Above 1 the low-rank
    bottleneck (Bhojanapalli et al. 2020) can bind: a head's T×T logits have rank ≤ key size < T."""
    per_example = float(getattr(module.throughput, "tokens_per_example", 0.0))
    if not per_example:
        return {}
    return {"data/train_tokens_per_example": per_example,
            "data/len_over_key_size": per_example / cfg.model.head_key_size}


def make_record(cfg: RunConfig, module: Any, trainer: pl.Trainer, wall_time_s: float) -> Record:
    device = module.device
    cost = Cost(params=sum(p.numel() for p in module.model.parameters()),
                train_tokens_per_s=module.throughput.tokens_per_s, train_tokens=module.throughput.tokens,
                train_steps=int(trainer.global_step), wall_time_s=wall_time_s, peak_mem_mib=peak_memory_mib(device))
    return Record(name=cfg.name, task=cfg.task.name, config_hash=config_hash(cfg), config=to_dict(cfg),
                  metrics={**{k: float(v) for k, v in module.last_val.items()}, **data_metrics(cfg, module)},
                  cost=cost, seed=cfg.train.seed,
                  attnlab_version=attnlab.__version__, git_commit=git_commit(), device=str(device),
                  created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                  predictions=dict(getattr(module, "predictions", {})),
                  curves={k: [list(p) for p in v] for k, v in getattr(module, "curves", {}).items()})
