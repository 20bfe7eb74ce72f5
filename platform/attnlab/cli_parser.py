"""The `attnlab` argument parser: every command, every flag with its help and default. `attnlab.cli` runs them."""

from __future__ import annotations

import argparse


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
