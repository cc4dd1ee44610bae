"""The checker: runs the model under a controlled scheduler and injected faults, and reports
what its monitors find, each finding with a schedule that replays it exactly.

Layout: ``scheduler.py`` (one execution: greenlets, decisions, findings from exceptions),
``strategies/`` (dfs with DPOR, pct, random, replay), ``explore.py`` (many executions,
minimisation), ``parallel.py`` (one exploration split over worker processes or Ray:
``shards.py`` is what a worker runs, ``pools.py`` where), ``schedule.py`` (decisions and
schedule files), ``monitor.py`` and ``monitors/`` (what is judged), ``faults.py`` (which
failures may be injected).

The checker knows nothing of scenarios: it explores a ``Program`` (a function that builds a
system on a given machine and returns the threads to interleave). Checking a scenario end to
end, what ``ffasim check`` and ``ffasim replay`` run, is the front end's job::

    from ffasim.scenario import check_scenario, replay_file
    report = check_scenario("partinfo-2vcpu", variant="seed-v1")
    for issue in report.issues:
        print(issue.finding.summary(), issue.replay_command)
"""

from .explore import ExploreReport as ExploreReport
from .explore import explore as explore
from .explore import minimise as minimise
from .faults import FaultPlan as FaultPlan
from .faults import FaultSpecError as FaultSpecError
from .faults import parse_faults as parse_faults
from .monitor import FINDING_KINDS as FINDING_KINDS
from .monitor import Finding as Finding
from .monitor import Monitor as Monitor
from .monitors import default_monitors as default_monitors
from .schedule import Decision as Decision
from .schedule import ReplayDivergence as ReplayDivergence
from .schedule import Schedule as Schedule
from .schedule import ScheduleError as ScheduleError
from .scheduler import Execution as Execution
from .scheduler import ExecutionResult as ExecutionResult
from .scheduler import TraceEvent as TraceEvent
from .strategies import DFSStrategy as DFSStrategy
from .strategies import PCTStrategy as PCTStrategy
from .strategies import RandomStrategy as RandomStrategy
from .strategies import ReplayStrategy as ReplayStrategy
from .strategies import Strategy as Strategy
