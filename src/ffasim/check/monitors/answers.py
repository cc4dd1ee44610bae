"""answer: a guest-visible answer that the FF-A spec or the SPMC's own answers do not allow.

A scenario's oracle knows what one program expects; these rules hold for every program, so a
generated one needs no expectations. At each return of a guest hypercall the monitor checks:

- **the error code**: an FFA_ERROR must carry one of the codes FF-A defines (-1..-10), and one
  that the spec lists for that function (:data:`ALLOWED`, per function ID, from
  ``reference/ffa-abi.md`` and DEN0077A's per-ABI error lists, erring toward allowing). An
  error the SPMC itself gave Xen for the forwarded call and that the spec does not allow for
  *that* SMC either (an injected fault, an SPMC's own deviation) is not held against Xen;
- **success the SPMC never gave**: for a call Xen always forwards (:data:`FORWARDED`: memory
  sharing, reclaim, direct requests, notification binding), a SUCCESS answered to the guest
  needs the last forwarded SMC of the call to have succeeded; for a call Xen forwards only
  sometimes (RXTX_MAP, RX_RELEASE, SEND2...), once it did forward, the same holds;
- **the handle**: FFA_MEM_SHARE's SUCCESS carries the handle that the SPMC's SUCCESS carried
  (Xen must not invent, truncate or reuse one);
- **FFA_VERSION**: w0 is a version word (bit 31 clear) or NOT_SUPPORTED, never FFA_ERROR.

It judges only what crosses the guest boundary in one hypercall: an answer that is allowed but
wrong for the guest's state (DENIED where BUSY was due), and whatever Xen answers without asking
the SPMC (PARTITION_INFO_GET from a cache), are out of its sight.
"""

from __future__ import annotations

from ... import abi
from ._base import CallTracking

NS = abi.FFA_RET_NOT_SUPPORTED
INVAL = abi.FFA_RET_INVALID_PARAMETERS
NOMEM = abi.FFA_RET_NO_MEMORY
BUSY = abi.FFA_RET_BUSY
INTR = abi.FFA_RET_INTERRUPTED
DENIED = abi.FFA_RET_DENIED
RETRY = abi.FFA_RET_RETRY
ABORTED = abi.FFA_RET_ABORTED
NO_DATA = abi.FFA_RET_NO_DATA

DEFINED = frozenset(range(abi.FFA_RET_NOT_READY, 0))
"""Every error code FF-A defines (-1 NOT_SUPPORTED .. -10 NOT_READY)."""

_MEM_SEND = frozenset({NS, INVAL, NOMEM, BUSY, DENIED, ABORTED})
_MEM_OP = frozenset({NS, INVAL, NOMEM, DENIED, ABORTED})
_DIRECT = frozenset({NS, INVAL, NOMEM, BUSY, INTR, DENIED, RETRY, ABORTED})
_NOTIF = frozenset({NS, INVAL, DENIED})

ALLOWED: dict[int, frozenset[int]] = {
    abi.FFA_FEATURES: frozenset({NS, INVAL}),
    abi.FFA_ID_GET: frozenset({NS}),
    abi.FFA_SPM_ID_GET: frozenset({NS}),
    abi.FFA_RXTX_MAP_32: frozenset({NS, INVAL, NOMEM, DENIED}),
    abi.FFA_RXTX_MAP_64: frozenset({NS, INVAL, NOMEM, DENIED}),
    abi.FFA_RXTX_UNMAP: frozenset({NS, INVAL, DENIED}),
    abi.FFA_RX_RELEASE: frozenset({NS, INVAL, DENIED}),
    abi.FFA_RX_ACQUIRE: frozenset({NS, INVAL, DENIED}),
    abi.FFA_PARTITION_INFO_GET: frozenset({NS, INVAL, NOMEM, BUSY, DENIED}),
    abi.FFA_PARTITION_INFO_GET_REGS: frozenset({NS, INVAL, RETRY}),
    # A partition may answer a direct request with an error of its own, which is passed on.
    abi.FFA_MSG_SEND_DIRECT_REQ_32: _DIRECT,
    abi.FFA_MSG_SEND_DIRECT_REQ_64: _DIRECT,
    abi.FFA_MSG_SEND_DIRECT_REQ2: _DIRECT,
    abi.FFA_RUN: frozenset({NS, INVAL, BUSY, DENIED, ABORTED}),
    # Xen answers NO_MEMORY for a message larger than the receiver's RX.
    abi.FFA_MSG_SEND2: frozenset({NS, INVAL, NOMEM, BUSY, DENIED, ABORTED}),
    abi.FFA_MEM_SHARE_32: _MEM_SEND,
    abi.FFA_MEM_SHARE_64: _MEM_SEND,
    abi.FFA_MEM_LEND_32: _MEM_SEND,
    abi.FFA_MEM_LEND_64: _MEM_SEND,
    abi.FFA_MEM_DONATE_32: _MEM_SEND,
    abi.FFA_MEM_DONATE_64: _MEM_SEND,
    abi.FFA_MEM_RETRIEVE_REQ_32: _MEM_SEND,
    abi.FFA_MEM_RETRIEVE_REQ_64: _MEM_SEND,
    abi.FFA_MEM_RELINQUISH: _MEM_OP,
    abi.FFA_MEM_RECLAIM: _MEM_OP,
    abi.FFA_MEM_FRAG_TX: _MEM_SEND,
    abi.FFA_MEM_FRAG_RX: _MEM_SEND,
    abi.FFA_NOTIFICATION_BITMAP_CREATE: frozenset({NS, INVAL, NOMEM, DENIED}),
    abi.FFA_NOTIFICATION_BITMAP_DESTROY: frozenset({NS, INVAL, DENIED}),
    abi.FFA_NOTIFICATION_BIND: _NOTIF,
    abi.FFA_NOTIFICATION_UNBIND: _NOTIF,
    abi.FFA_NOTIFICATION_SET: _NOTIF,
    abi.FFA_NOTIFICATION_GET: _NOTIF,
    abi.FFA_NOTIFICATION_INFO_GET_32: frozenset({NS, NO_DATA}),
    abi.FFA_NOTIFICATION_INFO_GET_64: frozenset({NS, NO_DATA}),
}
"""Per function ID, the error codes the spec lists for it. A function not here (one Xen does
not implement, or an unknown ID) may only be NOT_SUPPORTED."""

