"""Fault plans: which failures the checker may inject, parsed from ``--faults`` specs.

The model exposes three families of fault sites (``machine.sink.fault(site, choices)``):

- ``smc:<FFA name>``: an SMC into the SPMC (``smc:FFA_PARTITION_INFO_GET``); the injected choice
  is the FF-A error the SPMC answers instead of running (one of ``machine.FAULT_CODES``);
- ``alloc:<call>@<caller>``: an allocation or mapping that can fail in the C, named after the
  C function called and the C function calling it (``alloc:xzalloc@ffa_domain_init``,
  ``alloc:alloc_xenheap_pages@ffa_rxtx_spmc_init``); the machine's allocation and mapping
  helpers report them; the choice ``1`` makes it fail;
- ``helper:<name>``: a helper's failure path the C has but no caller reaches
  (``helper:ffa_rxtx_spmc_rx_acquire`` returning NULL); the choice ``1`` forces it.

A spec selects sites and, for SMCs, codes::

    all                          every site of every family, every code
    smc                          every SPMC call, every injectable FF-A error
    smc:FFA_PARTITION_INFO_GET   one call ("PARTITION_INFO_GET" and "partition_info_get" too)
    smc:FFA_RXTX_MAP             both conventions (FFA_RXTX_MAP_32 and FFA_RXTX_MAP_64)
    smc:*:DENIED,BUSY            every call, two codes
    alloc, alloc:*@ffa_rxtx_spmc_init  every allocation site, or some (shell-style globs)
    helper, helper:ffa_rxtx_spmc_rx_acquire

Several specs add up. A :class:`FaultPlan` is the checker's ``FaultFilter``: called with a site,
it answers the injectable choices there, or ``None`` (never inject). Whether a choice is actually
injected is a decision of the search strategy (exhaustive under dfs, sampled under random/pct),
recorded in the schedule like any scheduling choice.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .. import abi
from ..machine import FAULT_CODES

FAMILIES: tuple[str, ...] = ("smc", "alloc", "helper")
"""The fault-site families, as the first word of a site name."""

FORCE: tuple[int, ...] = (1,)
"""The one choice of an ``alloc:``/``helper:`` site: fail."""


class FaultSpecError(ValueError):
    """A ``--faults`` spec that does not parse; ``str()`` is one line naming the problem."""


@dataclass(frozen=True)
class FaultRule:
    """One parsed spec: a family, a site-name pattern and the codes allowed there."""

    family: str
    pattern: str  # a glob over the site name after "<family>:"; "*" for every site
    codes: tuple[int, ...]  # for smc: FF-A error codes; for alloc/helper: FORCE

    def matches(self, family: str, name: str) -> bool:
        if family != self.family:
            return False
        if self.pattern == "*":
            return True
        if self.family == "smc":
            name = name.upper()
            # A name without its convention suffix covers both (FFA_RXTX_MAP: _32 and _64).
            return fnmatch.fnmatchcase(name, self.pattern) or fnmatch.fnmatchcase(
                name, self.pattern + "_[36][24]"
            )
        return fnmatch.fnmatchcase(name, self.pattern)


@dataclass(frozen=True)
class FaultPlan:
    """A set of fault rules; callable as the checker's ``FaultFilter``."""

    specs: tuple[str, ...]
    rules: tuple[FaultRule, ...]

    def __call__(self, site: str) -> tuple[int, ...] | None:
        family, _, name = site.partition(":")
        codes: list[int] = []
        for rule in self.rules:
            if rule.matches(family, name):
                codes.extend(c for c in rule.codes if c not in codes)
        if not codes:
            return None
        if family == "smc":
            # Keep the conduit's order so that choice indices do not depend on spec order.
            return tuple(c for c in FAULT_CODES if c in codes)
        return FORCE

    def describe(self) -> str:
        """The specs as given, for reports and schedule files."""
        return " ".join(self.specs)


