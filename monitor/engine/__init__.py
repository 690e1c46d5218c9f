"""The pure engine: (state, event or clock tick) -> (state, findings); one module per rule kind
in `kinds/`."""

from monitor.engine.ruleset import RuleKey, Ruleset
from monitor.engine.state import Expectation, Finding, Held, KeyState

__all__ = ["Expectation", "Finding", "Held", "KeyState", "RuleKey", "Ruleset"]
