"""Swarm generation of adversarial concurrent programs, as scenario objects.

Design note. A program is a :class:`~ffasim.scenario.Scenario` (so that a finding is already
a file ``ffasim check`` can run) built from a seeded :class:`random.Random` and nothing else,
so the same seed gives the same programs. Swarm testing (Groce et al., ISSTA 2012): each
program first draws a *configuration* (how many VMs and vCPUs, the guest versions, VM-to-VM on
or off, a set of partitions, the faults to inject) and a random subset of the *call families*
below, then draws its steps from those families only. A program that never issues
``FFA_RXTX_UNMAP`` is what lets a share race a send; one that issues everything rarely gets
deep into any one state machine.

Every step accepts any outcome (``expect = "any"``): a generated program has no expectations,
and only the checker's monitors judge it (an ASSERT, a lock left held, a double fetch, a page
of another party touched, a leak at teardown...). :func:`mutate` changes a few steps of a
program that reached new coverage (coverage-guided search, see ``coverage.py``).
"""

from __future__ import annotations

import random
import uuid as _uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .. import abi
from ..scenario import PartitionSpec, Scenario, ScenarioError, Step, ThreadSpec, VmSpec, step
from ._steps import _ANY as _ANY
from ._steps import _SHARE_BASE as _SHARE_BASE
from ._steps import GUEST_FAMILIES as GUEST_FAMILIES
from ._steps import SYSTEM_FAMILIES as SYSTEM_FAMILIES
from ._steps import VERSIONS as VERSIONS
from ._steps import Layout as Layout
from ._steps import _Maker

SP_SETS: tuple[str, ...] = ("default", "framework", "quiet", "many")
"""The partition sets: the defaults; 1-4 partitions with random properties that answer VM
destroyed with errors or, a few times, RETRY/INTERRUPTED ("framework"); the same taking no
direct request ("quiet"); 64 partitions (Xen's cap)."""

FAULT_SETS: tuple[tuple[str, ...], ...] = ((), (), ("smc",), ("alloc",), ("helper",), ("all",))
"""What may be injected into a program's executions (one fault at most): nothing (twice as
likely), SPMC calls failing with any FF-A error, allocations, helpers' failure paths."""


@dataclass(frozen=True)
class Program:
    """A generated program: the scenario, what it was drawn from, and where it came from."""

    index: int
    scenario: Scenario
    families: frozenset[str]
    faults: tuple[str, ...]
    layouts: tuple[Layout, ...]
    sp_ids: tuple[int, ...]
    sp_set: str
    parent: int | None = None

    def describe(self) -> str:
        """``3 VMs, 5 threads, families: share, frag; faults: smc``."""
        threads = len(self.scenario.threads)
        steps = sum(len(t.steps) for t in self.scenario.threads)
        fams = ", ".join(sorted(self.families)) or "none"
        faults = ", ".join(self.faults) or "none"
        return (
            f"{len(self.layouts)} VMs, {threads} threads, {steps} steps, partitions "
            f"{self.sp_set}, families: {fams}; faults: {faults}"
        )


# -- partitions ------------------------------------------------------------------------------

_PROPS = abi.FFA_PART_PROP_DIRECT_REQ_RECV | abi.FFA_PART_PROP_AARCH64_STATE
_SUBSCRIBED = abi.FFA_PART_PROP_NOTIF_CREATED | abi.FFA_PART_PROP_NOTIF_DESTROYED
_DESTROYED_ANSWERS = ("OK", "OK", "DENIED", "BUSY", "ABORTED", "RETRY", "INTERRUPTED")
"""What a partition answers VM_DESTROYED with. RETRY and INTERRUPTED only a few times per VM
(``vm_destroyed_times``): Xen resends those for ever (ffa_partinfo_domain_destroy()), so a
partition that always answers them keeps every domain a zombie by design. A generated
partition never refuses VM_CREATED: Xen then fails the domain's creation
(ffa_partinfo_domain_init(), -EIO) and there is no program left to run; the injected SPMC
faults exercise that path instead."""
_TRANSIENT = ("RETRY", "INTERRUPTED")


def _uuid_of(rng: random.Random) -> str:
    return str(_uuid.UUID(int=rng.getrandbits(128)))


_ERRORS = {n: c for c, n in abi.ERROR_CODES.items()}


