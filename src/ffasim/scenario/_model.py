"""Scenarios: what to build (partitions, VMs), sequential setup, concurrent threads, and the
expectations that judge every answer; and their instances, which run them.

Design note. A scenario is pure data (:class:`Scenario`, :class:`ThreadSpec`, :class:`Step`),
validated once when it is loaded, so that a bad file fails before anything runs and the checker
can instantiate it thousands of times cheaply. :meth:`Scenario.instantiate` builds a fresh
:class:`ffasim.system.System` and runs the setup steps; the :class:`Instance` it returns hands the
threads to whoever schedules them (``ffasim run`` runs them one after another, the checker
interleaves them) and :meth:`Instance.finish` tears everything down and gives the verdict.

Expectations must hold under *every* interleaving a correct mediator allows, so a step lists all
the outcomes it accepts (``expect = ["success", "BUSY"]``). A thread whose VM has been destroyed
stops: a destroyed domain's vCPUs never run again, so its remaining steps are recorded as
skipped, not failed. Thread bodies never catch :class:`~ffasim.machine.ModelError` (a panic or a
deadlock is a finding, not an outcome).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import abi
from .._suggest import unknown
from ..guest import DriverError, FfaCallError, FfaDriver, GuestState
from ..machine import Machine, ModelError, Thread
from ..machine.events import ATOMIC
from ._errors import ScenarioError
from ._format import BEHAVIOURS as BEHAVIOURS
from ._format import CONTEXTS as CONTEXTS
from ._ops import ANY, DRIVER_ERROR, GUEST, OPS, OUTCOMES, SUCCESS, Refused, Skip

DEFAULT_VARIANTS = {"xen": "reference", "pkvm": "head"}
"""The variant a scenario runs on when neither it nor the command line names one."""

_XEN_ONLY_OPS = frozenset({"destroy", "run_tasklets", "run_timers", "sp_notify", "sp_check"})
"""System operations of Xen's toolstack and deferred work, which pKVM does not have."""

SPMC_VERSIONS = {"1.1": abi.FFA_VERSION_1_1, "1.2": abi.FFA_VERSION_1_2}
"""The FF-A versions the SPMC can be built to implement (``[scenario] spmc_version``)."""

if TYPE_CHECKING:
    from ..spmc import SecurePartition

Path = tuple[str | int, ...]
"""Where in a scenario something is: ``("thread", 1, "steps", 0, "dst")``."""

DEFAULT_PARTITION_IDS: tuple[int, ...] = (0x8001, 0x8002, 0x8003)
"""The IDs of :func:`ffasim.spmc.default_partitions` (design.md fixes them)."""

# How long finish() drains deferred work: Xen retries VM_DESTROYED once a second; a partition
# that answers RETRY forever must not hang the run.
_MAX_TIMER_ROUNDS = 32
_MAX_TASKLET_ROUNDS = 8


# ---------------------------------------------------------------------------------------------
# The description


@dataclass(frozen=True)
class Step:
    """One operation (see :data:`ffasim.scenario.OPS`) with its parameters, the value checks of
    a successful answer, and the outcomes it accepts.

    ``vm``/``vcpu`` say who issues a guest operation in the setup and final phases; a thread's
    steps run on the thread's own vCPU. ``where`` is ``file:line`` for messages. ``fn`` is the
    body of a Python step (``op == "python"``): ``fn(env)`` returns a value or raises
    :class:`~ffasim.guest.FfaCallError`.
    """

    op: str
    params: Mapping[str, Any] = field(default_factory=dict)
    checks: Mapping[str, Any] = field(default_factory=dict)
    expect: tuple[str, ...] = (SUCCESS,)
    vm: int | None = None
    vcpu: int = 0
    where: str = field(default="", compare=False)
    """``file:line`` for messages; not part of what the step is."""
    fn: Callable[[StepEnv], Any] | None = None

    @property
    def scope(self) -> str:
        return GUEST if self.op == "python" else OPS[self.op].scope

    def label(self) -> str:
        """A short name for output: ``partition_info()``, ``direct_req(0x8001)``."""
        if self.op == "python":
            return str(self.params.get("label", "python"))
        opdef = OPS[self.op]
        return opdef.label(self.params) if opdef.label else f"{self.op}()"