_DIRECT_SMCS = frozenset(
    {
        abi.FFA_MSG_SEND_DIRECT_REQ_32,
        abi.FFA_MSG_SEND_DIRECT_REQ_64,
        abi.FFA_MSG_SEND_DIRECT_REQ2,
        abi.FFA_RUN,
    }
)
_SHARE_SMCS = frozenset({abi.FFA_MEM_SHARE_32, abi.FFA_MEM_SHARE_64, abi.FFA_MEM_FRAG_TX})

FORWARDED: dict[int, tuple[frozenset[int], bool]] = {
    abi.FFA_MEM_SHARE_32: (_SHARE_SMCS, True),
    abi.FFA_MEM_SHARE_64: (_SHARE_SMCS, True),
    abi.FFA_MEM_RECLAIM: (frozenset({abi.FFA_MEM_RECLAIM}), True),
    abi.FFA_MSG_SEND_DIRECT_REQ_32: (_DIRECT_SMCS, True),
    abi.FFA_MSG_SEND_DIRECT_REQ_64: (_DIRECT_SMCS, True),
    abi.FFA_MSG_SEND_DIRECT_REQ2: (_DIRECT_SMCS, True),
    abi.FFA_NOTIFICATION_BIND: (frozenset({abi.FFA_NOTIFICATION_BIND}), True),
    abi.FFA_NOTIFICATION_UNBIND: (frozenset({abi.FFA_NOTIFICATION_UNBIND}), True),
    abi.FFA_RXTX_MAP_32: (frozenset({abi.FFA_RXTX_MAP_64}), False),
    abi.FFA_RXTX_MAP_64: (frozenset({abi.FFA_RXTX_MAP_64}), False),
    abi.FFA_RXTX_UNMAP: (frozenset({abi.FFA_RXTX_UNMAP}), False),
    abi.FFA_RX_RELEASE: (frozenset({abi.FFA_RX_RELEASE}), False),
    abi.FFA_NOTIFICATION_SET: (frozenset({abi.FFA_NOTIFICATION_SET}), False),
    abi.FFA_MSG_SEND2: (frozenset({abi.FFA_MSG_SEND2}), False),
    abi.FFA_RUN: (frozenset({abi.FFA_RUN}), False),
}
"""Per guest function ID: the SMCs that carry it to the SPMC, and whether Xen always forwards
it (else only in some states: a VM receiver, a firmware with RX_ACQUIRE)."""

_OK = frozenset(
    {
        abi.FFA_SUCCESS_32,
        abi.FFA_SUCCESS_64,
        abi.FFA_MSG_SEND_DIRECT_RESP_32,
        abi.FFA_MSG_SEND_DIRECT_RESP_64,
        abi.FFA_MSG_SEND_DIRECT_RESP2,
    }
)


HYPERVISOR_CALLERS = frozenset({"xen"})
"""Whose SMCs are the mediator's (the SMCs of partitions, made from their handlers in the same
context, are not). pKVM's proxy is judged by its own monitors (``monitors/pkvm.py``): its
host's calls are not judged here."""


