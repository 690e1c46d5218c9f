"""The compiled engine: what an install builds, and whether this one runs it."""

from __future__ import annotations

import importlib
import os
import time
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from monitor import build
from monitor.build import COMPILED, engine_form, is_compiled, source, stale

ROOT = Path(__file__).resolve().parents[2]


def test_every_listed_module_has_its_source_in_the_package_once() -> None:
    for module in COMPILED:
        assert (ROOT / source(module)).is_file(), module
    assert len(set(COMPILED)) == len(COMPILED)


def test_the_engine_runs_as_the_install_built_it() -> None:
    """`make install` compiles the engine unless CXMON_COMPILE=0; the tests run what it built,
    so this fails when a build step went missing (or a pure install claims to be compiled)."""
    expected = "python" if os.environ.get("CXMON_COMPILE") == "0" else "compiled"
    assert engine_form() == expected, (
        f"this install runs the engine as {engine_form()}: `make install` builds it as make "
        "does (compiled unless CXMON_COMPILE=0, which the tests then expect)"
    )


def test_the_spec_names_the_file_an_imported_module_was_loaded_from() -> None:
    for module in COMPILED:
        loaded = importlib.import_module(module).__file__ or ""
        assert is_compiled(module) == loaded.endswith(tuple(EXTENSION_SUFFIXES)), module


def test_a_partly_compiled_engine_is_reported_as_mixed(monkeypatch: pytest.MonkeyPatch) -> None:
    first = COMPILED[0]
    monkeypatch.setattr(build, "is_compiled", lambda module: module == first)
    assert engine_form() == "mixed"
    monkeypatch.setattr(build, "is_compiled", lambda _module: False)
    assert engine_form() == "python"
    monkeypatch.setattr(build, "is_compiled", lambda _module: True)
    assert engine_form() == "compiled"


def test_a_module_edited_after_its_build_is_stale(tmp_path: Path) -> None:
    for module in COMPILED:
        path = tmp_path / source(module)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    assert stale(tmp_path) == []  # nothing built: nothing stale
    module = "monitor.engine.driver"
    driver = tmp_path / "monitor/engine/driver.py"
    built = driver.with_name("driver" + EXTENSION_SUFFIXES[0])
    built.write_bytes(b"")
    past = time.time() - 60
    os.utime(driver, (past, past))
    assert stale(tmp_path) == []  # built after its source changed
    os.utime(built, (past - 60, past - 60))
    assert stale(tmp_path) == [module]
