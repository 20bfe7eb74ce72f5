"""Where a report's numbers come from and under which settings they were measured, from the records alone.

- the commits of the records (with counts) and whether any ran from a modified tree;
- the run settings a bit-for-bit rerun needs (threads, deterministic algorithms, library versions, commit,
  device): the majority, and every cell whose settings differ from it (the leaderboard marks those cells ‡);
- throughput measured while several workers shared the machine's cores (marked †);
- how peak memory was measured (per run since the fit started, or the process's lifetime peak in old records).
Shared by the ablation and the sweep reports. Records are plain dicts (`Record.to_dict()`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

Record = Mapping[str, Any]
SHARED_MARK, DEVIATES_MARK = "†", "‡"
SETTING_LABELS = {"threads": "threads", "deterministic": "deterministic", "versions": "library versions",
                  "commit": "commit", "device": "device", "vocabulary": "tokenizer vocabulary"}


def _versions(record: Record) -> str:
    versions = record.get("library_versions") or {}
    return ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) or "not recorded"


def settings(record: Record) -> dict[str, str]:
    """The settings that decide a run's floating-point result, as text (\"not recorded\" in old records)."""
    threads, det = record.get("threads"), record.get("deterministic")
    dirty = record.get("git_dirty")
    commit = str(record.get("git_commit") or "unknown") + (" (modified tree)" if dirty else "")
    return {"threads": "not recorded" if threads is None else str(threads),
            "deterministic": "not recorded" if det is None else ("on" if det else "off"),
            "versions": _versions(record), "commit": commit, "device": str(record.get("device") or "unknown"),
            "vocabulary": str(record.get("vocabulary_hash") or "not recorded")}


def cell_name(record: Record) -> str:
    task, seed = record.get("task"), record.get("seed")
    if record.get("row") is not None:
        return f"{record['row']} × {task} × seed {seed}"
    return f"trial {record.get('trial')} × {task}"


def majority(records: Sequence[Record]) -> dict[str, str]:
    """Per setting, the value most records share (the first seen wins a tie)."""
    all_settings = [settings(r) for r in records]
    return {key: Counter(s[key] for s in all_settings).most_common(1)[0][0] for key in SETTING_LABELS} if records else {}


def _tokenizer_group(record: Record) -> str:
    """Runs that must share a vocabulary: same task, same tokenizer settings (different tasks train their own)."""
    task_cfg = dict(dict(record.get("config") or {}).get("task") or {})
    keys = ("vocab_size", "max_train_examples", "tokenizer", "source")
    return repr((record.get("task"), *(task_cfg.get(k) for k in keys)))


def deviations(records: Sequence[Record]) -> list[tuple[Record, dict[str, str]]]:
    """(record, {setting: its value}) for every record whose settings differ from the majority (the vocabulary:
    from the majority of the runs that train the same tokenizer)."""
    usual = majority(records)
    groups: dict[str, list[Record]] = {}
    for r in records:
        groups.setdefault(_tokenizer_group(r), []).append(r)
    vocab = {g: majority(rs)["vocabulary"] for g, rs in groups.items()}
    out = []
    for r in records:
        expected = {**usual, "vocabulary": vocab[_tokenizer_group(r)]}
        differ = {k: v for k, v in settings(r).items() if v != expected[k]}
        if differ:
            out.append((r, differ))
    return out


def _key(record: Record) -> tuple[Any, ...]:
    return tuple(record.get(k) for k in ("row", "task", "seed", "trial", "created"))


def deviates(records: Sequence[Record], among: Sequence[Record]) -> bool:
    """True when any of `records` is among the deviations of `among` (all the report's records)."""
    odd = {_key(r) for r, _ in deviations(among)}
    return any(_key(r) in odd for r in records)


def shared_throughput(records: Sequence[Record]) -> bool:
    """True when any record's tokens/s was measured while more than one worker shared the machine."""
    return any((r.get("concurrent_workers") or 1) > 1 for r in records)


