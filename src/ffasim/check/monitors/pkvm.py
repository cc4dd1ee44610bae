"""Monitors for pKVM's FF-A proxy: what the proxy promises and the Xen monitors cannot see.

- :class:`Stage2Monitor` (``isolation``, ``leak``): every page the SPMC holds in a share is a
  host page the host shared (host state SHARED_OWNED), never a page of the hypervisor or of a
  guest; a partition touching a normal-world page outside that rule is reported as it happens.
  At the end, a page left SHARED_OWNED with FF-A that no share covers is stuck (``leak``).
- :class:`RegisterTaintMonitor` (``isolation``): no register the host gets back from EL2 holds
  a value only EL2 has (its stack: the proxy's ``hyp_private_words``).
- :class:`HypRxOwnershipMonitor` (``ownership``): the hypervisor's RX buffer is one mailbox at
  EL3 shared by EL2 and the host (both FF-A ID 0). EL2 must read it only while the SPMC holds
  it FULL, must release what it received itself before returning to the host, must not ask
  EL3 to fill it while the host still holds data there; the host's passed-through
  FFA_RX_RELEASE must not release what EL2 is still reading.
- :class:`PassthroughMonitor` (``isolation``): a host call EL2 lets through to the SPMC must
  not name a normal-world endpoint other than 0 (the host is the only one: a notification
  bitmap or a direct request "from" VM 5 is the host impersonating it).

They find the system through the machine (``machine.system``: its ``pkvm`` hypervisor and its
``spmc``) and judge nothing on a system without a pKVM proxy, so they can run beside the Xen
monitors. Calls are told apart by the conduit's caller: ``"pkvm"`` for EL2's own SMCs,
``"host"`` for the host's passed-through ones; host calls into EL2 are layer ``"hvc"``.
"""

from __future__ import annotations

import re
from typing import Any

from ... import abi
from ...machine import Frame
from ...machine.events import MAILBOX, P2M
from ._base import CallTracking, frame_name
from .ownership import find_spmc

HYP_ENDPOINT = 0
EL2_CALLER = "pkvm"
HOST_CALLER = "host"
_GUEST = re.compile(r"g\d+\Z")
_PARTITION = re.compile(r"sp[0-9a-f]{4}\Z")


def find_pkvm(machine: Any) -> Any:
    """The pKVM hypervisor object of the system built on ``machine``, or ``None``."""
    pkvm = getattr(getattr(machine, "system", None), "pkvm", None)
    return pkvm if hasattr(pkvm, "hyp_vmemmap") else None


def _owner_kind(frame: Frame) -> str | None:
    """``"hypervisor"`` or ``"guest"`` for a page the secure side must never get, else None."""
    if frame.owner == EL2_CALLER:
        return "hypervisor"
    if frame.owner is not None and _GUEST.match(frame.owner):
        return "guest"
    return None


class Stage2Monitor(CallTracking):
    """Every page in a live SPMC share is host SHARED_OWNED and the host's, checked when an
    SMC or a host call returns; partitions' accesses are checked as they happen."""

    def __init__(self) -> None:
        super().__init__()
        self.reported: set[tuple[str, int]] = set()

    def _judge_shares(self) -> None:
        m = self.execution.machine
        pkvm, spmc = find_pkvm(m), find_spmc(m)
        if pkvm is None or spmc is None:
            return
        for handle, share in sorted(spmc.shares.items()):
            for f in share.frames:
                problem = self._problem(pkvm, f)
                if problem and ("share", f.mfn) not in self.reported:
                    self.reported.add(("share", f.mfn))
                    ctx = self.context()
                    self.report(
                        "isolation",
                        f"SPMC share 0x{handle:x} holds {frame_name(f)}, {problem} "
                        f"({self.where(ctx)})",
                        threads=(ctx,),
                        calls=self.calls_of(ctx),
                    )

    def _problem(self, pkvm: Any, f: Frame) -> str | None:
        """Why the secure side must not hold ``f``, or None when it may."""
        self.declare(P2M, ("host", f.mfn), False)
        kind = _owner_kind(f)
        state = pkvm.host_page_state(f.mfn)
        if kind is not None:
            return f"a {kind} page (host state {state.name if state else 'none'})"
        if state is None:
            return "which is not memory pKVM knows"
        if state.name != "SHARED_OWNED":
            return f"whose host state is {state.name}, not SHARED_OWNED: the host never shared it"
        return None

    def ret(self, layer: str, caller: str, result: tuple[int, ...]) -> None:
        if layer in ("smc", "hvc"):
            self._judge_shares()
        super().ret(layer, caller, result)

    def mem_access(self, party: str, frame: Frame, offset: int, size: int, write: bool) -> None:
        if frame.secure or not _PARTITION.match(party):
            return
        pkvm = find_pkvm(self.execution.machine)
        if pkvm is None or ("sp", frame.mfn) in self.reported:
            return
        problem = self._problem(pkvm, frame)
        if problem:
            self.reported.add(("sp", frame.mfn))
            ctx = self.context()
            self.report(
                "isolation",
                f"{party} {'writes' if write else 'reads'} {frame_name(frame)}, {problem} "
                f"({self.where(ctx)})",
                threads=(ctx,),
                calls=self.calls_of(ctx),
            )

    def on_finish(self) -> None:
        m = self.execution.machine
        pkvm, spmc = find_pkvm(m), find_spmc(m)
        if pkvm is None or spmc is None:
            return
        covered = {f.mfn for share in spmc.shares.values() for f in share.frames}
        incomplete = any(not share.complete for share in spmc.shares.values())
        for pfn, page in sorted(pkvm.hyp_vmemmap.items()):
            if (
                page.host_state.name == "SHARED_OWNED"
                and page.hyp_state.name != "SHARED_BORROWED"
                and pfn not in covered
                and not incomplete
            ):
                self.report(
                    "leak",
                    f"{frame_name(page.frame)} is stuck SHARED_OWNED with FF-A: no SPMC share "
                    f"covers it",
                )


