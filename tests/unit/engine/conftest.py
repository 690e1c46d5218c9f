"""Engine fixtures: a detector running the shipped rule pack."""

from __future__ import annotations

import pytest

from monitor.engine import Ruleset
from monitor.engine.detector import Detector
from monitor.rules import CompiledRule


@pytest.fixture
def detector(shipped_rules: list[CompiledRule]) -> Detector:
    """A fresh in-memory detector over `rules/`."""
    return Detector(Ruleset(shipped_rules))
