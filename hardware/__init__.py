"""hardware: what this process may use (probe), how big to make things (sizing), and the AIMD limiter.

Never imports stages, outbox or web; the service composes it with them.
"""

from hardware.aimd import AdaptiveLimiter
from hardware.probe import HardwareProfile, probe, probe_async
from hardware.sizing import Sizing, StageBudget, report, size

__all__ = [
    "AdaptiveLimiter",
    "HardwareProfile",
    "Sizing",
    "StageBudget",
    "probe",
    "probe_async",
    "report",
    "size",
]
