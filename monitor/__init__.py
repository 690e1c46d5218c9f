"""cxmon's transport-free domain: events, rules, the engine and alerts."""

__version__ = "0.1.0"
