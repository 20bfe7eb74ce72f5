"""`attnlab` command line: parses arguments (`cli_parser.build_parser`) and calls the workflows. No logic here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from attnlab.cli_parser import build_parser
from attnlab.errors import ConfigError, DataError, Interrupted, StorageError
from attnlab.record import RecordError

if TYPE_CHECKING:
    from attnlab.experiments.launch import LaunchOptions


def cmd_list(args: argparse.Namespace) -> int:
    from attnlab.listing import format_attention_table, format_task_table

    if args.what in ("attention", "all"):
        print(format_attention_table())
    if args.what in ("tasks", "all"):
        print(format_task_table())
    return 0


def cmd_smoke(args: argparse.Namespace) -> int:
    from attnlab.smoke import format_table, run_smoke

    rows = run_smoke(steps=args.steps, variants=args.variant or None)
    print(format_table(rows))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from attnlab import workflows

    overrides = list(args.set or [])
    if args.data_root:
        overrides.append(f"task.data_root={args.data_root}")
    return workflows.run_one(args.config, overrides, out=args.out, progress=not args.no_progress,
                             checkpoint=args.save_checkpoint, wandb=args.wandb, wandb_project=args.wandb_project,
                             wandb_checkpoints=args.wandb_checkpoints)


def cmd_sweep(args: argparse.Namespace) -> int:
    from attnlab import workflows

    if args.target[0] == "status":
        if len(args.target) != 2:
            raise ConfigError("usage: attnlab sweep status STUDY_OR_FILE [--storage URL]")
        return workflows.sweep_status(args.target[1], args.storage, args.storage_retry_s)
    if len(args.target) != 1:
        raise ConfigError("usage: attnlab sweep FILE [options] (one sweep file)")
    return workflows.sweep(args.target[0], n_trials=args.n_trials, storage=args.storage, workers=args.workers,
                           wandb=args.wandb, wandb_project=args.wandb_project, out=args.out,
                           report=not args.no_report, command=_command(["sweep", args.target[0]]),
                           wandb_checkpoints=args.wandb_checkpoints, storage_retry_s=args.storage_retry_s,
                           launch=_launch(args))


def _launch(args: argparse.Namespace) -> LaunchOptions:
    from attnlab.experiments.launch import LaunchOptions

    return LaunchOptions(launcher=args.launcher, gpus_per_worker=args.gpus_per_worker, partition=args.partition,
                         time_min=args.time_min, cpus_per_worker=args.cpus_per_worker, mem_gb=args.mem_gb,
                         wait=not args.no_wait)


def cmd_reproduce(args: argparse.Namespace) -> int:
    from attnlab import workflows

    return workflows.reproduce(args.name, preset=args.preset, storage=args.storage, workers=args.workers,
                               dry_run=args.dry_run, out=args.out, report=not args.no_report, wandb=args.wandb,
                               wandb_project=args.wandb_project, command=_command(["reproduce", args.name]),
                               wandb_checkpoints=args.wandb_checkpoints, storage_retry_s=args.storage_retry_s,
                               launch=_launch(args), until_conclusive=args.until_conclusive,
                               max_seeds=args.max_seeds)


def cmd_report(args: argparse.Namespace) -> int:
    from attnlab import workflows

    return workflows.report(args.target, preset=args.preset, storage=args.storage, out=args.out, wandb=args.wandb,
                            wandb_project=args.wandb_project)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from attnlab import dashboard

    return dashboard.serve(dashboard.storage_of(args.target, args.storage, args.preset), args.port)


def _command(default: list[str]) -> str:
    import shlex

    from attnlab.secrets import redact

    return redact("attnlab " + shlex.join(sys.argv[1:] or default))  # recorded in reports: never a password


def cmd_generate(args: argparse.Namespace) -> int:
    import dataclasses

    from attnlab.train.generation.loader import load_generator

    try:
        gen = load_generator(args.checkpoint)
        cfg = gen.decoding(max_new_tokens=args.max_new_tokens, strategy=args.strategy, temperature=args.temperature,
                           top_k=args.top_k, top_p=args.top_p, num_beams=args.num_beams,
                           length_penalty=args.length_penalty, repetition_penalty=args.repetition_penalty,
                           no_repeat_ngram_size=args.no_repeat_ngram_size, min_new_tokens=args.min_new_tokens,
                           seed=args.seed)
        for prompt in args.prompt or [""]:
            for i in range(args.num_samples):
                print(gen(prompt, cfg if i == 0 else dataclasses.replace(cfg, seed=args.seed + i), label=args.label))
    except (ValueError, FileNotFoundError) as e:
        print(f"attnlab generate: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from attnlab.bench.cli import run

    return run(args)


def cmd_baseline(args: argparse.Namespace) -> int:
    from attnlab.tasks.mrc_baselines import format_baselines, run_baselines, write_baselines

    result = run_baselines(args.task, args.data_root, args.split or None)
    print(format_baselines(result))
    if args.out:  # the recorded command leaves out --data-root: no machine path in a results file
        splits = "".join(f" --split {s}" for s in args.split or [])
        command = f"attnlab baseline {args.task}{splits} --out {args.out}"
        print(f"written: {write_baselines(result, args.out, command)}")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"list": cmd_list, "smoke": cmd_smoke, "run": cmd_run, "sweep": cmd_sweep, "reproduce": cmd_reproduce,
                                                          "report": cmd_report, "generate": cmd_generate,
                                                          "bench": cmd_bench, "baseline": cmd_baseline,
                                                          "dashboard": cmd_dashboard}
def quiet_libraries() -> None:
    """Optuna's experimental-feature warnings and per-study INFO lines are noise for our users."""
    import warnings

    warnings.filterwarnings("ignore", message=r".*(experimental|ExperimentalWarning).*")
    try:
        import optuna

        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    except ImportError:  # pragma: no cover
        pass


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.root:
        from attnlab.paths import set_root

        set_root(args.root)
    if args.command in ("sweep", "reproduce", "report"):
        quiet_libraries()
    from attnlab.secrets import redact

    sys.argv = [redact(a) for a in sys.argv]  # parsed already; whatever records argv later (W&B) sees no password
    try:
        return COMMANDS[args.command](args)
    except ConfigError as e:
        print(f"attnlab: config error: {redact(str(e))}", file=sys.stderr)
        return 2
    except DataError as e:
        print(f"attnlab: data error: {redact(str(e))}", file=sys.stderr)
        return 2
    except RecordError as e:
        print(f"attnlab: record error: {redact(str(e))}", file=sys.stderr)
        return 2
    except StorageError as e:
        import os

        if not os.environ.get("ATTNLAB_WORKER"):  # a spawned worker's parent says it once for all of them
            print(f"attnlab: {redact(str(e))}", file=sys.stderr)
        return 75  # EX_TEMPFAIL: try again later
    except Interrupted as e:
        print(f"attnlab: interrupted ({e}); finished trials are kept, an interrupted one is re-queued: rerun the "
              "same command to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