def _partitions(rng: random.Random, which: str) -> tuple[list[PartitionSpec] | None, list[int]]:
    """The partitions of set ``which`` (``None``: the defaults) and their IDs."""
    if which == "default":
        return None, [0x8001, 0x8002, 0x8003]
    if which == "many":
        shared = _uuid_of(rng)  # some partitions share a UUID (a service on several SPs)
        out = [
            PartitionSpec(
                id=0x8001 + i,
                uuid=shared if i % 7 == 3 else _uuid_of(rng),
                properties=_PROPS | (_SUBSCRIBED if i % 5 == 0 else 0),
                behaviour="memory" if i == 1 else "echo",
            )
            for i in range(64)
        ]
        return out, [p.id for p in out]
    specs = []
    n = rng.randint(1, 4)
    for i in range(n):
        destroyed = rng.choice(_DESTROYED_ANSWERS)
        contexts = rng.choice((1, 1, 2))
        if i == 1:
            # The memory service uses its one TX buffer for each request: with two contexts
            # it would race itself, a defect of the partition, not of Xen.
            contexts = 1
        props = _PROPS if which == "framework" else abi.FFA_PART_PROP_AARCH64_STATE
        props |= rng.choice((0, _SUBSCRIBED, _SUBSCRIBED, abi.FFA_PART_PROP_NOTIF_DESTROYED))
        props |= rng.choice((0, abi.FFA_PART_PROP_INDIRECT_MSGS, abi.FFA_PART_PROP_RECV_NOTIF))
        props |= rng.choice((0, abi.FFA_PART_PROP_DIRECT_REQ2_RECV))
        specs.append(
            PartitionSpec(
                id=0x8001 + i,
                uuid=_uuid_of(rng),
                exec_ctx=contexts,
                properties=props,
                behaviour="memory" if i == 1 else rng.choice(("echo", "none")),
                vm_destroyed=_ERRORS.get(destroyed, 0),
                vm_destroyed_times=rng.randint(1, 3) if destroyed in _TRANSIENT else 0,
            )
        )
    return specs, [p.id for p in specs]


def _draw_families(rng: random.Random) -> frozenset[str]:
    k = rng.randint(2, 6)
    fams = set(rng.sample(GUEST_FAMILIES, k))
    sysf = {f for f in SYSTEM_FAMILIES if rng.random() < 0.25}
    return frozenset(fams | sysf)


def _draw_layouts(rng: random.Random, nvms: int) -> list[Layout]:
    out = []
    for _ in range(nvms):
        buf = rng.choice((1, 1, 1, 2))
        out.append(
            Layout(
                vcpus=rng.choice((1, 2, 2, 3)),
                pages=rng.choice((32, 64)),
                version=rng.choice(VERSIONS),
                rx=0,
                tx=buf,
                buf_pages=buf,
                mapped=rng.random() < 0.85,
            )
        )
    return out


def _setup(rng: random.Random, maker: _Maker, layouts: Sequence[Layout]) -> list[Step]:
    steps = []
    for i, lay in enumerate(layouts):
        if rng.random() < 0.1:  # a malformed version word first: it must not fix a version
            bad = rng.choice((0x80000000 | lay.version, 0x20000, 0x7FFFFFFF))
            steps.append(step("call", vm=i, expect=_ANY, call="FFA_VERSION", args=[bad]))
        if rng.random() < 0.95:
            steps.append(step("negotiate", vm=i, expect=_ANY, version=f"1.{lay.version & 0xFFFF}"))
        if lay.mapped:
            steps.append(
                step("map", vm=i, expect=_ANY, rx_page=lay.rx, tx_page=lay.tx, pages=lay.buf_pages)
            )
    if "share" in maker.families and rng.random() < 0.3:  # at and past Xen's limits
        vm = rng.randrange(len(layouts))
        if layouts[vm].mapped:
            # 33 shares of distinct pages (a page already shared is DENIED) need 64 pages
            count = rng.choice((3, 33)) if layouts[vm].pages >= _SHARE_BASE + 33 else 3
            for k in range(count):
                page = _SHARE_BASE + k
                steps.append(step("share", vm=vm, expect=_ANY, pages=[page], name=maker.new_name()))
    return steps


def _threads(rng: random.Random, maker: _Maker, layouts: Sequence[Layout]) -> list[ThreadSpec]:
    threads = []
    budget = rng.randint(2, 5)  # concurrent contexts: enough to race, few enough to explore
    vcpus = [(i, v) for i, lay in enumerate(layouts) for v in range(lay.vcpus)]
    rng.shuffle(vcpus)
    for vm, vcpu in sorted(vcpus[:budget]):
        steps: list[Step] = []
        for _ in range(rng.randint(1, 3)):
            steps += maker.guest_step(vm)
        threads.append(ThreadSpec(tuple(steps), vm=vm, vcpu=vcpu))
    sysf = sorted(maker.families & set(SYSTEM_FAMILIES))
    if sysf:
        steps = []
        for _ in range(rng.randint(1, 2)):
            steps += maker.system_step(sysf)
        threads.append(ThreadSpec(tuple(steps), context="toolstack"))
    return threads


def generate(seed: int, index: int, hypervisor: str = "xen") -> Program:
    """Program ``index`` of the stream of ``seed``: a fresh configuration and steps. Under
    ``pkvm`` the one caller is the host kernel: one VM (its CPUs), no VM-to-VM messaging and
    none of Xen's system operations (toolstack, tasklets, timers)."""
    rng = random.Random(f"ffasim-hunt:{seed}:{index}")
    for _ in range(20):
        try:
            return _generate(rng, index, hypervisor)
        except ScenarioError:
            continue  # a draw the scenario model refuses: draw again (deterministically)
    raise RuntimeError("the generator drew 20 invalid programs in a row")  # a generator bug


