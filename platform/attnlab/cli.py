"""`attnlab` command line: parses arguments, loads configs, calls the library. No logic here."""

from __future__ import annotations

import argparse
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


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"list": cmd_list, "smoke": cmd_smoke, "run": cmd_run}


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
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
