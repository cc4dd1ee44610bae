"""The checker's monitors: each judges the events of one execution and reports findings of
one kind (see :data:`ffasim.check.monitor.FINDING_KINDS`).

``assertion``, ``deadlock`` and ``crash`` come from the scheduler itself (an exception or every
context blocked), and the finish step's problem lines become ``leak`` and ``spec`` findings
there too; the rest comes from the monitors here. :func:`default_monitors` builds a fresh set
for one execution (monitors keep per-execution state, so the explorer calls it every time);
:func:`monitor_set` is the factory one exploration uses, whose monitors also share what must
outlive an execution (the lock-order graph: an order seen once is held against every later
execution).
"""

from __future__ import annotations

from collections.abc import Callable

from ..monitor import Monitor
from .answers import AnswerMonitor as AnswerMonitor
from .double_fetch import DoubleFetchMonitor as DoubleFetchMonitor
from .framework import FrameworkMonitor as FrameworkMonitor
from .isolation import IsolationMonitor as IsolationMonitor
from .leak import LeakMonitor as LeakMonitor
from .lock_leak import LockLeakMonitor as LockLeakMonitor
from .lock_order import LockOrderGraph as LockOrderGraph
from .lock_order import LockOrderMonitor as LockOrderMonitor
from .ownership import OwnershipMonitor as OwnershipMonitor
from .protocol import ProtocolMonitor as ProtocolMonitor
from .race import RaceMonitor as RaceMonitor
from .violations import ViolationMonitor as ViolationMonitor
from .wire import WireMonitor as WireMonitor

MONITORS: dict[str, type[Monitor]] = {
    "lock-leak": LockLeakMonitor,
    "lock-order": LockOrderMonitor,
    "ownership": OwnershipMonitor,
    "data-race": RaceMonitor,
    "double-fetch": DoubleFetchMonitor,
    "isolation": IsolationMonitor,
    "leak": LeakMonitor,
    "violation": ViolationMonitor,
    "framework": FrameworkMonitor,
    "answer": AnswerMonitor,
    "answer-state": ProtocolMonitor,
    "wire": WireMonitor,
}
"""Every monitor by the finding kind it reports (``answer-state``: the protocol-state rules
of ``protocol.py``, reported as ``answer`` findings)."""


def default_monitors() -> list[Monitor]:
    """A fresh instance of every monitor, in a fixed order."""
    return [cls() for cls in MONITORS.values()]


def monitor_set() -> Callable[[], list[Monitor]]:
    """A factory for one exploration: each call gives a fresh instance of every monitor (as
    :func:`default_monitors`), the lock-order monitors all sharing one graph."""
    graph = LockOrderGraph()

    def make() -> list[Monitor]:
        return [
            LockOrderMonitor(graph) if cls is LockOrderMonitor else cls()
            for cls in MONITORS.values()
        ]

    return make