def _ok(r: tuple[int, ...]) -> bool:
    return (r[0] & abi.MASK32) in _OK


def allowed(fid: int) -> frozenset[int]:
    """The error codes FF-A lists for function ``fid``."""
    return ALLOWED.get(fid & abi.MASK32, frozenset({NS}))


class AnswerMonitor(CallTracking):
    """Holds each guest hypercall's answer to the spec and to what the SPMC answered Xen."""

    def __init__(self) -> None:
        super().__init__()
        # ctx -> stack (one per nested guest hypercall) of [guest fid, [(smc fid, result)]]
        self.open: dict[str, list[tuple[int, list[tuple[int, tuple[int, ...]]]]]] = {}
        self.pending: dict[str, list[int]] = {}  # ctx -> Xen SMC fids awaiting their return
        self.reported: set[tuple[str, str]] = set()

    def call(self, layer: str, caller: str, args: tuple[int, ...]) -> None:
        super().call(layer, caller, args)
        if layer == "hvc" and not caller.startswith("host"):
            self.open.setdefault(self.context(caller), []).append((args[0] & abi.MASK32, []))
        elif layer == "smc" and caller in HYPERVISOR_CALLERS:
            self.pending.setdefault(self.execution.machine.current, []).append(args[0] & abi.MASK32)

    def ret(self, layer: str, caller: str, result: tuple[int, ...]) -> None:
        if layer == "smc" and caller in HYPERVISOR_CALLERS:
            ctx = self.execution.machine.current
            fids = self.pending.get(ctx)
            fid = fids.pop() if fids else 0
            stack = self.open.get(ctx)
            if stack:
                stack[-1][1].append((fid, result))
        elif layer == "hvc":
            ctx = self.context(caller)
            stack = self.open.get(ctx)
            if stack:
                fid, smcs = stack.pop()
                self._judge(ctx, fid, smcs, result)
        super().ret(layer, caller, result)

    # -- the rules ---------------------------------------------------------------------------
    def _judge(
        self,
        ctx: str,
        fid: int,
        smcs: list[tuple[int, tuple[int, ...]]],
        r: tuple[int, ...],
    ) -> None:
        name = abi.name(fid)
        if fid == abi.FFA_VERSION:
            if abi.is_error(r) or (r[0] >> 31 and r[0] & abi.MASK32 != abi.MASK32):
                self._say(ctx, name, f"answers FFA_VERSION with {abi.describe(r)}, not a version")
            return
        if abi.is_error(r):
            self._error(ctx, fid, name, smcs, r)
            return
        if not _ok(r):
            return
        rule = FORWARDED.get(fid)
        if rule is None:
            return
        carriers, always = rule
        sent = [(f, res) for f, res in smcs if f in carriers]
        if not sent:
            if always:
                self._say(ctx, name, f"answers {abi.describe(r)} without forwarding it to the SPMC")
            return
        last_fid, last = sent[-1]
        if not _ok(last):
            self._say(
                ctx,
                name,
                f"answers {abi.describe(r)} but the SPMC answered its {abi.name(last_fid)} "
                f"with {abi.describe(last)}",
            )
            return
        if fid in (abi.FFA_MEM_SHARE_32, abi.FFA_MEM_SHARE_64):
            mine = r[2] & abi.MASK32 | (r[3] & abi.MASK32) << 32
            theirs = last[2] & abi.MASK32 | (last[3] & abi.MASK32) << 32
            if mine != theirs:
                self._say(
                    ctx,
                    name,
                    f"answers handle 0x{mine:x} but the SPMC allocated 0x{theirs:x}",
                )

    def _error(
        self,
        ctx: str,
        fid: int,
        name: str,
        smcs: list[tuple[int, tuple[int, ...]]],
        r: tuple[int, ...],
    ) -> None:
        code = abi.error_code(r)
        if code not in DEFINED:
            self._say(ctx, name, f"answers FFA_ERROR with 0x{r[2] & abi.MASK32:x}: no FF-A error")
            return
        if code in allowed(fid):
            return
        failed = [(f, res) for f, res in smcs if abi.is_error(res)]
        if failed:
            smc_fid, res = failed[-1]
            if abi.error_code(res) == code and code not in allowed(smc_fid):
                return  # the SPMC's (or an injected) answer, passed on: not Xen's to judge
        self._say(ctx, name, f"answers {abi.error_name(code)}, which FF-A does not list for {name}")

    def _say(self, ctx: str, name: str, what: str) -> None:
        key = (name, what)
        if key in self.reported:
            return
        self.reported.add(key)
        self.report(
            "answer", f"xen {what} ({ctx}'s {name})", threads=(ctx,), calls=(f"{ctx} {name}",)
        )