def commit_span(records: Sequence[Record]) -> str:
    """\"abc123 (40 records), def456 (2 records)\" in order of first appearance; the records' own commits,
    which can differ from the commit the report was rebuilt at."""
    counts = Counter(str(r.get("git_commit") or "unknown") for r in records)
    ordered = sorted(counts, key=lambda c: min(str(r.get("created", "")) for r in records
                                               if str(r.get("git_commit") or "unknown") == c))
    return ", ".join(f"{c} ({counts[c]} record{'s' if counts[c] != 1 else ''})" for c in ordered) or "—"


def tree_state(records: Sequence[Record]) -> str:
    dirty = sum(r.get("git_dirty") is True for r in records)
    unknown = sum(r.get("git_dirty") is None for r in records)
    if unknown == len(records):
        return "not recorded (records written before it was)"
    if dirty:
        text = f"modified (uncommitted changes outside results/) in {dirty} of {len(records)} records"
    else:
        text = "clean (the commit describes the code)" if not unknown else "clean where recorded"
    return text + (f"; not recorded in {unknown}" if unknown else "")


def header_lines(records: Sequence[Record]) -> list[tuple[str, str]]:
    usual = majority(records)
    if not usual:
        return []
    if usual["threads"] == "not recorded":
        shown = f"not recorded (records written before run settings were), {usual['device']}"
    else:
        shown = (f"{usual['threads']} thread(s), deterministic algorithms {usual['deterministic']}, "
                 f"{usual['device']}; {usual['versions']}")
    return [("Records' commits", commit_span(records)), ("Working tree", tree_state(records)),
            ("Run settings", shown + " (the majority)")]


def notes(records: Sequence[Record]) -> list[str]:
    """What a reader must know about the settings behind the numbers (empty when there is nothing to say)."""
    out = []
    odd = deviations(records)
    if odd:
        listed = "; ".join(f"{cell_name(r)}: " + ", ".join(f"{SETTING_LABELS[k]} {v}" for k, v in d.items())
                           for r, d in odd[:12])
        more = f"; and {len(odd) - 12} more" if len(odd) > 12 else ""
        out.append(f"{DEVIATES_MARK} {len(odd)} of {len(records)} records ran with settings that differ from the "
                   f"majority (a rerun at the majority's settings need not reproduce them bit-for-bit): {listed}{more}.")
    nondet: list[list[str]] = [list(r.get("nondeterministic_ops") or []) for r in records]
    nondet = [ops for ops in nondet if ops]
    if nondet:
        ops = sorted({op for listed in nondet for op in listed})
        out.append(f"{len(nondet)} record(s) used ops without a deterministic kernel ({', '.join(ops)}): "
                   "they need not reproduce bit-for-bit.")
    shared = [r for r in records if (r.get("concurrent_workers") or 1) > 1]
    if shared:
        workers = sorted({int(r["concurrent_workers"]) for r in shared})
        out.append(f"{SHARED_MARK} Training tokens/s of {len(shared)} record(s) was measured while "
                   f"{'/'.join(map(str, workers))} workers (--workers) shared the machine's cores: throughput on "
                   "shared cores, not comparable with runs that had the machine to themselves.")
    old_memory = sum(dict(r.get("cost") or {}).get("peak_mem_baseline_mib") is None for r in records)
    if old_memory:
        out.append(f"Peak memory of {old_memory} record(s) written before per-run measurement is the process's "
                   "lifetime peak (it rises with the order trials ran in), not the run's own.")
    return out


MEMORY_NOTE = ("Peak memory (MiB): per run, the increase over the process's memory when the fit started — on CPU "
               "the anonymous resident memory sampled every 20 ms, on GPU the allocated-memory peak (reset at fit "
               "start); the first run in a process also pays for what the process keeps afterwards (loaded data, "
               "tokenizer). FLOPs/token: analytic forward FLOPs per token of the Transformer body at "
               "T = task.max_length (2 per multiply-add of the matmuls; `attnlab.model.flops`), the same on every "
               "machine.")


def command_meta(produced: Sequence[str], command: str) -> dict[str, str]:
    """meta's `command` (what produced the records, from the study) and `report_command` (what rebuilt this
    report, when that is another command)."""
    if not produced:
        return {"command": "not recorded (the study predates recording it)", "report_command": command}
    out = {"command": "; ".join(produced)}
    if command not in produced:
        out["report_command"] = command
    return out
