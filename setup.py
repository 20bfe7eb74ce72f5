"""Ships the top-level `ablations/` and `sweeps/` (the source of truth, never copied in the repository) inside the
wheel as `attnlab/_data/`, so an installed package runs `attnlab reproduce NAME` outside any checkout.
Everything else is declared in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("ablations", "sweeps")  # YAML only; `base: ../sweeps/base/x.yaml` links keep working side by side


class BuildPyWithConfigs(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout itself
        for folder in SHIPPED:
            target = Path(self.build_lib) / "attnlab" / "_data" / folder
            shutil.rmtree(target, ignore_errors=True)
            for src in sorted((ROOT / folder).rglob("*.y*ml")):
                dest = target / src.relative_to(ROOT / folder)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest)


setup(cmdclass={"build_py": BuildPyWithConfigs})