@dataclass(frozen=True)
class VmSpec:
    """A VM to create: its vCPU count, RAM size in pages and execution state (``"aarch64"``
    or ``"aarch32"``)."""

    vcpus: int = 1
    pages: int = 64
    arch: str = "aarch64"


@dataclass(frozen=True)
class ThreadSpec:
    """A thread: the steps of one vCPU (``vm``, ``vcpu``) or of a non-vCPU ``context``."""

    steps: tuple[Step, ...]
    vm: int | None = None
    vcpu: int = 0
    context: str | None = None

    @property
    def name(self) -> str:
        """The context it runs as: ``"d0v1"``, ``"toolstack"``, ``"sri"``, ``"timer"``."""
        return self.context if self.context is not None else f"d{self.vm}v{self.vcpu}"


@dataclass(frozen=True)
class PartitionSpec:
    """A secure partition described as data (the TOML ``[[partitions]]`` table).

    ``behaviour``: ``"echo"`` answers a direct request with its payload; ``"memory"`` is the
    memory service of the default partition 0x8002; ``"none"`` answers zeros. ``vm_created`` /
    ``vm_destroyed`` are the status it answers to those framework messages (0 or an FF-A error).
    """

    id: int
    uuid: str
    exec_ctx: int = 1
    properties: int = abi.FFA_PART_PROP_DIRECT_REQ_RECV | abi.FFA_PART_PROP_AARCH64_STATE
    behaviour: str = "echo"
    vm_created: int = 0
    vm_destroyed: int = 0
    vm_destroyed_times: int = 0
    """How many VM destroyed messages per VM get ``vm_destroyed`` before the partition answers
    OK (0: every one): a partition that is busy for a while, then lets the VM go."""

    def build(self) -> SecurePartition:
        """A fresh partition (partitions keep state, so each instance gets its own)."""
        from ..spmc import SecurePartition, default_partitions

        created: list[int] = []
        destroyed: list[int] = []

        def on_created(vm_id: int) -> int:
            created.append(vm_id)
            return self.vm_created

        def on_destroyed(vm_id: int) -> int:
            destroyed.append(vm_id)
            if self.vm_destroyed_times and destroyed.count(vm_id) > self.vm_destroyed_times:
                return 0
            return self.vm_destroyed

        if self.behaviour == "memory":
            handler = next(p for p in default_partitions() if p.id == 0x8002).handler
        elif self.behaviour == "echo":
            handler = _echo
        else:
            handler = _zeros
        sp = SecurePartition(
            id=self.id,
            uuid=self.uuid,
            exec_ctx=self.exec_ctx,
            properties=self.properties,
            handler=handler,
            on_vm_created=on_created,
            on_vm_destroyed=on_destroyed,
        )
        sp.vms_created = created  # type: ignore[attr-defined]
        sp.vms_destroyed = destroyed  # type: ignore[attr-defined]
        return sp


def _echo(sp: Any, msg: Any) -> tuple[int, ...]:
    return tuple(msg.payload)


def _zeros(sp: Any, msg: Any) -> tuple[int, ...]:
    return (0, 0, 0, 0, 0)


PartitionsArg = Sequence[PartitionSpec] | Callable[[], "list[SecurePartition]"] | None


