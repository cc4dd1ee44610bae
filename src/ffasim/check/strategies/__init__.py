"""Search strategies: exhaustive DFS (with DPOR and a preemption bound), PCT, random, the
default portfolio of the three, replay."""

from .base import BaseStrategy as BaseStrategy
from .base import Strategy as Strategy
from .dfs import DFSStrategy as DFSStrategy
from .dfs import NondeterminismError as NondeterminismError
from .pct import PCTStrategy as PCTStrategy
from .portfolio import PortfolioStrategy as PortfolioStrategy
from .random import RandomStrategy as RandomStrategy
from .replay import ReplayStrategy as ReplayStrategy
