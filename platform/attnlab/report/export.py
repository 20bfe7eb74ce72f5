"""Export the inputs of a report (records.jsonl, meta.json, speed.json) and load them back."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from attnlab.paths import project_root
from attnlab.record import read_jsonl

RECORDS, META, SPEED = "records.jsonl", "meta.json", "speed.json"


def portable(value: Any, root: str) -> Any:
    """`value` with every path under the project root (`root`, ending in "/") made relative to it — e.g. a
    pretrained row's `model.init_from` — so an exported file names no directory of the machine it ran on."""
    if isinstance(value, str):
        return value.replace(root, "")  # also inside a command line: "attnlab report <root>/results/x"
    if isinstance(value, Mapping):
        return {k: portable(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v, root) for v in value]
    return value


def export_inputs(
    meta: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
    out_dir: Path,
    speed: Sequence[Mapping[str, Any]] | None = None,
) -> list[Path]:
    """Write the records as given (one JSON object per line, key order kept; paths under the project root made
    relative), meta.json and, when given, speed.json."""
    paths = [out_dir / RECORDS, out_dir / META]
    root = str(project_root().resolve()) + "/"
    records = [portable(r, root) for r in records]
    paths[0].write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    paths[1].write_text(json.dumps(portable(meta, root), indent=2, ensure_ascii=False, default=str) + "\n",
                        encoding="utf-8")
    if speed is not None:
        paths.append(out_dir / SPEED)
        paths[2].write_text(json.dumps(list(speed), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return paths


def load_exported(
    path: Path | str,
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]] | None]:
    """(meta, records, speed) from an exported report folder or its records.jsonl (meta.json and
    speed.json are read from the same folder; speed is None when there is no speed.json)."""
    path = Path(path)
    records_path = path / RECORDS if path.is_dir() else path
    folder = records_path.parent
    if not records_path.is_file():
        raise FileNotFoundError(f"{records_path} not found: pass a report folder or its {RECORDS}")
    if not (folder / META).is_file():
        raise FileNotFoundError(f"{folder / META} not found: it must sit next to {records_path.name}")
    # read through the one Record reader: schema-1 records (peak_mem_mb, no schema field) come back as schema 2
    records = [r.to_dict() for r in read_jsonl(records_path)]
    meta = json.loads((folder / META).read_text(encoding="utf-8"))
    speed_path = folder / SPEED
    speed = json.loads(speed_path.read_text(encoding="utf-8")) if speed_path.is_file() else None
    return meta, records, speed