class Scenario:
    """A scenario: VMs, partitions, setup steps, threads, final steps; see the module note.

    ``partitions`` is None (the default partitions), a sequence of :class:`PartitionSpec`, or a
    function returning fresh :class:`~ffasim.spmc.SecurePartition` objects (Python scenarios:
    each instance needs its own). The constructor validates everything and raises
    :class:`ScenarioError` naming ``source`` and the rule broken.
    """

    def __init__(
        self,
        name: str,
        description: str = "",
        *,
        variant: str | None = None,
        hypervisor: str = "xen",
        vm_to_vm: bool = False,
        spmc_version: str = "1.2",
        vms: Sequence[VmSpec] = (VmSpec(),),
        partitions: PartitionsArg = None,
        setup: Sequence[Step] = (),
        threads: Sequence[ThreadSpec] = (),
        final: Sequence[Step] = (),
        source: str = "<python>",
    ) -> None:
        self.name = name
        self.description = description
        self.variant = variant
        self.hypervisor = hypervisor
        self.vm_to_vm = vm_to_vm
        self.spmc_version = spmc_version
        self.vms = tuple(vms)
        self.partitions = partitions
        self.setup = tuple(setup)
        self.threads = tuple(threads)
        self.final = tuple(final)
        self.source = source
        problems = self.problems()
        if problems:
            path, message = problems[0]
            raise ScenarioError(
                f"{describe_path(path)}: {message}" if path else message,
                file=source,
                path=path,
                rule=message,
            )

    def __repr__(self) -> str:
        return f"<Scenario {self.name}: {len(self.threads)} threads>"

    def _key(self) -> tuple[Any, ...]:
        parts = (
            self.partitions if not isinstance(self.partitions, Sequence) else tuple(self.partitions)
        )
        return (
            self.name,
            self.description,
            self.variant,
            self.hypervisor,
            self.vm_to_vm,
            self.spmc_version,
            self.vms,
            parts,
            self.setup,
            self.threads,
            self.final,
        )

    def __eq__(self, other: object) -> bool:
        """Same VMs, partitions, steps and expectations (where it was loaded from aside)."""
        return isinstance(other, Scenario) and self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def under(self, hypervisor: str | None) -> Scenario:
        """This scenario with ``hypervisor`` in front of the SPMC (itself when that is already
        so, or ``hypervisor`` is None); its variant is dropped when the other hypervisor has no
        such variant. :class:`ScenarioError` when it cannot run there (pKVM has one caller)."""
        if hypervisor is None or hypervisor == self.hypervisor:
            return self
        if hypervisor not in DEFAULT_VARIANTS:
            raise ScenarioError(unknown("hypervisor", hypervisor, list(DEFAULT_VARIANTS)))
        variant = self.variant if self.variant in hypervisor_variants(hypervisor) else None
        try:
            return Scenario(
                self.name,
                self.description,
                variant=variant,
                hypervisor=hypervisor,
                vm_to_vm=self.vm_to_vm,
                spmc_version=self.spmc_version,
                vms=self.vms,
                partitions=self.partitions,
                setup=self.setup,
                threads=self.threads,
                final=self.final,
                source=self.source,
            )
        except ScenarioError as e:
            raise ScenarioError(
                f"{self.name} cannot run under {hypervisor}: {e.rule or e}", file=self.source
            ) from None

    def to_toml(self) -> str:
        """This scenario as a TOML file that loads to an equal scenario
        (:func:`ffasim.scenario.to_toml`)."""
        from ._write import to_toml

        return to_toml(self)

    # -- validation -------------------------------------------------------------------------

    def problems(self) -> list[tuple[Path, str]]:
        """Every rule the description breaks, each with where (a :data:`Path`).

        The scenario's file form goes through the file model first (what a TOML file would
        say: names, ranges, keys of each step), so a scenario built in Python meets the same
        rules as one loaded from a file; then what refers to what is checked here."""
        from ._write import document_problem

        found = document_problem(self)
        if found is not None:
            return [found]
        out: list[tuple[Path, str]] = []
        if self.variant is not None:
            known = hypervisor_variants(self.hypervisor)
            if known and self.variant not in known:
                out.append((("scenario", "variant"), unknown("variant", self.variant, known)))
        if self.hypervisor == "pkvm":
            out += self._pkvm_problems()
        if isinstance(self.partitions, Sequence):
            seen: set[int] = set()
            for i, sp in enumerate(self.partitions):
                if sp.id in seen:
                    out.append((("partitions", i, "id"), f"0x{sp.id:x} is listed twice"))
                seen.add(sp.id)
        names: set[str] = set()
        shares = {s.params["name"] for s in self._all_steps() if s.op == "share"}
        shares |= {
            s.params["name"]
            for s in self._all_steps()
            if s.op == "call" and s.params.get("name") is not None
        }
        for phase, steps in (("setup", self.setup), ("final", self.final)):
            for j, st in enumerate(steps):
                out += self._step_problems((phase, j), st, None, shares)
        for i, th in enumerate(self.threads):
            here: Path = ("thread", i)
            if th.context is not None:
                pass  # a context thread runs on no VM
            elif th.vm is None or not 0 <= th.vm < len(self.vms):
                out.append(
                    (
                        (*here, "vm"),
                        f"names VM {th.vm}, but the scenario has {len(self.vms)} (indices from 0)",
                    )
                )
            elif not 0 <= th.vcpu < self.vms[th.vm].vcpus:
                out.append(
                    (
                        (*here, "vcpu"),
                        f"names vCPU {th.vcpu}, but VM {th.vm} has {_vcpus(self.vms[th.vm].vcpus)}",
                    )
                )
            if th.name in names:
                out.append((here, f"a second thread runs as {th.name}; merge their steps"))
            names.add(th.name)
            if not th.steps:
                out.append(((*here, "steps"), "a thread needs at least one step"))
            for j, st in enumerate(th.steps):
                out += self._step_problems((*here, "steps", j), st, th, shares)
        return out

    def _pkvm_problems(self) -> list[tuple[Path, str]]:
        """Under pKVM the one caller is the host kernel: one [[vm]] (its CPUs and RAM), no Xen
        machinery (VM-to-VM messaging, 32-bit guests, the toolstack, tasklets, timers)."""
        out: list[tuple[Path, str]] = []
        if len(self.vms) != 1:
            out.append(
                (
                    ("vm",),
                    f"under pkvm the caller is the host kernel: give exactly one [[vm]] (its "
                    f"CPUs and pages), not {len(self.vms)}",
                )
            )
        elif self.vms[0].arch != "aarch64":
            out.append((("vm", 0, "arch"), "the pKVM host is a 64-bit kernel: arch = aarch64"))
        if self.vm_to_vm:
            out.append((("scenario", "vm_to_vm"), "VM-to-VM messaging is Xen's; pkvm has none"))
        placed = [("setup", j, st) for j, st in enumerate(self.setup)]
        placed += [("final", j, st) for j, st in enumerate(self.final)]
        for phase, j, st in placed:
            if st.op in _XEN_ONLY_OPS:
                out.append(((phase, j, "op"), f"{st.op} is Xen's; it has no meaning under pkvm"))
        for i, th in enumerate(self.threads):
            if th.context is not None and th.context != "toolstack":
                out.append(
                    (("thread", i, "context"), f"a {th.context} thread is Xen's; pkvm has none")
                )
            for j, st in enumerate(th.steps):
                if st.op in _XEN_ONLY_OPS:
                    out.append(
                        (
                            ("thread", i, "steps", j, "op"),
                            f"{st.op} is Xen's; it has no meaning under pkvm",
                        )
                    )
        return out

    def _partition_ids(self) -> set[int] | None:
        """The partition IDs the scenario will have, when known before building them."""
        if self.partitions is None:
            return set(DEFAULT_PARTITION_IDS)
        if callable(self.partitions):
            return None
        return {sp.id for sp in self.partitions}

    def _all_steps(self) -> list[Step]:
        return [*self.setup, *(s for t in self.threads for s in t.steps), *self.final]

    def _step_problems(
        self, here: Path, st: Step, th: ThreadSpec | None, shares: set[str]
    ) -> list[tuple[Path, str]]:
        out: list[tuple[Path, str]] = []
        if st.scope == GUEST:
            if th is not None and th.context is not None:
                out.append(
                    (
                        (*here, "op"),
                        f"{st.op} is a guest operation: it needs a vCPU thread, not {th.context}",
                    )
                )
            if th is None:
                if st.vm is None or not 0 <= st.vm < len(self.vms):
                    out.append(
                        (
                            (*here, "vm"),
                            f"{st.op} needs vm = the index of one of the {len(self.vms)} VMs",
                        )
                    )
                elif not 0 <= st.vcpu < self.vms[st.vm].vcpus:
                    out.append(
                        (
                            (*here, "vcpu"),
                            f"names vCPU {st.vcpu}, but VM {st.vm} has "
                            f"{_vcpus(self.vms[st.vm].vcpus)}",
                        )
                    )
        else:
            if th is not None and th.context is None:
                out.append(
                    (
                        (*here, "op"),
                        f"{st.op} is not a guest operation: run it on a "
                        f"toolstack, sri or timer thread",
                    )
                )
            if st.vm is not None:
                out.append(
                    (
                        (*here, "vm"),
                        f"{st.op} does not take vm here; it names its VM in its own parameters",
                    )
                )
        vm_param = st.params.get("vm")
        if st.op in ("destroy", "sp_notify", "sp_send2") and not 0 <= int(vm_param or 0) < len(
            self.vms
        ):
            out.append(
                (
                    (*here, "vm"),
                    f"names VM {vm_param}, but the scenario has {len(self.vms)} (indices from 0)",
                )
            )
        if st.params.get("count_only"):
            for key in ("ids", "includes"):
                if key in st.checks:
                    out.append(((*here, key), "a count-only call lists no IDs to check"))
        known = self._partition_ids() or set()
        opdef = OPS.get(st.op)  # None for a Python step
        for key, param in opdef.params.items() if opdef is not None and known else ():
            value = st.params.get(key)
            if param.kind == "sp" and value not in known:
                ids = ", ".join(f"0x{i:x}" for i in sorted(known))
                out.append(
                    ((*here, key), f"no partition 0x{value:x} in this scenario (it has {ids})")
                )
        for key in ("handle",):
            if key in st.params and st.params[key] not in shares:
                out.append(((*here, key), f"no share step names a handle {st.params[key]!r}"))
        owner = th.vm if th is not None else st.vm
        if (
            st.op in ("map", "write", "read", "share", "write_bytes")
            and owner is not None
            and 0 <= owner < len(self.vms)
        ):
            pages = self.vms[owner].pages
            for key in ("rx_page", "tx_page", "page"):
                if key in st.params and st.params[key] >= pages:
                    out.append(
                        (
                            (*here, key),
                            f"page {st.params[key]} is outside VM {owner}'s {pages} pages",
                        )
                    )
            listed = st.params.get("pages")
            if st.op == "share" and isinstance(listed, tuple) and max(listed) >= pages:
                out.append(
                    ((*here, "pages"), f"page {max(listed)} is outside VM {owner}'s {pages} pages")
                )
        return out

    # -- running ----------------------------------------------------------------------------

    def build_partitions(self) -> list[SecurePartition]:
        """Fresh partitions for one instance."""
        from ..spmc import default_partitions

        if self.partitions is None:
            return list(default_partitions())
        if callable(self.partitions):
            return list(self.partitions())
        return [spec.build() for spec in self.partitions]

    def instantiate(
        self, variant: str | None = None, *, machine: Machine | None = None
    ) -> Instance:
        """A fresh System with this scenario's partitions and VMs, the setup steps run; the
        threads are ready and have not started."""
        from ..system import System

        partitions = self.build_partitions()
        kwargs: dict[str, Any] = {}
        if machine is not None:
            kwargs["machine"] = machine
        if self.hypervisor == "pkvm":
            kwargs["hypervisor"] = "pkvm"
        else:
            kwargs["vm_to_vm"] = self.vm_to_vm
        system = System(
            partitions=partitions,
            variant=variant or self.variant or DEFAULT_VARIANTS[self.hypervisor],
            spmc_version=SPMC_VERSIONS[self.spmc_version],
            **kwargs,
        )
        return Instance(self, system, partitions)


