"""``ffasim hunt``: find defects with no scenario and no hint.

Modules: ``generate`` (swarm generation of adversarial programs as scenarios), ``coverage``
((mediator function, FF-A result, SPMC state) combinations, and the corpus of programs that
reached new ones), ``reduce`` (shrink a finding's program and schedule), ``run`` (the loop).
"""

from __future__ import annotations

from .run import HuntFinding as HuntFinding
from .run import HuntReport as HuntReport
from .run import hunt as hunt

__all__ = ["HuntFinding", "HuntReport", "hunt"]
