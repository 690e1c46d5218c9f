"""Routing and grouping, the dispatcher's side of alerting (Alertmanager's `dispatch/`): which
routes an alert reaches, and the groups that batch it for the notify stages."""