class RegisterTaintMonitor(CallTracking):
    """No value private to EL2 reaches a register the host gets back."""

    def __init__(self) -> None:
        super().__init__()
        self.reported: set[tuple[str, str]] = set()

    def ret(self, layer: str, caller: str, result: tuple[int, ...]) -> None:
        if layer == "hvc":
            pkvm = find_pkvm(self.execution.machine)
            if pkvm is not None:
                private = pkvm.hyp_private_words()
                tainted = [i for i, v in enumerate(result) if v in private]
                ctx = self.context(caller)
                name = self.current_call(ctx) or "?"
                if tainted and (ctx, name) not in self.reported:
                    self.reported.add((ctx, name))
                    regs = ", ".join(f"x{i}" for i in tainted)
                    self.report(
                        "isolation",
                        f"{ctx} gets EL2 stack contents back from {name} in {regs} "
                        f"(0x{result[tainted[0]]:x}...)",
                        threads=(ctx,),
                        calls=(f"{ctx} {name}",),
                    )
        super().ret(layer, caller, result)


# Calls that make the SPMC write the caller's RX buffer, by function ID.
_PRODUCERS = frozenset(
    {
        abi.FFA_MEM_RETRIEVE_REQ_32,
        abi.FFA_MEM_RETRIEVE_REQ_64,
        abi.FFA_MEM_FRAG_RX,
        abi.FFA_PARTITION_INFO_GET,
    }
)


class HypRxOwnershipMonitor(CallTracking):
    """Who holds the hypervisor's RX (EL2 itself, or the host) and what each may do with it."""

    def __init__(self) -> None:
        super().__init__()
        self.holder: tuple[str, str, str] | None = None
        """``(who, ctx, call)``: ``"EL2"`` or ``"host"``, the context and the host call
        whose SMC filled the RX; None while the SPMC owns it."""
        self.pending: dict[str, tuple[str, int]] = {}
        self.reported: set[str] = set()

    def _mailbox(self) -> Any:
        m = self.execution.machine
        if find_pkvm(m) is None:
            return None
        spmc = find_spmc(m)
        mb = spmc.mailboxes.get(HYP_ENDPOINT) if spmc is not None else None
        if mb is not None:
            self.declare(MAILBOX, HYP_ENDPOINT, False)
        return mb

    def _report(self, rule: str, text: str, ctx: str) -> None:
        if rule in self.reported:
            return
        self.reported.add(rule)
        self.report("ownership", text, threads=(ctx,), calls=self.calls_of(ctx))

    def _holder_text(self) -> str:
        assert self.holder is not None
        who, ctx, call = self.holder
        return f"{'EL2 on ' if who == 'EL2' else ''}{ctx} ({call})"

    def call(self, layer: str, caller: str, args: tuple[int, ...]) -> None:
        super().call(layer, caller, args)
        if layer != "smc" or not args:
            return
        mb = self._mailbox()
        if mb is None:
            return
        ctx = self.context()
        fid = args[0] & abi.MASK32
        self.pending[ctx] = (caller, fid)
        if self.holder is None or mb.state.name != "FULL":
            return
        if caller == HOST_CALLER and fid == abi.FFA_RX_RELEASE and self.holder[0] == "EL2":
            if self.holder[1] != ctx:
                self._report(
                    "release",
                    f"{ctx}'s passed-through FFA_RX_RELEASE releases the hypervisor's RX "
                    f"while {self._holder_text()} has not finished with it",
                    ctx,
                )
        elif caller == EL2_CALLER and fid in _PRODUCERS and self.holder[0] == "host":
            self._report(
                "busy",
                f"EL2 on {ctx} ({self.current_call(ctx) or '?'}) asks EL3 to fill the "
                f"hypervisor's RX while {self._holder_text()} still holds partition "
                f"information there: the SPMC must answer BUSY",
                ctx,
            )

    def ret(self, layer: str, caller: str, result: tuple[int, ...]) -> None:
        if layer == "smc":
            self._smc_ret(result)
        elif layer == "hvc":
            ctx = self.context(caller)
            if self.holder is not None and self.holder[:2] == ("EL2", ctx):
                mb = self._mailbox()
                if mb is not None and mb.state.name == "FULL":
                    self._report(
                        "unreleased",
                        f"{ctx} returns from {self.holder[2]} with the hypervisor's RX still "
                        f"FULL at the SPMC: EL2 never released what EL3 wrote there",
                        ctx,
                    )
                self.holder = None
        super().ret(layer, caller, result)

    def _smc_ret(self, result: tuple[int, ...]) -> None:
        ctx = self.context()
        caller, fid = self.pending.pop(ctx, ("", 0))
        mb = self._mailbox()
        if mb is None:
            return
        if mb.state.name != "FULL":
            self.holder = None
        elif fid in _PRODUCERS and result and result[0] != abi.FFA_ERROR:
            who = "EL2" if caller == EL2_CALLER and fid != abi.FFA_PARTITION_INFO_GET else "host"
            self.holder = (who, ctx, self.current_call(ctx) or "?")

    def mem_access(self, party: str, frame: Frame, offset: int, size: int, write: bool) -> None:
        if party != EL2_CALLER or write:
            return
        mb = self._mailbox()
        if mb is None or not any(f.mfn == frame.mfn for f in mb.rx_frames):
            return
        if mb.state.name != "FULL":
            ctx = self.context()
            self._report(
                "read",
                f"EL2 on {self.where(ctx)} reads the hypervisor's RX buffer while the SPMC "
                f"holds it {mb.state.name}, not FULL ({frame_name(frame)})",
                ctx,
            )


