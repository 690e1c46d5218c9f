"""The pure engine: (state, event or clock tick) -> (state, findings), one module per rule kind."""

from monitor.engine.ruleset import Route, Ruleset
from monitor.engine.state import Expectation, Finding, Held, KeyState

__all__ = ["Expectation", "Finding", "Held", "KeyState", "Route", "Ruleset"]
