"""The checker: runs the model under a controlled scheduler and injected faults, and reports
what its monitors find, each finding with a schedule that replays it exactly.

Layout: ``scheduler.py`` (one execution: greenlets, decisions, findings from exceptions),
``strategies/`` (dfs with DPOR, pct, random, replay), ``explore.py`` (many executions,
minimisation), ``schedule.py`` (decisions and schedule files), ``monitor.py`` and
``monitors/`` (what is judged), ``faults.py`` (which failures may be injected), ``runner.py``
(a scenario end to end: what ``ffasim check`` and ``ffasim replay`` run).

The short way in::

    from ffasim.check import check_scenario, replay_file
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
from .runner import CheckError as CheckError
from .runner import CheckReport as CheckReport
from .runner import FoundIssue as FoundIssue
from .runner import check_scenario as check_scenario
from .runner import replay_file as replay_file
from .runner import replay_schedule as replay_schedule
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
