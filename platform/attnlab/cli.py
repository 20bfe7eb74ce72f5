"""`attnlab` command line: parses arguments, loads configs, calls the library. No logic here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

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


def add_launch_args(p: argparse.ArgumentParser) -> None:
    """Where the --workers run (README "Scaling out")."""
    p.add_argument("--launcher", default="processes", choices=["processes", "local", "slurm"],
                   help="processes: worker processes here; slurm: a SLURM job array via submitit (needs a "
                   "PostgreSQL --storage); local: the same submission run here by submitit (default: %(default)s)")
    p.add_argument("--gpus-per-worker", type=int, default=1, metavar="K",
                   help="GPUs each worker sees (CUDA_VISIBLE_DEVICES, round-robin; 0 = all); with slurm, GPUs "
                   "requested per job (default: %(default)s)")
    p.add_argument("--partition", help="slurm: partition (default: the cluster's)")
    p.add_argument("--time-min", type=int, default=24 * 60, help="slurm/local: wall-clock limit per worker job, "
                   "minutes (default: %(default)s)")
    p.add_argument("--cpus-per-worker", type=int, default=4, help="slurm: CPUs per job (default: %(default)s)")
    p.add_argument("--mem-gb", type=int, help="slurm: memory per job in GB (default: the partition's)")
    p.add_argument("--no-wait", action="store_true", help="slurm/local: return once the jobs are submitted "
                   "(write the report later with `attnlab report`)")


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
WANDB_MODES = ["offline", "online", "off", "auto"]
WANDB_HELP = "W&B mode: offline writes runs under results/wandb/ (no login, no network; `wandb sync` later), " \
             "online needs WANDB_API_KEY, auto = online iff WANDB_API_KEY is set, off = no W&B at all"


class HelpFormatter(argparse.HelpFormatter):
    """Every flag shows its default, unless its help already says it or there is nothing to show (None, a flag)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" in text or action.default in (None, False, argparse.SUPPRESS)
                or (not action.option_strings and action.nargs not in ("?", "*"))):
            return text
        return text + " (default: %(default)s)"


def _add_wandb_flags(p: argparse.ArgumentParser, checkpoints: bool = True) -> None:
    p.add_argument("--wandb", default="offline", choices=WANDB_MODES, help=WANDB_HELP)
    p.add_argument("--wandb-project", help="W&B project (default: the file's wandb.project, else attnlab)")
    if checkpoints:
        p.add_argument("--wandb-checkpoints", action="store_true",
                       help="also log each run's Lightning checkpoint as a W&B model artifact")


