"""Config files and `--set` overrides as plain data: reading a YAML file (every problem one ConfigError naming the
file), parsing `KEY=VALUE`, setting a dotted key. The typed configs built from this data are in `attnlab.config`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from attnlab.errors import ConfigError

__all__ = ["MAX_YAML_BYTES", "load_yaml", "parse_override", "set_dotted"]


def parse_override(text: str) -> tuple[str, Any]:
    """`model.attention.kind=linear` → ("model.attention.kind", "linear"); the value is YAML."""
    import yaml

    if "=" not in text:
        raise ConfigError(f"command line: --set {text!r}: expected KEY=VALUE, e.g. --set train.max_steps=200")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        raise ConfigError(f"command line: --set {text!r}: the value is not valid YAML (quote it)") from None


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{key}: {part!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


MAX_YAML_BYTES = 1_000_000  # a config is a few KB; anything this big is the wrong file


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A config file's mapping; every problem is one ConfigError naming the file (missing, a directory, too big,
    binary, not YAML, empty, not a mapping)."""
    import yaml

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: no such config file")
    if p.is_dir():
        raise ConfigError(f"{p}: is a directory, not a YAML config file")
    try:
        size = p.stat().st_size
        if size > MAX_YAML_BYTES:
            raise ConfigError(f"{p}: {size} bytes; config files are capped at {MAX_YAML_BYTES} bytes (wrong file?)")
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read ({e.strerror or e})") from None
    if b"\x00" in raw:
        raise ConfigError(f"{p}: binary file, not a YAML config")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not UTF-8 text (a binary file?), not a YAML config") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: invalid YAML: {' '.join(str(e).split())}") from None
    if data is None:
        raise ConfigError(f"{p}: empty config file; write at least the sections you change (model, task, train)")
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping, got {type(data).__name__}")
    return data
