"""`attnlab` command line: parses arguments, loads configs, calls the library. No logic here."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from attnlab.config import ConfigError
from attnlab.tasks.spec import DataError


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
    from attnlab.config import load_run_config
    from attnlab.runner import format_metrics, train_run

    overrides = list(args.set or [])
    if args.data_root:
        overrides.append(f"task.data_root={args.data_root}")
    cfg = load_run_config(args.config, overrides)
    record = train_run(cfg, out_dir=args.out, progress=not args.no_progress, checkpoint_path=args.save_checkpoint)
    print(format_metrics(record))
    print(f"record written under {args.out}/")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from pathlib import Path

    from attnlab.sweep import load_sweep
    from attnlab.sweep.status import format_status
    from attnlab.sweep.study import default_storage, load_or_create, normalize_url, spawn_workers

    if args.target[0] == "status":
        if len(args.target) != 2:
            raise ConfigError("usage: attnlab sweep status STUDY_OR_FILE [--storage URL]")
        import optuna

        target = args.target[1]
        if target.endswith((".yaml", ".yml")) or Path(target).is_file():
            sweep = load_sweep(target)
            name, url = sweep.name, args.storage or sweep.storage or default_storage(sweep.name)
        else:
            name, url = target, args.storage or default_storage(target)
        try:
            study = optuna.load_study(study_name=name, storage=normalize_url(url))
        except KeyError:
            raise ConfigError(f"no study {name!r} in {url}; run `attnlab sweep FILE` first or pass --storage") from None
        print(format_status(study))
        return 0
    sweep = load_sweep(args.target[0])
    n_trials = args.n_trials or sweep.n_trials
    storage = args.storage or sweep.storage or default_storage(sweep.name)
    if args.workers > 1:
        argv = ["sweep", args.target[0], "--n-trials", str(n_trials), "--storage", storage, "--wandb", args.wandb]
        if args.wandb_project:
            argv += ["--wandb-project", args.wandb_project]
        code = spawn_workers(argv, args.workers)
    else:
        code = _sweep_worker(sweep, storage, n_trials, args)
    study = load_or_create(sweep, storage)
    print(format_status(study))
    return code


def _sweep_worker(sweep: object, storage: str, n_trials: int, args: argparse.Namespace) -> int:
    import dataclasses

    from attnlab.sweep.objective import TRIAL_FAILURES, make_objective
    from attnlab.sweep.spec import SweepConfig
    from attnlab.sweep.study import load_or_create, run_worker
    from attnlab.tracking import TrackingConfig

    assert isinstance(sweep, SweepConfig)
    tracking = TrackingConfig(**{k: v for k, v in sweep.wandb.items() if k in {"project", "entity", "dir"}})
    tracking = dataclasses.replace(tracking, mode=args.wandb, project=args.wandb_project or tracking.project)
    study = load_or_create(sweep, storage)
    run_worker(study, make_objective(sweep, tracking, study.study_name), n_trials, TRIAL_FAILURES)
    return 0


def _tracking(args: argparse.Namespace, defaults: dict[str, object]) -> object:
    import dataclasses

    from attnlab.tracking import TrackingConfig

    base = TrackingConfig(**{k: v for k, v in defaults.items() if k in {"project", "entity", "dir"}})  # type: ignore[arg-type]
    return dataclasses.replace(base, mode=args.wandb, project=args.wandb_project or base.project)


def cmd_reproduce(args: argparse.Namespace) -> int:
    import shlex
    from pathlib import Path

    from attnlab.ablation import find_ablation, load_ablation
    from attnlab.sweep import reproduce as rp
    from attnlab.sweep.objective import TRIAL_FAILURES
    from attnlab.sweep.study import default_storage, run_worker, spawn_workers

    abl = load_ablation(find_ablation(args.name))
    r = abl.resolve(args.preset)
    name = rp.study_name(abl, r.preset)
    storage = args.storage or abl.storage or default_storage(name)
    study = rp.open_study(abl, r, storage)
    if not os.environ.get("ATTNLAB_WORKER"):  # workers spawned by --workers stay quiet
        print(rp.format_plan(abl, r, study))
    if args.dry_run:
        return 0
    out_dir = Path(args.out or Path("results") / abl.name)
    tracking = _tracking(args, abl.wandb)
    code = 0
    if args.workers > 1 and not os.environ.get("ATTNLAB_WORKER"):
        argv = ["reproduce", args.name, "--preset", args.preset, "--storage", storage, "--wandb", args.wandb,
                "--out", str(out_dir), "--no-report"]
        code = spawn_workers(argv, args.workers)
    else:
        run_worker(study, rp.make_objective(abl, r, tracking, name, out_dir), rp.n_cells(r), TRIAL_FAILURES)
    if args.no_report:
        return code
    return _report(abl, r, study, out_dir, tracking, "attnlab " + shlex.join(sys.argv[1:] or ["reproduce", args.name]),
                   code)


def _report(abl: object, r: object, study: object, out_dir: object, tracking: object, command: str, code: int) -> int:
    from pathlib import Path

    from attnlab.sweep import reproduce as rp

    records = rp.completed_records(study)  # type: ignore[arg-type]
    if not records:
        print("no finished cell yet: nothing to report", file=sys.stderr)
        return code or 1
    meta = rp.report_meta(abl, r, command, Path(str(out_dir)))  # type: ignore[arg-type]
    speed = rp.speed_rows(abl, r, Path(str(out_dir))) if getattr(r, "speed_bench", None) else None  # type: ignore[arg-type]
    paths = rp.write_report(meta, records, Path(str(out_dir)), speed, tracking)
    done, total, _ = rp.cell_status(study, r)  # type: ignore[arg-type]
    print(f"{done}/{total} cells finished; report: " + ", ".join(str(p) for p in paths))
    return code


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    target = Path(args.target)
    if target.suffix == ".jsonl" or target.is_dir():
        from attnlab.report import build_report, load_exported

        meta, records, speed = load_exported(target)
        out = Path(args.out or (target.parent if target.suffix == ".jsonl" else target))
        for p in build_report(meta, records, out, speed=speed):
            print(p)
        return 0
    from attnlab.ablation import find_ablation, load_ablation
    from attnlab.sweep import reproduce as rp
    from attnlab.sweep.study import default_storage

    abl = load_ablation(find_ablation(args.target))
    r = abl.resolve(args.preset)
    storage = args.storage or abl.storage or default_storage(rp.study_name(abl, r.preset))
    study = rp.open_study(abl, r, storage)
    out_dir = Path(args.out or Path("results") / abl.name)
    return _report(abl, r, study, out_dir, _tracking(args, abl.wandb), f"attnlab report {args.target} "
                   f"--preset {args.preset}", 0)


def cmd_generate(args: argparse.Namespace) -> int:
    import dataclasses

    from attnlab.generate import load_generator
    from attnlab.model.generation import GenerationConfig

    cfg = GenerationConfig(max_new_tokens=args.max_new_tokens, strategy=args.strategy, temperature=args.temperature,
                           top_k=args.top_k, top_p=args.top_p, num_beams=args.num_beams, seed=args.seed)
    try:
        gen = load_generator(args.checkpoint)
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


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"list": cmd_list, "smoke": cmd_smoke, "run": cmd_run, "sweep": cmd_sweep, "reproduce": cmd_reproduce,
                                                          "report": cmd_report, "generate": cmd_generate,
                                                          "bench": cmd_bench}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="attnlab", description="Transformer attention ablation platform")
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="registered attention variants (options, masks) and tasks")
    ls.add_argument("what", nargs="?", default="all", choices=["all", "attention", "tasks"])
    sm = sub.add_parser("smoke", help="build every attention variant, train a few steps on synthetic data")
    sm.add_argument("--steps", type=int, default=100)
    sm.add_argument("--variant", action="append", help="only this variant (repeatable)")
    rn = sub.add_parser("run", help="train one model on one task, evaluate on dev, write a JSON record")
    rn.add_argument("config", help="run config YAML (sections model, task, train)")
    rn.add_argument("--set", action="append", metavar="KEY=VALUE", help="override, e.g. model.attention.kind=linear")
    rn.add_argument("--data-root", help="local GLUE/CLUE data root (default: $ATTNLAB_DATA, else the HF hub)")
    rn.add_argument("--out", default="results/runs", help="where the JSON record goes (default: results/runs)")
    rn.add_argument("--save-checkpoint", metavar="PATH", help="also save the fine-tuned Lightning checkpoint")
    rn.add_argument("--no-progress", action="store_true", help="no progress bar")
    sw = sub.add_parser("sweep", help="run (or resume) an Optuna study from a sweep file; `sweep status X`")
    sw.add_argument("target", nargs="+", metavar="FILE | status STUDY_OR_FILE")
    sw.add_argument("--n-trials", type=int, help="finished trials to reach (default: the file's n_trials)")
    sw.add_argument("--storage", help="Optuna storage URL (default sqlite:///results/sweeps/<name>.db; "
                    "postgresql://… to share one study between machines)")
    sw.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    sw.add_argument("--wandb", default="offline", choices=["offline", "online", "off", "auto"],
                    help="W&B mode (default offline: no login, no network)")
    sw.add_argument("--wandb-project", help="W&B project (default: the sweep file's wandb.project, else attnlab)")
    rp = sub.add_parser("reproduce", help="run a paper ablation (rows × tasks × seeds) as one study, then report")
    rp.add_argument("name", help="ablation name (ablations/NAME.yaml) or path")
    rp.add_argument("--preset", default="cpu", help="smoke | cpu | gpu (sizes and steps; default cpu)")
    rp.add_argument("--storage", help="Optuna storage URL (default sqlite:///results/sweeps/<name>-<preset>.db)")
    rp.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    rp.add_argument("--dry-run", action="store_true", help="print the grid and the estimated time, run nothing")
    rp.add_argument("--out", help="report directory (default results/<name>)")
    rp.add_argument("--no-report", action="store_true", help=argparse.SUPPRESS)
    rp.add_argument("--wandb", default="offline", choices=["offline", "online", "off", "auto"])
    rp.add_argument("--wandb-project", help="W&B project (default: the file's wandb.project, else attnlab)")
    rep = sub.add_parser("report", help="leaderboard, plots and HTML from a study or from exported records")
    rep.add_argument("target", help="ablation name/file (reads its study), or results/<name>/records.jsonl")
    rep.add_argument("--preset", default="cpu")
    rep.add_argument("--storage")
    rep.add_argument("--out")
    rep.add_argument("--wandb", default="offline", choices=["offline", "online", "off", "auto"])
    rep.add_argument("--wandb-project")
    from attnlab.bench.cli import add_parser as add_bench_parser

    add_bench_parser(sub)
    gn = sub.add_parser("generate", help="generate text from a causal LM / UniLM seq2seq / CLN checkpoint")
    gn.add_argument("checkpoint", help="attnlab .ckpt (tokenizer.json beside it) or a Hugging Face GPT-2 directory")
    gn.add_argument("--prompt", action="append", help="prompt (seq2seq: the source); repeatable")
    gn.add_argument("--label", help="condition label (label-conditioned CLN models)")
    gn.add_argument("--strategy", default="greedy", choices=["greedy", "sample", "beam"])
    gn.add_argument("--max-new-tokens", type=int, default=32)
    gn.add_argument("--temperature", type=float, default=1.0)
    gn.add_argument("--top-k", type=int, default=0)
    gn.add_argument("--top-p", type=float, default=1.0)
    gn.add_argument("--num-beams", type=int, default=4)
    gn.add_argument("--num-samples", type=int, default=1)
    gn.add_argument("--seed", type=int, default=0)
    return p


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
    if args.command in ("sweep", "reproduce", "report"):
        quiet_libraries()
    try:
        return COMMANDS[args.command](args)
    except ConfigError as e:
        print(f"attnlab: config error: {e}", file=sys.stderr)
        return 2
    except DataError as e:
        print(f"attnlab: data error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
