"""Engine fixtures: a detector running the shipped rule pack."""

from __future__ import annotations

import pytest

from monitor.engine import Ruleset
from monitor.rules import CompiledRule
from tests.unit.engine.harness import EngineHarness


@pytest.fixture
def detector(shipped_rules: list[CompiledRule]) -> EngineHarness:
    """A fresh in-memory detector over `rules/`."""
    return EngineHarness(Ruleset(shipped_rules))
