"""A plain install works: every third-party module the package imports is a declared runtime dependency (or a
guarded optional extra), the wheel ships ablations/, sweeps/ and the report template, and outside a checkout the
shipped configs are used. `.ci/clean_install.sh` installs that wheel into a fresh venv and runs it for real."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from attnlab import paths

REPO = Path(__file__).resolve().parents[1]
# Imported only behind a guard or by a command that names its extra in the error.
OPTIONAL = {"transformers": "bench", "fla": "flash-linear-attention (bench gpu)", "optuna_dashboard": "dashboard",
            "psycopg2": "postgres", "submitit": "cluster"}


def _third_party_imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (REPO / "platform" / "attnlab").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "attnlab":
                    found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def _requirement_name(spec: str) -> str:
    return re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0].lower().replace("_", "-")


def test_every_imported_library_is_a_runtime_dependency() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {_requirement_name(d) for d in project["dependencies"]}
    dists = importlib.metadata.packages_distributions()
    missing = {}
    for module, files in _third_party_imports().items():
        if module in OPTIONAL:
            continue
        names = {d.lower().replace("_", "-") for d in dists.get(module, [module])}
        if not names & declared:
            missing[module] = sorted(files)[:3]
    assert not missing, f"imported but not in [project].dependencies: {missing}"
    for extra in ("dashboard", "bench", "postgres"):
        assert project["optional-dependencies"][extra], extra


def test_wheel_ships_configs_and_templates(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(REPO)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("attnlab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("ablations", "sweeps"):
        for src in (REPO / folder).rglob("*.yaml"):
            assert f"attnlab/_data/{folder}/{src.relative_to(REPO / folder).as_posix()}" in names, src
    assert "attnlab/report/templates/report.html.j2" in names
    assert not any(n.startswith(("tests/", "results/")) for n in names)


def test_outside_a_checkout_the_shipped_configs_are_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = tmp_path / "site" / "attnlab" / "_data"
    (shipped / "ablations").mkdir(parents=True)
    (shipped / "ablations" / "x.yaml").write_text("name: x\n")
    monkeypatch.setattr(paths, "_CHECKOUT", tmp_path / "site")  # no pyproject.toml there: an installed wheel
    monkeypatch.setattr(paths, "_SHIPPED", shipped)
    monkeypatch.delenv("ATTNLAB_ROOT", raising=False)
    monkeypatch.chdir(tmp_path / "site")
    paths.git_commit.cache_clear()
    try:
        assert not paths.in_checkout()
        assert paths.project_root() == tmp_path / "site"
        assert paths.ablations_dir() == shipped / "ablations"
        assert paths.git_commit() == "unknown"  # never the commit of a repository the wheel sits in
        (tmp_path / "site" / "ablations").mkdir()  # a user's own ablations/ wins over the shipped ones
        assert paths.ablations_dir() == tmp_path / "site" / "ablations"
    finally:
        paths.git_commit.cache_clear()