def describe_path(path: Path) -> str:
    """``thread 2, step 1, dst`` for ``("thread", 1, "steps", 0, "dst")`` (1-based, as lines)."""
    words: list[str] = []
    i = 0
    while i < len(path):
        part = path[i]
        nxt = path[i + 1] if i + 1 < len(path) else None
        if isinstance(nxt, int):
            noun = {"steps": "step", "vm": "vm", "partitions": "partition"}.get(
                str(part), str(part)
            )
            words.append(f"{noun} {nxt + 1}")
            i += 2
        else:
            words.append(str(part))
            i += 1
    return ", ".join(words)


def hypervisor_variants(hypervisor: str = "xen") -> list[str]:
    """The variants of ``hypervisor``'s mediator (Xen's, or pKVM's FF-A proxy)."""
    if hypervisor == "pkvm":
        from ..pkvm import variants as pkvm_variants

        return pkvm_variants.names()
    from ..xen import variants

    return list(variants.names())


# ---------------------------------------------------------------------------------------------
# Running


@dataclass(frozen=True)
class SharedRegion:
    """A share a step made: its name, handle, the VM that made it and the RAM pages."""

    name: str
    handle: int
    vm: int
    pages: tuple[int, ...]


@dataclass
class CallRecord:
    """What one step got.

    ``outcome`` is ``"success"``, an FF-A error name, ``"skipped"``, or a description of an
    answer that is neither; ``problem`` is None when the step's expectations accept it.
    """

    thread: str
    phase: str
    """``"setup"``, ``"thread"`` or ``"final"``."""
    index: int
    op: str
    label: str
    outcome: str
    expected: tuple[str, ...]
    fid: int | None = None
    regs: abi.Regs | None = None
    value: Any = None
    problem: str | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def error(self) -> bool:
        """Whether the step got something other than success (and was not skipped)."""
        return self.outcome not in (SUCCESS, "skipped")


