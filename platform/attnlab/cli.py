"""`attnlab` command line: parses arguments, loads configs, calls the library. No logic here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from attnlab.config import ConfigError


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


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"list": cmd_list, "smoke": cmd_smoke}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="attnlab", description="Transformer attention ablation platform")
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="registered attention variants (options, masks) and tasks")
    ls.add_argument("what", nargs="?", default="all", choices=["all", "attention", "tasks"])
    sm = sub.add_parser("smoke", help="build every attention variant, train a few steps on synthetic data")
    sm.add_argument("--steps", type=int, default=100)
    sm.add_argument("--variant", action="append", help="only this variant (repeatable)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as e:
        print(f"attnlab: config error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
