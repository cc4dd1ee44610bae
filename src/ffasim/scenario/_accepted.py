"""Consequences of an injected firmware failure that the mediator accepts by design.

When the checker makes the SPMC fail a call, some of what is left behind at teardown is not a
defect but what Xen chose to do about a firmware it cannot trust: keep pages the SPMC may still
map, leave a VM the SPMC refused to forget. Reporting those as ``leak`` findings would stop
every fault-injecting search at once on the same expected lines and hide everything else. Each
rule below names the fault, the teardown line it explains and the Xen code that decides it
(quoted in docs/checker.md, "Notes"); a line that matches is a *note* on the run, not a finding,
unless the user asks for ``--strict``. Nothing else is excused: a leak after a fault that no
rule explains is still a finding.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .. import abi


@dataclass(frozen=True)
class Accepted:
    """One rule: after a fault at a site matching ``fault`` (with one of ``codes``, or any),
    a teardown line matching ``line`` is accepted, because ``why`` (in ``where``)."""

    fault: str
    line: re.Pattern[str]
    why: str
    where: str
    codes: tuple[int, ...] | None = None

    def explains(self, site: str, code: int, text: str) -> bool:
        return (
            fnmatch.fnmatchcase(site, self.fault)
            and (self.codes is None or code in self.codes)
            and self.line.search(text) is not None
        )


_PERMANENT = tuple(c for c in range(-10, 0) if c != abi.FFA_RET_DENIED)
"""The FF-A errors ffa_shm_domain_destroy() treats as permanent: all but DENIED."""

RULES: tuple[Accepted, ...] = (
    Accepted(
        fault="smc:FFA_NOTIFICATION_BITMAP_DESTROY",
        line=re.compile(r"^SPMC still tracks destroyed VM 0x[0-9a-f]+ "),
        why="Xen ignores a failed FFA_NOTIFICATION_BITMAP_DESTROY: nothing it can do",
        where="ffa_notif_domain_destroy() (ffa_notif.c)",
    ),
    Accepted(
        fault="smc:FFA_RXTX_UNMAP",
        line=re.compile(
            r"^(page 0x[0-9a-f]+ of destroyed d\d+ still referenced"
            r"|SPMC still tracks destroyed VM 0x[0-9a-f]+ )"
        ),
        why="Xen keeps the RX/TX pages referenced when the SPMC refuses to unmap them: the SPMC "
        "may still write them",
        where="rxtx_unmap() (ffa_rxtx.c), the teardown path of ffa_rxtx_domain_destroy()",
    ),
    Accepted(
        fault="smc:FFA_MEM_RECLAIM",
        codes=_PERMANENT,
        line=re.compile(
            r"^(domain d\d+ is a zombie"
            r"|page 0x[0-9a-f]+ of destroyed d\d+ still referenced"
            r"|share 0x[0-9a-f]+ of vm 0x[0-9a-f]+ dropped after a permanent reclaim failure"
            r"|SPMC share 0x[0-9a-f]+ of destroyed VM 0x[0-9a-f]+ remains"
            r"|vm 0x[0-9a-f]+ still on the teardown list)"
        ),
        why="after a permanent reclaim failure Xen drops the share but keeps its pages "
        "referenced and its count, leaving the domain a zombie on purpose ('minimize the "
        "damage'); the teardown then retries for ever",
        where="ffa_shm_domain_destroy() (ffa_shm.c)",
    ),
    Accepted(
        fault="smc:FFA_NOTIFICATION_GET",
        line=re.compile(r"^SPMC still tracks destroyed VM 0x[0-9a-f]+ "),
        why="the reference takes a dying VM's pending notifications before destroying its "
        "bitmap; when the SPMC refuses that, the destroy is refused too and, as upstream, "
        "nothing else can be done",
        where="ffa_notif_domain_destroy() (variants/reference.py; docs/findings.md, finding 2)",
    ),
)


def accepted(faults: Sequence[tuple[int, str, int]], line: str) -> str | None:
    """Why teardown ``line`` (without its ``leak: `` prefix) is accepted after the injected
    ``faults`` (``(step, site, code)``), or ``None`` when it is a finding."""
    for _, site, code in faults:
        for rule in RULES:
            if rule.explains(site, code, line):
                what = abi.error_name(code) if code < 0 else "failure"
                return f"after {site} -> {what}: {rule.why} [{rule.where}]"
    return None
