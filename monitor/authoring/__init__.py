"""The rule author's tools: replay recorded events and run rule tests (both on the pure engine)."""
