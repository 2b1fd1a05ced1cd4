"""Charter: a coordination layer for an organisation's workforce of AI agents and people."""

from charter.breakers import BreakerView
from charter.clock import Clock, ManualClock, SystemClock
from charter.errors import CharterError
from charter.handoff import HandoffPacket
from charter.leases import Lease
from charter.ledger import Checkpoint, Event, VerifyReport
from charter.memory import Memory
from charter.org import Org, read_org
from charter.orgversions import OrgVersion
from charter.proposals import Proposal, Resolution
from charter.reviews import Review
from charter.settings import Settings
from charter.system import Charter, open_charter

__version__ = "0.1.0"

open = open_charter

__all__ = [
    "BreakerView",
    "Charter",
    "CharterError",
    "Checkpoint",
    "Clock",
    "Event",
    "HandoffPacket",
    "Lease",
    "ManualClock",
    "Memory",
    "Org",
    "OrgVersion",
    "Proposal",
    "Resolution",
    "Review",
    "Settings",
    "SystemClock",
    "VerifyReport",
    "__version__",
    "open",
    "open_charter",
    "read_org",
]