@dataclass
class StepEnv:
    """What a running step may use: ``drv`` (guest operations), ``vm``, ``system``."""

    instance: Instance
    thread: str
    vm: Any = None
    drv: FfaDriver = None  # type: ignore[assignment]

    @property
    def system(self) -> Any:
        return self.instance.system


class Instance:
    """One built scenario: the System, the threads to run, what each step got."""

    def __init__(self, scenario: Scenario, system: Any, partitions: list[SecurePartition]) -> None:
        self.scenario = scenario
        self.system = system
        self.partitions = partitions
        self.results: list[CallRecord] = []
        self.handles: dict[str, SharedRegion] = {}
        self._verdict: list[str] | None = None
        self._destroyed: set[int] = set()
        self._states: dict[int, GuestState] = {}
        machine = system.machine
        prev = machine.current
        machine.current = "toolstack"
        if scenario.hypervisor == "pkvm":
            # The host kernel has a VM's calling surface (smc, read, write, ipa, id).
            (host,) = scenario.vms
            self._vms = [system.create_host(cpus=host.vcpus, pages=host.pages)]
        else:
            # arch is passed only for a 32-bit guest: the default is System's own.
            self._vms = [
                system.create_vm(vcpus=v.vcpus, pages=v.pages, **_arch(v.arch))
                for v in scenario.vms
            ]
        machine.current = prev
        for j, st in enumerate(scenario.setup):
            self._run_placed(st, "setup", j)
        self.threads: list[Thread] = [
            Thread(self.thread_name(spec), self._body(spec)) for spec in scenario.threads
        ]

    # -- lookups ----------------------------------------------------------------------------

    def vm(self, index: int) -> Any:
        """The VM handle of the scenario's VM ``index`` (its domid)."""
        return self._vms[index]

    def thread_name(self, spec: ThreadSpec) -> str:
        """The context a thread runs as: its vCPU's (``d0v1``), the host CPU's under pKVM
        (``host1``), or its own (``toolstack``)."""
        if self.scenario.hypervisor == "pkvm" and spec.context is None:
            return f"host{spec.vcpu}"
        return spec.name

    def partition(self, sp_id: int) -> SecurePartition:
        for sp in self.partitions:
            if sp.id == sp_id:
                return sp
        raise Refused("NO_SUCH_PARTITION", None, None, f"no partition 0x{sp_id:x}")

    def driver(self, index: int, vcpu: int) -> FfaDriver:
        """The guest driver of VM ``index`` on ``vcpu`` (one guest state per VM)."""
        state = self._states.setdefault(index, GuestState())
        return FfaDriver(self._vms[index], vcpu, state=state)

    def alive(self, index: int) -> bool:
        """Whether VM ``index`` may still run: Xen marks a domain dying when the toolstack
        starts destroying it, and a dying domain's vCPUs never run again. pKVM's host always
        runs."""
        domain = getattr(self._vms[index], "domain", None)
        return domain is None or not domain.is_dying

    def destroy_vm(self, index: int) -> None:
        """The toolstack destroys VM ``index`` (each at most once).

        The scheduling point before it pairs with the one each vCPU thread passes before a
        step (:meth:`_body`): the checker sees that destroying a domain and its vCPU starting
        a call conflict, and tries both orders."""
        if index in self._destroyed:
            return
        self._destroyed.add(index)
        self.system.machine.sink.point(ATOMIC, ("domain", self._vms[index].domid), True)
        self.system.destroy_vm(self._vms[index])

    # -- steps ------------------------------------------------------------------------------

    def _body(self, spec: ThreadSpec) -> Callable[[], None]:
        sink = self.system.machine.sink
        key = None
        if spec.vm is not None and self.scenario.hypervisor == "xen":
            key = ("domain", self._vms[spec.vm].domid)

        name = self.thread_name(spec)

        def body() -> None:
            for j, st in enumerate(spec.steps):
                if key is not None:
                    sink.point(ATOMIC, key, False)  # is the domain still running?
                if spec.vm is not None and not self.alive(spec.vm):
                    self._skip(name, "thread", j, st, f"d{spec.vm} was destroyed")
                    continue
                self.run_step(st, name, "thread", j, spec.vm, spec.vcpu)

        return body

    def _run_placed(self, st: Step, phase: str, j: int) -> None:
        """A setup or final step, run alone: system operations in their own context."""
        if st.scope == GUEST:
            assert st.vm is not None
            name = self._vms[st.vm].ctx(st.vcpu)
            if not self.alive(st.vm):
                self._skip(name, phase, j, st, f"d{st.vm} was destroyed")
                return
            self.run_step(st, name, phase, j, st.vm, st.vcpu)
            return
        machine = self.system.machine
        prev = machine.current
        ctx = {"run_tasklets": "sri", "run_timers": "timer"}.get(st.op, "toolstack")
        if st.op in ("sp_notify", "sp_send2", "sp_check"):
            ctx = f"sp{st.params['sp']:04x}"
        machine.current = ctx
        self.run_step(st, ctx, phase, j, None, 0)
        machine.current = prev

    def _skip(self, thread: str, phase: str, j: int, st: Step, why: str) -> None:
        self.results.append(
            CallRecord(thread, phase, j, st.op, st.label(), "skipped", st.expect, note=why)
        )

    def run_step(
        self, st: Step, thread: str, phase: str, j: int, vm: int | None, vcpu: int
    ) -> CallRecord:
        """Run one step as ``thread`` and record what it got."""
        env = StepEnv(self, thread)
        if vm is not None:
            env.vm = self._vms[vm]
            env.drv = self.driver(vm, vcpu)
        rec = CallRecord(thread, phase, j, st.op, st.label(), SUCCESS, st.expect)
        try:
            rec.value = st.fn(env) if st.fn is not None else OPS[st.op].run(env, st.params)
        except Refused as e:
            rec.outcome, rec.fid, rec.regs, rec.note = e.outcome, e.fid, e.regs, e.note
        except FfaCallError as e:  # from a Python step
            rec.outcome, rec.fid, rec.regs, rec.note = e.error_name, e.fid, e.regs, e.note
        except DriverError as e:  # from a Python step
            rec.outcome, rec.note = DRIVER_ERROR, str(e)
        except Skip as e:
            rec.outcome, rec.note = "skipped", str(e)
            self.results.append(rec)
            return rec
        except ModelError:
            raise
        except SystemExit as e:
            # exit() in a Python step would end ffasim itself, with the step's status and no
            # word: it is a crash of the scenario like any other exception.
            raise RuntimeError(f"{st.label()} called exit({e.code!r})") from None
        except Exception as e:
            if vm is not None and not self.alive(vm):
                # The toolstack destroyed the domain between two of this step's calls.
                rec.outcome, rec.note = "skipped", f"d{vm} was destroyed ({e})"
                self.results.append(rec)
                return rec
            raise
        if env.drv is not None and rec.fid is None and env.drv.last_fid is not None:
            rec.fid, rec.regs = env.drv.last_fid, env.drv.last
        rec.problem = self._judge(st, rec, env)
        self.results.append(rec)
        return rec

    def _judge(self, st: Step, rec: CallRecord, env: StepEnv) -> str | None:
        where = f" [{st.where}]" if st.where else ""
        if ANY not in st.expect and rec.outcome not in st.expect:
            what = f"{abi.name(rec.fid)} " if rec.fid is not None else ""
            if rec.outcome == SUCCESS:
                got = "succeeded"
            elif rec.regs is not None and rec.outcome in OUTCOMES:
                got = f"returned {abi.describe(rec.regs)}"
            else:
                got = f"got {rec.outcome}"
            note = f" ({rec.note})" if rec.note else ""
            return (
                f"{rec.thread}: {rec.label}: {what}{got}{note}, expected "
                f"{_expected(st.expect)}{where}"
            )
        if rec.outcome == SUCCESS and st.checks and st.op != "python":
            verify = OPS[st.op].verify
            bad = verify(env, st.params, st.checks, rec.value) if verify else None
            if bad:
                return f"{rec.thread}: {rec.label}: {bad}{where}"
        return None

    # -- the end ----------------------------------------------------------------------------

    def _skip_descheduled(self) -> None:
        """Record as skipped the steps of vCPU threads that never ran them because their
        domain was paused for destruction first (the checker deschedules its vCPUs)."""
        done = {(r.thread, r.index) for r in self.results if r.phase == "thread"}
        for spec in self.scenario.threads:
            if spec.vm is None or self.alive(spec.vm):
                continue
            for j, st in enumerate(spec.steps):
                if (spec.name, j) not in done:
                    self._skip(spec.name, "thread", j, st, f"d{spec.vm} was destroyed")

    def finish(self) -> list[str]:
        """Run the final steps, destroy the remaining VMs, drain timers and tasklets; return
        every rejected result and every leak (``"leak: ..."``). ``[]``: all good."""
        if self._verdict is not None:
            return list(self._verdict)
        self._skip_descheduled()
        for j, st in enumerate(self.scenario.final):
            self._run_placed(st, "final", j)
        machine = self.system.machine
        prev = machine.current
        if self.scenario.hypervisor == "pkvm":
            # The host outlives everything: what it left shared or mapped is the audit's.
            problems = [r.problem for r in self.results if r.problem is not None]
            self._verdict = problems + [f"leak: {line}" for line in self.system.audit()]
            return list(self._verdict)
        machine.current = "toolstack"
        for index in range(len(self._vms)):
            self.destroy_vm(index)
        machine.current = "timer"
        for _ in range(_MAX_TIMER_ROUNDS):
            if not self.system.run_timers(advance=1.0):
                break
        machine.current = "sri"
        for _ in range(_MAX_TASKLET_ROUNDS):
            if not self.system.run_tasklets():
                break
        machine.current = prev
        problems = [r.problem for r in self.results if r.problem is not None]
        problems += [f"leak: {line}" for line in self.system.audit()]
        self._verdict = problems
        return list(problems)


def _arch(arch: str) -> dict[str, str]:
    return {} if arch == "aarch64" else {"arch": arch}


def _vcpus(n: int) -> str:
    """``"2 vCPUs (0..1)"``: how many a VM has, and the numbers that name them."""
    return "1 vCPU (0)" if n == 1 else f"{n} vCPUs (0..{n - 1})"


def _expected(expect: Sequence[str]) -> str:
    names = ["FFA_SUCCESS" if e == SUCCESS else e for e in expect]
    return " or ".join(names)
