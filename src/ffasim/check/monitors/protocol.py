"""answer (protocol state): a guest-visible answer that the guest's own FF-A state forbids.

:mod:`.answers` judges each answer alone. This monitor remembers, per VM, what its earlier
answers told it, the abstract state a guest driver keeps (FF-A v1.2 sections 7, 10 and 11),
and holds each new answer to that state:

- **version first**: before any FFA_VERSION answered with a version, every other call is
  NOT_SUPPORTED; the first FFA_VERSION with bit 31 (MBZ) set is NOT_SUPPORTED (once a version
  was answered, Xen answers its own to any later FFA_VERSION);
- **buffers**: RXTX_MAP never succeeds while a pair is mapped or with a page count of 0, and a
  well-formed one (one page, aligned) is DENIED while a pair is mapped;
  RXTX_UNMAP never succeeds with nothing mapped or while the guest owns its RX; RX_RELEASE
  never succeeds while the guest does not own its RX;
- **RX ownership**: a successful PARTITION_INFO_GET (not count-only) gives the RX to the guest,
  its RX_RELEASE gives it back; PARTITION_INFO_GET is not BUSY while the guest's RX is free;
- **failure atomicity**: a call answered with an error leaves that state as it was (so a
  failure path that keeps the RX taken shows as a BUSY later), unless an SMC of the call
  failed or a fault was injected into it: then the RX is unknown until an answer settles it;
- **offers**: FFA_FEATURES does not offer a VM the interfaces FF-A 1.2 added (DIRECT_REQ2,
  PARTITION_INFO_GET_REGS) when it negotiated an older version, and DIRECT_REQ2 from such a
  VM is NOT_SUPPORTED; once Xen created notification bitmaps at the SPMC, a VM's
  NOTIFICATION_BIND/UNBIND/SET with a partition (in its own name, global) is not answered
  NOT_SUPPORTED without asking the SPMC;
- **shares**: the handles a VM holds are those its MEM_SHAREs returned and its MEM_RECLAIMs
  have not taken back: no MEM_RECLAIM succeeds for another handle, and no MEM_SHARE succeeds
  while it holds Xen's documented maximum of 32 (``FFA_MAX_SHM_COUNT``).

Only what the VM can know is known. A call that overlapped another call of the same VM is not
judged, and the state it could have changed becomes unknown until a later answer settles it
(a successful RXTX_MAP, RXTX_UNMAP or RX_RELEASE); any message that may have landed in an RX
(a successful MSG_SEND2 from a VM, any partition's MSG_SEND2) makes every VM's RX unknown, and
so does a call that returns while a MSG_SEND2 is under way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ... import abi
from ._base import CallTracking

FFA_MAX_SHM_COUNT = 32
"""Xen's cap on the shares one VM holds (ffa.c's list of limits)."""

_VCPU = re.compile(r"(d\d+)v\d+\Z")
_MAP = frozenset({abi.FFA_RXTX_MAP_32, abi.FFA_RXTX_MAP_64})
_SHARE = frozenset({abi.FFA_MEM_SHARE_32, abi.FFA_MEM_SHARE_64})
_OK = frozenset({abi.FFA_SUCCESS_32, abi.FFA_SUCCESS_64})
_V1_2_ONLY = frozenset({abi.FFA_MSG_SEND_DIRECT_REQ2, abi.FFA_PARTITION_INFO_GET_REGS})
"""Interfaces FF-A 1.2 added: a VM that negotiated an older version is not offered them."""
_NOTIF_TO_SP = frozenset(
    {abi.FFA_NOTIFICATION_BIND, abi.FFA_NOTIFICATION_UNBIND, abi.FFA_NOTIFICATION_SET}
)


@dataclass
class _VmState:
    """What a VM knows of its own FF-A state; ``None``: it cannot know."""

    versioned: bool | None = False
    version: int | None = None
    """The version Xen fixes for the VM (from its last FFA_VERSION before another call)."""
    fixed: bool = False
    mapped: bool | None = False
    rx_owned: bool | None = False
    handles: set[int] | None = field(default_factory=set)
    open: dict[str, tuple[tuple[int, ...], bool]] = field(default_factory=dict)
    """vCPU -> (the call's registers, whether another call of the VM overlapped it)."""

    def forget(self) -> None:
        self.versioned = None if not self.versioned else True
        if not self.fixed:
            self.version = None
        self.mapped = self.rx_owned = None
        self.handles = None


class ProtocolMonitor(CallTracking):
    """Holds each guest answer to what the VM's earlier answers established."""

    def __init__(self) -> None:
        super().__init__()
        self.vms: dict[str, _VmState] = {}
        self.reported: set[str] = set()
        self.smc_failed: set[str] = set()
        """Contexts whose hypercall saw an SMC to the SPMC fail (an injected fault, or the
        SPMC's own refusal): what Xen then answers is the SPMC's word, not a state rule's."""
        self.sends_in_flight = 0
        """MSG_SEND2 calls under way (a guest's or a partition's): while one is, any RX may
        be filling."""
        self.sp_sends: dict[str, int] = {}
        """Per partition context, its MSG_SEND2 calls under way."""
        self.faults_at_call: dict[str, int] = {}
        """Per context, the faults injected so far when its hypercall began."""
        self.smc_made: set[str] = set()
        """Contexts whose hypercall made an SMC to the SPMC."""
        self.smc_fid: dict[str, int] = {}
        self.notif_enabled = False
        """Xen created a notification bitmap at the SPMC: it serves notifications."""

    def _vm(self, ctx: str) -> tuple[str, _VmState] | None:
        m = _VCPU.match(ctx)
        if m is None:
            return None
        return m.group(1), self.vms.setdefault(m.group(1), _VmState())

    def call(self, layer: str, caller: str, args: tuple[int, ...]) -> None:
        super().call(layer, caller, args)
        if layer == "smc" and caller == "xen" and args:
            ctx = self.execution.machine.current
            self.smc_made.add(ctx)
            self.smc_fid[ctx] = args[0] & abi.MASK32
            return
        if layer == "smc" and caller != "spmc" and args:
            if args[0] & abi.MASK32 == abi.FFA_MSG_SEND2:  # a partition's message to anyone
                self.sends_in_flight += 1
                self.sp_sends[caller] = self.sp_sends.get(caller, 0) + 1
                self._rx_unknown()
            return
        if layer != "hvc" or not args:
            return
        ctx = self.context(caller)
        found = self._vm(ctx)
        if found is None:
            return
        _, vm = found
        if args[0] & abi.MASK32 == abi.FFA_MSG_SEND2:
            self.sends_in_flight += 1
        overlapped = bool(vm.open)
        for other, (regs, _) in vm.open.items():
            vm.open[other] = (regs, True)
        vm.open[ctx] = (args, overlapped)
        self.faults_at_call[ctx] = self._faults()

    def ret(self, layer: str, caller: str, result: tuple[int, ...]) -> None:
        if layer == "smc" and caller not in ("xen", "spmc") and self._closes_sp_send(caller):
            self.sends_in_flight -= 1
            self._rx_unknown()
        elif layer == "smc" and caller == "xen" and result:
            ctx = self.execution.machine.current
            if abi.is_error(result):
                self.smc_failed.add(ctx)
            elif self.smc_fid.get(ctx) == abi.FFA_NOTIFICATION_BITMAP_CREATE:
                self.notif_enabled = True
        elif layer == "hvc" and result:
            ctx = self.context(caller)
            found = self._vm(ctx)
            if found is not None:
                _, vm = found
                entry = vm.open.pop(ctx, None)
                # An injected fault in the call (an SMC, an allocation, a helper) counts as a
                # failed SMC: what Xen then does is the failure path's business.
                faulted = self._faults() > self.faults_at_call.pop(ctx, 0)
                smc_failed = ctx in self.smc_failed or faulted
                smc_made = ctx in self.smc_made
                self.smc_failed.discard(ctx)
                self.smc_made.discard(ctx)
                if entry is not None:
                    args, overlapped = entry
                    if args[0] & abi.MASK32 == abi.FFA_MSG_SEND2:
                        self.sends_in_flight -= 1
                    if self.sends_in_flight:
                        # Another endpoint's message may be landing in this VM's RX now.
                        vm.rx_owned = None
                    if overlapped:
                        vm.forget()
                    else:
                        self._judge(ctx, vm, args, result, smc_failed)
                        if vm.versioned:
                            self._judge_offers(ctx, vm, args, result, smc_made)
                    if args[0] & abi.MASK32 == abi.FFA_MSG_SEND2 and _ok(result):
                        self._rx_unknown()
        super().ret(layer, caller, result)

    def _closes_sp_send(self, caller: str) -> bool:
        """Whether ``caller`` (a partition) has a MSG_SEND2 under way; closes one if so."""
        n = self.sp_sends.get(caller, 0)
        if n:
            self.sp_sends[caller] = n - 1
        return bool(n)

    def _faults(self) -> int:
        return len(getattr(self.execution, "injected", ()))

    def _rx_unknown(self) -> None:
        for vm in self.vms.values():
            vm.rx_owned = None

    # -- the rules and the transitions --------------------------------------------------------
    def _judge(
        self, ctx: str, vm: _VmState, args: tuple[int, ...], r: tuple[int, ...], smc_failed: bool
    ) -> None:
        fid = args[0] & abi.MASK32
        fname = abi.name(fid)
        ok = _ok(r)
        if fid == abi.FFA_VERSION:
            answered_version = not abi.is_error(r) and not r[0] >> 31 & 1
            if args[1] >> 31 & 1 and answered_version and vm.versioned is False:
                self._say(
                    ctx,
                    fname,
                    f"answers version 0x{r[0]:x} to a version word with bit "
                    "31 (MBZ) set, where NOT_SUPPORTED is due",
                )
            if answered_version:
                vm.versioned = True
                if not vm.fixed:
                    asked = args[1] & abi.MASK32
                    mine = r[0] & abi.MASK32
                    ok_ask = asked >> 16 == mine >> 16 and asked & 0xFFFF <= mine & 0xFFFF
                    vm.version = asked if ok_ask else mine
            return
        if vm.versioned and not _not_supported(r):
            vm.fixed = True
        if smc_failed and not _ok(r):
            # A failure path whose own cleanup the SPMC refused (or a fault broke) may keep
            # what it took: the RX is known again once an answer settles it.
            vm.rx_owned = None
        if vm.versioned is False and not _not_supported(r):
            self._say(
                ctx,
                fname,
                f"answers {abi.describe(r)} before the VM called FFA_VERSION, "
                "where NOT_SUPPORTED is due",
            )
            return
        if fid in _MAP:
            if ok and vm.mapped:
                self._say(ctx, fname, "succeeds while the VM's pair is already mapped")
            elif ok and not args[3] & abi.MASK32:
                self._say(ctx, fname, "succeeds with a page count of 0")
            elif vm.mapped and _well_formed_map(args) and not _is(r, abi.FFA_RET_DENIED):
                self._say(
                    ctx,
                    fname,
                    f"answers {abi.describe(r)} while the VM's pair is already "
                    "mapped, where DENIED is due",
                )
            if ok:
                vm.mapped, vm.rx_owned = True, False
        elif fid == abi.FFA_RXTX_UNMAP:
            if ok and vm.mapped is False:
                self._say(ctx, fname, "succeeds with no pair mapped")
            elif ok and vm.rx_owned:
                self._say(ctx, fname, "succeeds while the VM owns its RX buffer")
            if ok:
                vm.mapped, vm.rx_owned = False, False
        elif fid == abi.FFA_RX_RELEASE:
            if ok and (vm.rx_owned is False or vm.mapped is False):
                self._say(ctx, fname, "succeeds while the VM does not own its RX buffer")
            if ok:
                vm.mapped, vm.rx_owned = True, False
        elif fid == abi.FFA_PARTITION_INFO_GET:
            if _is(r, abi.FFA_RET_BUSY) and vm.mapped and vm.rx_owned is False and not smc_failed:
                self._say(ctx, fname, "answers BUSY while the VM's RX buffer is free")
            if ok and not args[5] & 1 and vm.mapped is not False:
                vm.mapped, vm.rx_owned = True, True
        elif fid in _SHARE and ok:
            if vm.handles is not None and len(vm.handles) >= FFA_MAX_SHM_COUNT:
                self._say(
                    ctx,
                    fname,
                    f"succeeds while the VM holds {len(vm.handles)} shares, Xen's maximum",
                )
            if vm.handles is not None:
                vm.handles.add(r[2] & abi.MASK32 | (r[3] & abi.MASK32) << 32)
        elif fid == abi.FFA_MEM_RECLAIM and ok:
            handle = args[1] & abi.MASK32 | (args[2] & abi.MASK32) << 32
            if vm.handles is not None:
                if handle not in vm.handles:
                    self._say(
                        ctx, fname, f"succeeds for handle 0x{handle:x}, which the VM does not hold"
                    )
                vm.handles.discard(handle)

    def _judge_offers(
        self, ctx: str, vm: _VmState, args: tuple[int, ...], r: tuple[int, ...], smc_made: bool
    ) -> None:
        """What Xen offers agrees with the VM's version and with what it serves."""
        fid = args[0] & abi.MASK32
        fname = abi.name(fid)
        old = vm.version is not None and vm.version < abi.FFA_VERSION_1_2
        if fid == abi.FFA_FEATURES and old and _ok(r) and (args[1] & abi.MASK32) in _V1_2_ONLY:
            self._say(
                ctx,
                fname,
                f"offers {abi.name(args[1] & abi.MASK32)} to a VM of FF-A "
                f"{abi.version_major(vm.version or 0)}.{abi.version_minor(vm.version or 0)}",
            )
        elif fid == abi.FFA_MSG_SEND_DIRECT_REQ2 and old and not _not_supported(r):
            self._say(ctx, fname, f"answers {abi.describe(r)} to a VM of FF-A before 1.2")
        elif fid in _NOTIF_TO_SP and self.notif_enabled and _not_supported(r) and not smc_made:
            m = _VCPU.match(ctx)
            vm_id = int(m.group(1)[1:]) + 1 if m else -1
            w1 = args[1] & abi.MASK32
            own, partition = (w1 >> 16, w1 & 0xFFFF)
            if fid != abi.FFA_NOTIFICATION_SET:
                own, partition = partition, own
            flags_ok = fid != abi.FFA_NOTIFICATION_BIND or not args[2] & abi.MASK32
            if own == vm_id and partition & 0x8000 and flags_ok:
                self._say(
                    ctx,
                    fname,
                    f"answers NOT_SUPPORTED for partition 0x{partition:x} without asking the "
                    "SPMC, while Xen serves notifications",
                )

    def _say(self, ctx: str, name: str, what: str) -> None:
        if what in self.reported:
            return
        self.reported.add(what)
        self.report(
            "answer", f"xen {name} {what} ({ctx})", threads=(ctx,), calls=(f"{ctx} {name}",)
        )


def _ok(r: tuple[int, ...]) -> bool:
    return (r[0] & abi.MASK32) in _OK


def _not_supported(r: tuple[int, ...]) -> bool:
    """FFA_ERROR(NOT_SUPPORTED), or SMCCC's NOT_SUPPORTED (-1 in x0) for an ID nobody serves."""
    return _is(r, abi.FFA_RET_NOT_SUPPORTED) or (r[0] & abi.MASK32) == abi.MASK32


def _is(r: tuple[int, ...], code: int) -> bool:
    return abi.is_error(r) and abi.error_code(r) == code


def _well_formed_map(args: tuple[int, ...]) -> bool:
    """RXTX_MAP of one page at 4 KiB-aligned addresses: nothing but the state can refuse it."""
    return (args[3] & abi.MASK32) == 1 and not (args[1] | args[2]) & 0xFFF