# Where a call names normal-world endpoints: (function ID, which halves of w1 are IDs).
_SENDER_RECEIVER = frozenset(
    {
        abi.FFA_NOTIFICATION_BIND,
        abi.FFA_NOTIFICATION_UNBIND,
        abi.FFA_NOTIFICATION_SET,
        abi.FFA_MSG_SEND_DIRECT_REQ_32,
        abi.FFA_MSG_SEND_DIRECT_REQ_64,
        abi.FFA_MSG_SEND_DIRECT_REQ2,
    }
)
_LOW_ID = frozenset(
    {
        abi.FFA_NOTIFICATION_BITMAP_CREATE,
        abi.FFA_NOTIFICATION_BITMAP_DESTROY,
        abi.FFA_NOTIFICATION_GET,
        abi.FFA_RX_ACQUIRE,
        abi.FFA_RX_RELEASE,
    }
)


def named_vm_ids(args: tuple[int, ...]) -> list[int]:
    """The normal-world endpoint IDs other than 0 that call ``args`` names in w1."""
    fid = args[0]
    w1 = args[1] & abi.MASK32 if len(args) > 1 else 0
    if fid in _SENDER_RECEIVER:
        ids = [w1 >> 16, w1 & 0xFFFF]
    elif fid in _LOW_ID:
        ids = [w1 & 0xFFFF]
    else:
        return []
    return [i for i in ids if i and not abi.is_secure_id(i)]


class PassthroughMonitor(CallTracking):
    """A host call that EL2 lets through must not act for another normal-world endpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.reported: set[tuple[int, int]] = set()

    def call(self, layer: str, caller: str, args: tuple[int, ...]) -> None:
        super().call(layer, caller, args)
        if layer != "smc" or caller != HOST_CALLER or not args:
            return
        if find_pkvm(self.execution.machine) is None:
            return
        for vm_id in named_vm_ids(args):
            if (args[0], vm_id) in self.reported:
                continue
            self.reported.add((args[0], vm_id))
            ctx = self.context()
            self.report(
                "isolation",
                f"{ctx}'s {abi.name(args[0])} reaches the SPMC unfiltered, naming VM "
                f"0x{vm_id:x}: the host acts as another endpoint (it is FF-A ID 0)",
                threads=(ctx,),
                calls=self.calls_of(ctx),
            )


PKVM_MONITORS = {
    "pkvm-stage2": Stage2Monitor,
    "pkvm-register-taint": RegisterTaintMonitor,
    "pkvm-hyp-rx": HypRxOwnershipMonitor,
    "pkvm-passthrough": PassthroughMonitor,
}
"""The pKVM monitors by name (not yet registered in ``MONITORS``: the lead wires them)."""


def pkvm_monitors() -> list[Any]:
    """A fresh instance of each pKVM monitor, in a fixed order."""
    return [cls() for cls in PKVM_MONITORS.values()]