def _smc_pattern(text: str, spec: str) -> str:
    """Normalise an SMC name or glob to the site spelling (``FFA_...``, upper case)."""
    if text == "*":
        return text
    pat = text.strip().upper()
    if not pat.startswith("FFA_"):
        pat = "FFA_" + pat
    if any(ch in pat for ch in "*?["):
        if not any(fnmatch.fnmatchcase(abi.name(fid), pat) for fid in abi.FUNCTION_IDS):
            raise FaultSpecError(f"fault spec '{spec}': no FF-A function matches '{text}'")
        return pat
    names = {abi.name(fid) for fid in abi.FUNCTION_IDS}
    if pat not in names and not ({pat + "_32", pat + "_64"} & names):
        raise FaultSpecError(f"fault spec '{spec}': unknown FF-A function '{text}'")
    return pat


def _codes(text: str, spec: str) -> tuple[int, ...]:
    """Parse ``DENIED,BUSY`` (names with or without ``FFA_RET_``, or negative numbers)."""
    allowed = ", ".join(abi.error_name(c) for c in FAULT_CODES)
    out: list[int] = []
    for word in text.split(","):
        w = word.strip().upper()
        if not w:
            raise FaultSpecError(f"fault spec '{spec}': empty error code")
        if w.startswith("FFA_RET_"):
            w = w[len("FFA_RET_") :]
        code: int | None = None
        for c, n in abi.ERROR_CODES.items():
            if n == w:
                code = c
        if code is None:
            try:
                code = int(w, 0)
            except ValueError:
                raise FaultSpecError(
                    f"fault spec '{spec}': unknown error code '{word.strip()}' "
                    f"(injectable: {allowed})"
                ) from None
        if code not in FAULT_CODES:
            raise FaultSpecError(
                f"fault spec '{spec}': the SPMC cannot be made to answer "
                f"{abi.error_name(code)} (injectable: {allowed})"
            )
        if code not in out:
            out.append(code)
    return tuple(out)


def parse_fault_spec(spec: str) -> list[FaultRule]:
    """The rules one spec stands for; :class:`FaultSpecError` for a bad one."""
    text = spec.strip()
    if not text:
        raise FaultSpecError("empty fault spec (try 'smc', 'alloc', 'helper' or 'all')")
    if text.lower() == "all":
        return [FaultRule("smc", "*", FAULT_CODES)] + [
            FaultRule(f, "*", FORCE) for f in ("alloc", "helper")
        ]
    parts = text.split(":")
    family = parts[0].strip().lower()
    if family not in FAMILIES:
        raise FaultSpecError(
            f"fault spec '{spec}': unknown fault family '{parts[0]}' "
            f"(expected one of: all, {', '.join(FAMILIES)})"
        )
    if len(parts) > 3 or (family != "smc" and len(parts) > 2):
        form = "smc[:NAME[:CODES]]" if family == "smc" else f"{family}[:NAME]"
        raise FaultSpecError(f"fault spec '{spec}': too many ':' fields (expected {form})")
    name = parts[1].strip() if len(parts) > 1 else "*"
    if not name:
        raise FaultSpecError(f"fault spec '{spec}': empty site name (use '*' for every site)")
    if family == "smc":
        pattern = _smc_pattern(name, spec)
        codes = _codes(parts[2], spec) if len(parts) == 3 else FAULT_CODES
        return [FaultRule("smc", pattern, codes)]
    return [FaultRule(family, name, FORCE)]


def parse_faults(specs: Iterable[str] | str | None) -> FaultPlan | None:
    """A plan from ``--faults`` specs (each may also hold several, separated by spaces);
    ``None`` when there is nothing to inject."""
    if specs is None:
        return None
    if isinstance(specs, str):
        specs = [specs]
    words: list[str] = []
    for s in specs:
        split = s.split()
        if not split:
            raise FaultSpecError("empty fault spec (try 'smc', 'alloc', 'helper' or 'all')")
        words.extend(split)
    if not words:
        return None
    rules: list[FaultRule] = []
    for w in words:
        rules.extend(parse_fault_spec(w))
    return FaultPlan(tuple(words), tuple(rules))


def plan_specs(plan: FaultPlan | None) -> Sequence[str]:
    """The specs a plan was built from (empty for none): what a schedule file stores."""
    return plan.specs if plan is not None else ()