def _all_parsers(p: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """`p` and every subparser below it (bench has its own subcommands)."""
    found = [p]
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                found += _all_parsers(sub)
    return found


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="attnlab", description="Transformer attention ablation platform",
                                formatter_class=HelpFormatter)
    p.add_argument("--root", help="project root holding ablations/, sweeps/, results/ (default: $ATTNLAB_ROOT, "
                   "else the checkout attnlab runs from, else the working directory)")
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="registered attention variants (options, masks) and tasks")
    ls.add_argument("what", nargs="?", default="all", choices=["all", "attention", "tasks"], help="what to list")
    sm = sub.add_parser("smoke", help="build every attention variant, train a few steps on synthetic data")
    sm.add_argument("--steps", type=int, default=100, help="training steps per variant")
    sm.add_argument("--variant", action="append", help="only this variant (repeatable)")
    rn = sub.add_parser("run", help="train one model on one task, evaluate on dev, write a JSON record")
    rn.add_argument("config", help="run config YAML (sections model, task, train)")
    rn.add_argument("--set", action="append", metavar="KEY=VALUE", help="override, e.g. model.attention.kind=linear")
    rn.add_argument("--data-root", help="local GLUE/CLUE data root (default: $ATTNLAB_DATA, else the HF hub)")
    rn.add_argument("--out", help="where the JSON record goes (default: <root>/results/runs)")
    rn.add_argument("--save-checkpoint", metavar="PATH", help="also save the fine-tuned Lightning checkpoint")
    rn.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_wandb_flags(rn)
    sw = sub.add_parser("sweep", help="run (or resume) an Optuna study from a sweep file; `sweep status X`")
    sw.add_argument("target", nargs="+", metavar="FILE | status STUDY_OR_FILE",
                    help="a sweep file to run or resume, or `status` and a study name or sweep file")
    sw.add_argument("--n-trials", type=int, help="finished trials to reach (default: the file's n_trials)")
    sw.add_argument("--storage", help="Optuna storage URL (default sqlite:///results/sweeps/<name>.db; "
                    "postgresql://… to share one study between machines)")
    sw.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    add_launch_args(sw)
    sw.add_argument("--storage-retry-s", type=float, default=120.0, metavar="S",
                    help="how long to wait out a storage outage (retrying with backoff) before stopping cleanly")
    _add_wandb_flags(sw)
    sw.add_argument("--out", help="leaderboard directory (default: <root>/results/<sweep name>)")
    sw.add_argument("--no-report", action="store_true", help="do not write the leaderboard at the end")
    rp = sub.add_parser("reproduce", help="run a paper ablation (rows × tasks × seeds) as one study, then report")
    rp.add_argument("name", help="ablation name (ablations/NAME.yaml) or path")
    rp.add_argument("--preset", help="one of the file's presets, e.g. smoke | cpu | gpu (default: cpu if the file "
                    "has it, else the file as written)")
    rp.add_argument("--storage", help="Optuna storage URL (default sqlite:///results/sweeps/<name>-<preset>.db)")
    rp.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    add_launch_args(rp)
    rp.add_argument("--storage-retry-s", type=float, default=120.0, metavar="S",
                    help="how long to wait out a storage outage (retrying with backoff) before stopping cleanly")
    rp.add_argument("--dry-run", action="store_true", help="print the grid and the estimated time, run nothing")
    rp.add_argument("--until-conclusive", action="store_true",
                    help="after the grid, add seeds one look at a time to the rows of claims still undecided, "
                    "until each is decided or has --max-seeds (group-sequential t test, O'Brien-Fleming alpha "
                    "spending: the 5%% error rate holds over all looks)")
    rp.add_argument("--max-seeds", type=int, metavar="N",
                    help="with --until-conclusive: the most paired seeds per claim (default: twice the grid's seeds)")
    rp.add_argument("--out", help="report directory (default results/<name>)")
    rp.add_argument("--no-report", action="store_true", help=argparse.SUPPRESS)
    _add_wandb_flags(rp)
    rep = sub.add_parser("report", help="leaderboard, plots and HTML from a study or from exported records")
    rep.add_argument("target", help="sweep file or ablation name/file (reads its study), or an exported report: "
                     "results/<name>/ (records.jsonl or trials.jsonl)")
    rep.add_argument("--preset", help="ablation preset (default: cpu if the file has it)")
    rep.add_argument("--storage", help="Optuna storage URL (default: the file's storage, else "
                     "sqlite:///results/sweeps/<study>.db)")
    rep.add_argument("--out", help="report directory (default: results/<name>, or the exported folder itself)")
    rep.add_argument("--wandb", default="offline", choices=WANDB_MODES,
                     help=WANDB_HELP + "; logs a leaderboard run in the study's group: the table, the report files "
                     "as an artifact, the best trial in its summary")
    rep.add_argument("--wandb-project", help="W&B project (default: the file's wandb.project, else attnlab)")
    db = sub.add_parser("dashboard", help="optuna-dashboard on a study's storage (pip install 'attnlab[dashboard]')")
    db.add_argument("target", metavar="STUDY_OR_FILE",
                    help="sweep file, ablation name or file, study name, or a SQLite .db file")
    db.add_argument("--storage", help="Optuna storage URL (default: the target's)")
    db.add_argument("--preset", help="ablation preset (default: cpu if the file has it)")
    db.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1")
    bl = sub.add_parser("baseline", help="trivial baselines of a reading-comprehension task (CMRC 2018, C3), "
                        "scored by the training metric code")
    bl.add_argument("task", help="clue/cmrc2018, clue/c3 or clue/chid_fewclue")
    bl.add_argument("--split", action="append", help="labelled split (repeatable; default: every labelled non-train one)")
    bl.add_argument("--data-root", help="local data root (default: $ATTNLAB_DATA, else the HF hub)")
    bl.add_argument("--out", help="write baseline-<task>.json here (it records the command that made it)")
    from attnlab.bench.cli import add_parser as add_bench_parser

    add_bench_parser(sub)
    gn = sub.add_parser("generate", help="generate text from a causal LM / UniLM seq2seq / CLN checkpoint",
                        description="Decode from a checkpoint. Every row stops at its own end token ([SEP]); the "
                        "repetition controls look only at the generated tokens, never at the prompt (a seq2seq "
                        "source stays copyable). The control defaults are the ones the model's evaluation decodes with "
                        "(attnlab.train.generation.modules: SEQ2SEQ_DECODING, CAUSAL_DECODING); pass 1.0 / 0 to "
                        "switch one off.")
    gn.add_argument("checkpoint", help="attnlab .ckpt (tokenizer.json beside it) or a Hugging Face GPT-2 directory")
    gn.add_argument("--prompt", action="append", help="prompt (seq2seq: the source); repeatable")
    gn.add_argument("--label", help="condition label (label-conditioned CLN models)")
    gn.add_argument("--strategy", default="greedy", choices=["greedy", "sample", "beam"],
                    help="decoding algorithm (default: %(default)s)")
    gn.add_argument("--max-new-tokens", type=int, default=32, help="tokens to generate at most (default: %(default)s)")
    gn.add_argument("--min-new-tokens", type=int,
                    help="the end token is forbidden before this many tokens (default: 2 for seq2seq, else 8)")
    gn.add_argument("--no-repeat-ngram-size", type=int,
                    help="no n-gram of this many tokens occurs twice in the output; 0 = off (default: 3)")
    gn.add_argument("--repetition-penalty", type=float,
                    help="CTRL penalty on tokens already generated: positive logits divided by it, negative ones "
                    "multiplied; 1.0 = off (default: 1.2; 1.0 for seq2seq, whose keywords share characters and "
                    "repeat the separator)")
    gn.add_argument("--length-penalty", type=float,
                    help="beam: hypotheses ranked by sum log p / length ** this; 0 = raw log-probability, "
                    "> 0 favours longer outputs (default: 1.0)")
    gn.add_argument("--temperature", type=float, default=1.0, help="sample: logits divided by it (default: %(default)s)")
    gn.add_argument("--top-k", type=int, default=0, help="sample: keep the k most likely tokens; 0 = off (default: %(default)s)")
    gn.add_argument("--top-p", type=float, default=1.0,
                    help="sample: keep the smallest set with this probability mass; 1.0 = off (default: %(default)s)")
    gn.add_argument("--num-beams", type=int, default=4, help="beam: hypotheses kept per step (default: %(default)s)")
    gn.add_argument("--num-samples", type=int, default=1, help="outputs per prompt, seeds seed, seed+1, ... (default: %(default)s)")
    gn.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
    for parser in _all_parsers(p):
        parser.formatter_class = HelpFormatter  # subparsers do not inherit the top parser's
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