def _generate(rng: random.Random, index: int, hypervisor: str = "xen") -> Program:
    pkvm = hypervisor == "pkvm"
    nvms = 1 if pkvm else rng.choice((1, 2, 2, 3, 4))
    layouts = _draw_layouts(rng, nvms)
    sp_set = rng.choice(SP_SETS) if rng.random() < 0.5 else "default"
    parts, sp_ids = _partitions(rng, sp_set)
    families = _draw_families(rng)
    if pkvm:
        families -= set(SYSTEM_FAMILIES)
    maker = _Maker(rng, layouts, sp_ids, families)
    setup = _setup(rng, maker, layouts)
    threads = _threads(rng, maker, layouts)
    faults = rng.choice(FAULT_SETS)
    vm_to_vm = rng.random() < 0.5 and not pkvm
    scenario = Scenario(
        f"hunt-{index}",
        "generated by ffasim hunt",
        hypervisor=hypervisor,
        vm_to_vm=vm_to_vm,
        spmc_version="1.2",
        vms=[VmSpec(vcpus=lay.vcpus, pages=lay.pages) for lay in layouts],
        partitions=parts,
        setup=setup,
        threads=threads,
    )
    return Program(index, scenario, families, faults, tuple(layouts), tuple(sp_ids), sp_set)


def mutate(parent: Program, seed: int, index: int) -> Program:
    """A child of ``parent``: same configuration, one to three steps or threads changed, or
    another fault set."""
    rng = random.Random(f"ffasim-hunt-mutate:{seed}:{index}")
    for _ in range(20):
        try:
            return _mutate(rng, parent, index)
        except ScenarioError:
            continue
    return replace(parent, index=index, parent=parent.index)


def _existing_names(scenario: Scenario) -> list[str]:
    names = []
    for st in [*scenario.setup, *(s for t in scenario.threads for s in t.steps)]:
        name = st.params.get("name")
        if isinstance(name, str) and name not in names:
            names.append(name)
    return names


def _mutate(rng: random.Random, parent: Program, index: int) -> Program:
    sc = parent.scenario
    families = set(parent.families)
    pkvm = sc.hypervisor == "pkvm"
    if rng.random() < 0.3:  # widen or narrow the swarm a little
        fam = rng.choice(GUEST_FAMILIES + SYSTEM_FAMILIES)
        if pkvm and fam in SYSTEM_FAMILIES:
            fam = rng.choice(GUEST_FAMILIES)
        if fam in families and len(families & set(GUEST_FAMILIES)) > 1:
            families.discard(fam)
        else:
            families.add(fam)
    maker = _Maker(rng, parent.layouts, parent.sp_ids, frozenset(families))
    maker.names = _existing_names(sc)
    maker._next_name = len(maker.names) + 100
    threads = list(sc.threads)
    faults = parent.faults
    for _ in range(rng.randint(1, 3)):
        r = rng.random()
        vcpu_threads = [i for i, t in enumerate(threads) if t.vm is not None]
        if r < 0.15:
            faults = rng.choice(FAULT_SETS)
        elif (r < 0.3 or not vcpu_threads) and not pkvm:
            sysf = sorted(maker.families & set(SYSTEM_FAMILIES)) or ["destroy"]
            ctx = [i for i, t in enumerate(threads) if t.context is not None]
            extra = tuple(maker.system_step(sysf))
            if ctx:
                t = threads[ctx[0]]
                threads[ctx[0]] = replace(t, steps=_edit(rng, t.steps, extra))
            else:
                threads.append(ThreadSpec(extra, context="toolstack"))
        elif vcpu_threads:
            i = rng.choice(vcpu_threads)
            t = threads[i]
            assert t.vm is not None
            new = tuple(maker.guest_step(t.vm))
            threads[i] = replace(t, steps=_edit(rng, t.steps, new))
    scenario = Scenario(
        f"hunt-{index}",
        sc.description,
        hypervisor=sc.hypervisor,
        vm_to_vm=sc.vm_to_vm,
        spmc_version=sc.spmc_version,
        vms=sc.vms,
        partitions=sc.partitions,
        setup=sc.setup,
        threads=[t for t in threads if t.steps],
    )
    return Program(
        index,
        scenario,
        frozenset(families),
        faults,
        parent.layouts,
        parent.sp_ids,
        parent.sp_set,
        parent=parent.index,
    )


def _edit(rng: random.Random, steps: tuple[Step, ...], new: tuple[Step, ...]) -> tuple[Step, ...]:
    """``steps`` with ``new`` inserted, or replacing one step, or one step dropped."""
    r = rng.random()
    at = rng.randrange(len(steps) + 1)
    if r < 0.5 or not steps:
        return steps[:at] + new + steps[at:]
    at = min(at, len(steps) - 1)
    if r < 0.85:
        return steps[:at] + new + steps[at + 1 :]
    return steps[:at] + steps[at + 1 :] if len(steps) > 1 else steps
