"""Events: the CloudEvents envelope, its wire codec, and the reasons a record is rejected."""

from monitor.events.envelope import Event, EventRef, department_of
from monitor.events.rejects import Rejected, RejectReason

__all__ = ["Event", "EventRef", "RejectReason", "Rejected", "department_of"]
