"""The step vocabulary of scenarios: each operation, its parameters, its value checks, and how it
runs.

One table (:data:`OPS`) serves the TOML loader (which keys a step may have, their types and
ranges), the Python form (:func:`ffasim.scenario.step` validates the same way), the documentation
and the runtime. An operation is either a *guest* operation, issued by one vCPU of one VM through
its :class:`~ffasim.guest.FfaDriver`, or a *system* operation, run by a context that is not a
vCPU (the toolstack destroying a VM, the SRI tasklet, the teardown timer, a secure partition).

Parameters say what to do; *checks* say what a successful answer must contain (they are judged
only when the step's outcome is ``success``); ``expect`` lists the outcomes the step accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import abi
from ..guest import DriverError, FfaCallError
from ._kinds import ANY as ANY
from ._kinds import OUTCOMES as OUTCOMES
from ._kinds import SUCCESS as SUCCESS

if TYPE_CHECKING:
    from ._model import StepEnv

GUEST = "guest"
SYSTEM = "system"


DRIVER_ERROR = "driver error"
"""The outcome of a step the guest driver refused before calling (never expectable)."""

REQUIRED = object()


class Refused(Exception):
    """A step's call did not succeed: ``outcome`` is the FF-A error name (or a description of
    an unexpected answer), ``fid`` and ``regs`` the call and what it returned."""

    def __init__(
        self, outcome: str, fid: int | None, regs: abi.Regs | None, note: str = ""
    ) -> None:
        super().__init__(outcome)
        self.outcome = outcome
        self.fid = fid
        self.regs = regs
        self.note = note


class Skip(Exception):
    """The step cannot run (it names a handle that an earlier step did not create)."""


# ---------------------------------------------------------------------------------------------
# Parameter kinds


@dataclass(frozen=True)
class Param:
    """One key of a step: its kind (a name in :data:`~ffasim.scenario._kinds.KINDS`), its
    default (in the runtime's form; None: absent unless given), and a one-line doc."""

    kind: str
    default: Any = REQUIRED
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


# ---------------------------------------------------------------------------------------------
# Operations


Runner = Callable[["StepEnv", Mapping[str, Any]], Any]
Verifier = Callable[["StepEnv", Mapping[str, Any], Mapping[str, Any], Any], "str | None"]


@dataclass(frozen=True)
class OpDef:
    """One operation a step may name."""

    name: str
    scope: str
    """``"guest"`` (a vCPU issues it) or ``"system"`` (a non-vCPU context runs it)."""
    doc: str
    params: Mapping[str, Param]
    checks: Mapping[str, Param]
    run: Runner
    verify: Verifier | None = None
    label: Callable[[Mapping[str, Any]], str] | None = None


def _fail(e: FfaCallError) -> Refused:
    return Refused(e.error_name, e.fid, e.regs, e.note)


def _guarded(fn: Runner) -> Runner:
    """Turn the driver's FfaCallError into the step's refused outcome."""

    def run(env: StepEnv, p: Mapping[str, Any]) -> Any:
        try:
            return fn(env, p)
        except FfaCallError as e:
            raise _fail(e) from None
        except DriverError as e:  # the scenario asked for something the guest cannot do
            raise Refused(DRIVER_ERROR, None, None, str(e)) from None

    return run


def _hex(v: int) -> str:
    return f"0x{v:x}"


def _region(env: StepEnv, name: str) -> Any:
    region = env.instance.handles.get(name)
    if region is None:
        raise Skip(f"no share named {name!r} was made")
    return region


# -- guest operations -------------------------------------------------------------------------


def _run_negotiate(env: StepEnv, p: Mapping[str, Any]) -> Any:
    return env.drv.negotiate(p["version"])


def _verify_negotiate(
    env: StepEnv, p: Mapping[str, Any], c: Mapping[str, Any], v: Any
) -> str | None:
    if "version" in c and v != c["version"]:
        return f"negotiated {abi.version_str(v)}, expected {abi.version_str(c['version'])}"
    return None


def _run_features(env: StepEnv, p: Mapping[str, Any]) -> Any:
    return env.drv.features(p["fid"], p["props"])


def _verify_regs_pair(
    env: StepEnv, p: Mapping[str, Any], c: Mapping[str, Any], v: Any
) -> str | None:
    for i, key in enumerate(("w2", "w3")):
        if key in c and v[i] != c[key]:
            return f"{key} = {_hex(v[i])}, expected {_hex(c[key])}"
    return None


def _verify_id(env: StepEnv, p: Mapping[str, Any], c: Mapping[str, Any], v: Any) -> str | None:
    if "id" in c:
        want = env.vm.id if c["id"] == "self" else c["id"]
        if v != want:
            return f"ID {_hex(v)}, expected {_hex(want)}"
    return None


def _run_partition_info(env: StepEnv, p: Mapping[str, Any]) -> Any:
    return env.drv.partition_info(p.get("uuid"), count_only=p["count_only"])


def _run_partition_info_regs(env: StepEnv, p: Mapping[str, Any]) -> Any:
    return env.drv.partition_info_regs(p.get("uuid"))


def _verify_partitions(
    env: StepEnv, p: Mapping[str, Any], c: Mapping[str, Any], v: Any
) -> str | None:
    count = v if isinstance(v, int) else len(v)
    if "count" in c and count != c["count"]:
        return f"{count} partitions, expected {c['count']}"
    if isinstance(v, int):  # count_only (ids and includes are refused with it at load)
        return None
    got = sorted(info.id for info in v)
    if "ids" in c and got != sorted(c["ids"]):
        return f"partitions {_ids(got)}, expected {_ids(sorted(c['ids']))}"
    missing = [i for i in c.get("includes", ()) if i not in got]
    if missing:
        return f"partitions {_ids(got)} lack {_ids(missing)}"
    return None


def _ids(ids: Sequence[int]) -> str:
    return "[" + ", ".join(_hex(i) for i in ids) + "]"


def _run_direct_req(env: StepEnv, p: Mapping[str, Any]) -> Any:
    return env.drv.direct_req(p["dst"], p["payload"], bits=p["bits"])


def _run_direct_req2(env: StepEnv, p: Mapping[str, Any]) -> Any:
    return env.drv.direct_req2(p["dst"], p.get("uuid"), p["payload"])


def _verify_response(n: int) -> Verifier:
    def verify(env: StepEnv, p: Mapping[str, Any], c: Mapping[str, Any], v: Any) -> str | None:
        sent = tuple(p["payload"]) + (0,) * (n - len(p["payload"]))
        if c.get("echo") and tuple(v) != sent:
            return f"answered {_words(v)}, expected the payload back {_words(sent)}"
        if "response" in c:
            want = tuple(c["response"]) + (0,) * (n - len(c["response"]))
            if tuple(v) != want:
                return f"answered {_words(v)}, expected {_words(want)}"
        return None

    return verify


def _words(ws: Sequence[int]) -> str:
    return "(" + ", ".join(_hex(w) for w in ws) + ")"


def _run_share(env: StepEnv, p: Mapping[str, Any]) -> Any:
    from ._model import SharedRegion

    drv = env.drv
    pages = p["pages"]
    page_list = drv.alloc_pages(pages) if isinstance(pages, int) else tuple(pages)
    if "fill" in p:
        for page in page_list:
            env.vm.write(env.vm.ipa(page), bytes([p["fill"]]) * abi.FFA_PAGE_SIZE)
    handle = drv.share(p["receiver"], page_list, p["perms"])
    assert isinstance(handle, int)
    env.instance.handles[p["name"]] = SharedRegion(
        p["name"], handle, getattr(env.vm, "domid", 0), page_list
    )
    return handle


def _run_reclaim(env: StepEnv, p: Mapping[str, Any]) -> Any:
    region = _region(env, p["handle"])
    env.drv.reclaim(region.handle)
    env.instance.handles.pop(p["handle"], None)
    return None


def _run_mem_op(env: StepEnv, p: Mapping[str, Any]) -> Any:
    region = _region(env, p["handle"])
    h = region.handle
    payload = (p["request"], abi.handle_lo(h), abi.handle_hi(h), p["arg"], 0)
    answer = env.drv.direct_req(p["dst"], payload)
    assert isinstance(answer, tuple)
    status = abi.to_s32(answer[0])
    if status:
        raise Refused(
            abi.error_name(status),
            abi.FFA_MSG_SEND_DIRECT_REQ_32,
            env.drv.last,
            "the memory service answered an error in w3",
        )
    return answer[1]


def _verify_sum(env: StepEnv, p: Mapping[str, Any], c: Mapping[str, Any], v: Any) -> str | None:
    if "sum" in c and v != c["sum"]:
        return f"sum {v} ({_hex(v)}), expected {c['sum']} ({_hex(c['sum'])})"
    return None


def _run_write(env: StepEnv, p: Mapping[str, Any]) -> Any:
    for page in range(p["page"], p["page"] + p["pages"]):
        env.vm.write(env.vm.ipa(page), bytes([p["fill"]]) * abi.FFA_PAGE_SIZE)


def _run_read(env: StepEnv, p: Mapping[str, Any]) -> Any:
    return env.vm.read(env.vm.ipa(p["page"]), p["pages"] * abi.FFA_PAGE_SIZE)


def _verify_fill(env: StepEnv, p: Mapping[str, Any], c: Mapping[str, Any], v: Any) -> str | None:
    if "fill" in c:
        # Pages are compared whole (a C-speed scan); the first wrong byte is then named.
        wrong = bytes(v).translate(None, bytes([c["fill"]]))
        if not wrong:
            return None
        for i, b in enumerate(v):
            if b != c["fill"]:
                page = p["page"] + i // abi.FFA_PAGE_SIZE
                return (
                    f"page {page} byte {i % abi.FFA_PAGE_SIZE} is {_hex(b)}, "
                    f"expected {_hex(c['fill'])}"
                )
    return None


def _run_notif_bind(env: StepEnv, p: Mapping[str, Any]) -> Any:
    return env.drv.notification_bind(p["sender"], p["bitmap"], p["flags"])


def _run_notif_unbind(env: StepEnv, p: Mapping[str, Any]) -> Any:
    return env.drv.notification_unbind(p["sender"], p["bitmap"])


def _run_notif_set(env: StepEnv, p: Mapping[str, Any]) -> Any:
    return env.drv.notification_set(p["receiver"], p["bitmap"], p["flags"])


def _run_notif_get(env: StepEnv, p: Mapping[str, Any]) -> Any:
    return env.drv.notification_get(p["flags"])


def _verify_bitmaps(env: StepEnv, p: Mapping[str, Any], c: Mapping[str, Any], v: Any) -> str | None:
    for key in ("sp", "vm", "spm", "hyp"):
        if key in c and getattr(v, key) != c[key]:
            return f"{key} bitmap {_hex(getattr(v, key))}, expected {_hex(c[key])}"
    return None


def _run_notif_info_get(env: StepEnv, p: Mapping[str, Any]) -> Any:
    return env.drv.notification_info_get(bits=p["bits"])


def _verify_info(env: StepEnv, p: Mapping[str, Any], c: Mapping[str, Any], v: Any) -> str | None:
    if "ids" in c:
        got = sorted(lst[0] for lst in v.lists if lst)
        if got != sorted(c["ids"]):
            return f"endpoints {_ids(got)} pending, expected {_ids(sorted(c['ids']))}"
    return None


def _run_send2(env: StepEnv, p: Mapping[str, Any]) -> Any:
    return env.drv.send2(p["dst"], p["data"].encode())


def _run_receive(env: StepEnv, p: Mapping[str, Any]) -> Any:
    return env.drv.receive()


def _verify_message(env: StepEnv, p: Mapping[str, Any], c: Mapping[str, Any], v: Any) -> str | None:
    sender, data = v
    if "sender" in c and sender != c["sender"]:
        return f"message from {_hex(sender)}, expected {_hex(c['sender'])}"
    if "data" in c and data != c["data"].encode():
        return f"message {data!r}, expected {c['data'].encode()!r}"
    return None


def _resolve_arg(env: StepEnv, a: int | str) -> int:
    if isinstance(a, int):
        return a
    if a == "id":
        return int(env.vm.id)
    kind, _, rest = a.partition(":")
    if kind == "ipa":
        return int(env.vm.ipa(int(rest)))
    if kind == "to":
        return abi.pack_target(env.vm.id, int(rest, 0))
    region = _region(env, rest)
    return abi.handle_lo(region.handle) if kind == "handle_lo" else abi.handle_hi(region.handle)


def _run_call(env: StepEnv, p: Mapping[str, Any]) -> Any:
    args = [_resolve_arg(env, a) for a in p["args"]]
    r = env.drv.call(p["fid"], *args)
    if p.get("name") is not None:
        _named_handle(env, p["name"], r)
    if abi.is_error(r):
        raise Refused(abi.error_name(abi.error_code(r)), p["fid"], r)
    if (r[0] & abi.MASK32) == abi.MASK32:
        raise Refused("NOT_SUPPORTED", p["fid"], r)
    return r


def _run_write_bytes(env: StepEnv, p: Mapping[str, Any]) -> Any:
    data = bytes(p["data"])
    start = p["page"] * abi.FFA_PAGE_SIZE + p["offset"]
    if start + len(data) > env.vm.pages * abi.FFA_PAGE_SIZE:
        raise DriverError(
            f"{len(data)} bytes at page {p['page']} + {p['offset']} end beyond the VM's "
            f"{env.vm.pages} pages of RAM"
        )
    env.vm.write(env.vm.ipa(p["page"]) + p["offset"], data)


def _named_handle(env: StepEnv, name: str, r: abi.Regs) -> None:
    """Keep the handle a raw memory call answered (FFA_SUCCESS: w2/w3; FFA_MEM_FRAG_RX, the
    answer to a first fragment: w1/w2) under ``name``, for later steps' symbols."""
    from ._model import SharedRegion

    x0 = r[0] & abi.MASK32
    if x0 in (abi.FFA_SUCCESS_32, abi.FFA_SUCCESS_64):
        handle = abi.make_handle(r[2], r[3])
    elif x0 == abi.FFA_MEM_FRAG_RX:
        handle = abi.make_handle(r[1], r[2])
    else:
        return
    env.instance.handles[name] = SharedRegion(name, handle, env.vm.domid, ())


def _verify_regs(env: StepEnv, p: Mapping[str, Any], c: Mapping[str, Any], v: Any) -> str | None:
    for key, want in c.items():
        n = int(key[1:])
        got = v[n] & abi.MASK32 if key[0] == "w" else v[n]
        if got != want:
            return f"{key} = {_hex(got)}, expected {_hex(want)}"
    return None


# -- system operations ------------------------------------------------------------------------


def _run_destroy(env: StepEnv, p: Mapping[str, Any]) -> Any:
    env.instance.destroy_vm(p["vm"])


def _run_tasklets(env: StepEnv, p: Mapping[str, Any]) -> Any:
    return env.system.run_tasklets()


def _run_timers(env: StepEnv, p: Mapping[str, Any]) -> Any:
    return env.system.run_timers(advance=p["advance"])


def _verify_ran(env: StepEnv, p: Mapping[str, Any], c: Mapping[str, Any], v: Any) -> str | None:
    if "ran" in c and v != c["ran"]:
        return f"{v} callbacks ran, expected {c['ran']}"
    return None


def _run_sp_notify(env: StepEnv, p: Mapping[str, Any]) -> Any:
    sp = env.instance.partition(p["sp"])
    receiver = env.instance.vm(p["vm"]).id
    bitmap = p["bitmap"]
    r = sp.smc(
        abi.FFA_NOTIFICATION_SET,
        abi.pack_target(sp.id, receiver),
        p["flags"],
        bitmap & abi.MASK32,
        bitmap >> 32,
    )
    if not abi.is_success(r):
        name = abi.error_name(abi.error_code(r)) if abi.is_error(r) else abi.describe(r)
        raise Refused(name, abi.FFA_NOTIFICATION_SET, r)
    return None


def _claim_partition(sp: Any) -> list[Any]:
    """Run as the partition: take every execution context that is waiting (Hafnium's vCPU
    state, under its lock), so that a direct request meanwhile gets BUSY as on a partition
    that is running. Refused (BUSY) when one is already running a request: the partition
    cannot act now, and its handler and this step would otherwise share its TX buffer."""
    from ..spmc.vm import RUNNING, WAITING, vcpu_lock, vcpu_unlock

    claimed: list[Any] = []
    for vcpu in sp.spmc.endpoints[sp.id].vcpus:
        vcpu_lock(vcpu)
        free = vcpu.state == WAITING
        if free:
            vcpu.state = RUNNING
        vcpu_unlock(vcpu)
        if not free:
            _release_partition(claimed)
            raise Refused("BUSY", None, None, f"partition 0x{sp.id:x} is running")
        claimed.append(vcpu)
    return claimed


def _release_partition(claimed: list[Any]) -> None:
    from ..spmc.vm import WAITING, vcpu_lock, vcpu_unlock

    for vcpu in claimed:
        vcpu_lock(vcpu)
        vcpu.state = WAITING
        vcpu_unlock(vcpu)


def _run_sp_send2(env: StepEnv, p: Mapping[str, Any]) -> Any:
    sp = env.instance.partition(p["sp"])
    claimed = _claim_partition(sp)
    try:
        return _sp_send2(env, sp, p)
    finally:
        _release_partition(claimed)


def _sp_send2(env: StepEnv, sp: Any, p: Mapping[str, Any]) -> Any:
    from .. import desc

    receiver = env.instance.vm(p["vm"]).id
    payload = p["data"].encode()
    head = desc.INDIRECT_MSG_V1_2.size
    sender = sp.id if p.get("sender") is None else p["sender"]
    hdr = desc.IndirectMessage(
        flags=0, offset=head, sender=sender, receiver=receiver, size=len(payload)
    ).encode(abi.FFA_VERSION_1_2)
    sp.write(sp.tx, hdr + payload)
    r = sp.smc(abi.FFA_MSG_SEND2, 0, p["flags"])
    if not abi.is_success(r):
        name = abi.error_name(abi.error_code(r)) if abi.is_error(r) else abi.describe(r)
        raise Refused(name, abi.FFA_MSG_SEND2, r)
    return None


def _run_sp_check(env: StepEnv, p: Mapping[str, Any]) -> Any:
    sp = env.instance.partition(p["sp"])
    return (
        tuple(getattr(sp, "vms_created", ())),
        tuple(getattr(sp, "vms_destroyed", ())),
    )


def _verify_sp(env: StepEnv, p: Mapping[str, Any], c: Mapping[str, Any], v: Any) -> str | None:
    for key, seen in (("created", v[0]), ("destroyed", v[1])):
        missing = [i for i in c.get(key, ()) if i not in seen]
        if missing:
            return (
                f"partition {_hex(p['sp'])} was not told VMs {_ids(missing)} were {key} "
                f"(it saw {_ids(seen)})"
            )
    return None


# ---------------------------------------------------------------------------------------------

_P = Param
# One Param for the 26 register checks of a raw call: the file model builds a type per distinct
# parameter, and 26 copies of one that lists every FF-A function name cost 50 ms at import.
_REG_CHECK = _P("reg", doc="that register of the answer (x0..x17, or w0..w7: its low 32 bits)")
_DST = _P("endpoint", doc="the receiver's FF-A ID")


def _op(
    name: str,
    scope: str,
    doc: str,
    run: Runner,
    params: Mapping[str, Param] | None = None,
    checks: Mapping[str, Param] | None = None,
    verify: Verifier | None = None,
    label: Callable[[Mapping[str, Any]], str] | None = None,
) -> OpDef:
    return OpDef(name, scope, doc, params or {}, checks or {}, _guarded(run), verify, label)


_NOTIF_ALL = (
    abi.FFA_NOTIF_FLAG_BITMAP_SP | abi.FFA_NOTIF_FLAG_BITMAP_SPM | abi.FFA_NOTIF_FLAG_BITMAP_HYP
)

OPS: dict[str, OpDef] = {
    op.name: op
    for op in (
        _op(
            "negotiate",
            GUEST,
            "FFA_VERSION: offer a version, keep the one both sides use",
            _run_negotiate,
            {"version": _P("version", abi.FFA_VERSION_1_2, 'the version offered, e.g. "1.2"')},
            {"version": _P("version", doc="the version that must result")},
            _verify_negotiate,
            lambda p: f"negotiate({abi.version_str(p['version'])})",
        ),
        _op(
            "id_get",
            GUEST,
            "FFA_ID_GET",
            lambda env, p: env.drv.id_get(),
            {},
            {"id": _P("self_or_id", doc='the ID expected, or "self"')},
            _verify_id,
        ),
        _op(
            "features",
            GUEST,
            "FFA_FEATURES of a function or feature ID",
            _run_features,
            {
                "fid": _P("feature", doc="the function (name) or feature ID asked about"),
                "props": _P("u32", 0, "input properties (w2)"),
            },
            {"w2": _P("u32", doc="properties 1"), "w3": _P("u32", doc="properties 2")},
            _verify_regs_pair,
            lambda p: f"features({abi.name(p['fid'])})",
        ),
        _op(
            "map",
            GUEST,
            "FFA_RXTX_MAP: register RX and TX buffers in guest RAM",
            lambda env, p: env.drv.map_buffers(
                p["rx_page"], p["tx_page"], p["pages"], bits=p["bits"]
            ),
            {
                "rx_page": _P("page", 0, "RAM page of the RX buffer"),
                "tx_page": _P("page", 1, "RAM page of the TX buffer"),
                "pages": _P("count", 1, "buffer size in pages (w3)"),
                "bits": _P("bits", 64, "the SMC32 or SMC64 form"),
            },
        ),
        _op("unmap", GUEST, "FFA_RXTX_UNMAP", lambda env, p: env.drv.unmap_buffers()),
        _op("rx_release", GUEST, "FFA_RX_RELEASE", lambda env, p: env.drv.rx_release()),
        _op(
            "partition_info",
            GUEST,
            "FFA_PARTITION_INFO_GET, read the RX buffer, FFA_RX_RELEASE",
            _run_partition_info,
            {
                "uuid": _P("uuid", None, "only partitions with this UUID (default: all)"),
                "count_only": _P("bool", False, "ask only for the count (flag bit 0)"),
            },
            {
                "count": _P("count", doc="how many partitions the answer lists"),
                "ids": _P("ids", doc="the IDs listed, in any order"),
                "includes": _P("ids", doc="IDs that must be among those listed"),
            },
            _verify_partitions,
        ),
        _op(
            "partition_info_regs",
            GUEST,
            "FFA_PARTITION_INFO_GET_REGS until the last index",
            _run_partition_info_regs,
            {"uuid": _P("uuid", None, "only partitions with this UUID (default: all)")},
            {
                "count": _P("count", doc="how many partitions"),
                "ids": _P("ids", doc="the IDs listed, in any order"),
                "includes": _P("ids", doc="IDs that must be among those listed"),
            },
            _verify_partitions,
        ),
        _op(
            "direct_req",
            GUEST,
            "FFA_MSG_SEND_DIRECT_REQ (32 or 64) and its response",
            _run_direct_req,
            {
                "dst": _DST,
                "payload": _P("payload5", (), "up to 5 words (w3..w7)"),
                "bits": _P("bits", 32, "the SMC32 or SMC64 form"),
            },
            {
                "echo": _P("bool", doc="the response carries the payload back"),
                "response": _P("payload5", doc="the response's words (w3..w7)"),
            },
            _verify_response(5),
            lambda p: f"direct_req(0x{p['dst']:x})",
        ),
        _op(
            "direct_req2",
            GUEST,
            "FFA_MSG_SEND_DIRECT_REQ2 (v1.2) and its response",
            _run_direct_req2,
            {
                "dst": _DST,
                "uuid": _P("uuid", None, "the service UUID (default nil)"),
                "payload": _P("payload14", (), "up to 14 words (x4..x17)"),
            },
            {
                "echo": _P("bool", doc="the response carries the payload back"),
                "response": _P("payload14", doc="the response's words (x4..x17)"),
            },
            _verify_response(14),
            lambda p: f"direct_req2(0x{p['dst']:x})",
        ),
        _op(
            "share",
            GUEST,
            "FFA_MEM_SHARE of guest pages; names the handle for later steps",
            _run_share,
            {
                "receiver": _P("endpoint", 0x8002, "the borrower's FF-A ID"),
                "pages": _P("pages", 1, "a page count, or an array of RAM page numbers"),
                "perms": _P("perms", abi.FFA_MEM_ACC_RW, '"RW" or "RO"'),
                "fill": _P("byte", None, "write this byte over the pages first"),
                "name": _P("name", "h", "the name later steps use for the handle"),
            },
            label=lambda p: f"share(0x{p['receiver']:x}, {p['name']})",
        ),
        _op(
            "reclaim",
            GUEST,
            "FFA_MEM_RECLAIM of a named share",
            _run_reclaim,
            {"handle": _P("name", "h", "the share's name")},
            label=lambda p: f"reclaim({p['handle']})",
        ),
        _op(
            "mem_op",
            GUEST,
            "ask the memory service (0x8002) to fill or sum a share; w3 is its status",
            _run_mem_op,
            {
                "handle": _P("name", "h", "the share's name"),
                "request": _P("mem_op", doc='"fill" (op 1) or "sum" (op 2)'),
                "arg": _P("byte", 0, "the byte op 1 fills with"),
                "dst": _P("sp", 0x8002, "the memory service partition"),
            },
            {"sum": _P("u32", doc="the byte sum op 2 must answer")},
            _verify_sum,
            lambda p: f"mem_op({'fill' if p['request'] == 1 else 'sum'}, {p['handle']})",
        ),
        _op(
            "write",
            GUEST,
            "the guest writes a byte over RAM pages (no FF-A call)",
            _run_write,
            {
                "page": _P("page", doc="first RAM page"),
                "pages": _P("npages", 1, "how many"),
                "fill": _P("byte", doc="the byte written"),
            },
            label=lambda p: f"write(page {p['page']}, 0x{p['fill']:x})",
        ),
        _op(
            "read",
            GUEST,
            "the guest reads RAM pages and checks them (no FF-A call)",
            _run_read,
            {"page": _P("page", doc="first RAM page"), "pages": _P("npages", 1, "how many")},
            {"fill": _P("byte", doc="every byte must equal this")},
            _verify_fill,
            lambda p: f"read(page {p['page']})",
        ),
        _op(
            "notification_bind",
            GUEST,
            "FFA_NOTIFICATION_BIND",
            _run_notif_bind,
            {
                "sender": _P("endpoint", doc="who may signal"),
                "bitmap": _P("u64", doc="the notifications"),
                "flags": _P("u32", 0, "w2"),
            },
        ),
        _op(
            "notification_unbind",
            GUEST,
            "FFA_NOTIFICATION_UNBIND",
            _run_notif_unbind,
            {
                "sender": _P("endpoint", doc="who was bound"),
                "bitmap": _P("u64", doc="the notifications"),
            },
        ),
        _op(
            "notification_set",
            GUEST,
            "FFA_NOTIFICATION_SET",
            _run_notif_set,
            {
                "receiver": _P("endpoint", doc="who is signalled"),
                "bitmap": _P("u64", doc="the notifications"),
                "flags": _P("u32", 0, "w2"),
            },
        ),
        _op(
            "notification_get",
            GUEST,
            "FFA_NOTIFICATION_GET on this vCPU",
            _run_notif_get,
            {"flags": _P("u32", _NOTIF_ALL, "which bitmaps (default SP, SPM and hypervisor)")},
            {
                "sp": _P("u64", doc="SP bitmap"),
                "vm": _P("u64", doc="VM bitmap"),
                "spm": _P("u32", doc="SPM framework bitmap"),
                "hyp": _P("u32", doc="hypervisor framework bitmap"),
            },
            _verify_bitmaps,
        ),
        _op(
            "notification_info_get",
            GUEST,
            "FFA_NOTIFICATION_INFO_GET",
            _run_notif_info_get,
            {"bits": _P("bits", 64, "the SMC32 or SMC64 form")},
            {"ids": _P("ids", doc="the endpoints listed as pending")},
            _verify_info,
        ),
        _op(
            "send2",
            GUEST,
            "FFA_MSG_SEND2 of a text message",
            _run_send2,
            {"dst": _DST, "data": _P("str", doc="the payload (UTF-8)")},
            label=lambda p: f"send2(0x{p['dst']:x})",
        ),
        _op(
            "receive",
            GUEST,
            "read the indirect message in RX, FFA_RX_RELEASE",
            _run_receive,
            {},
            {"sender": _P("endpoint", doc="who sent it"), "data": _P("str", doc="its payload")},
            _verify_message,
        ),
        _op(
            "write_bytes",
            GUEST,
            "the guest writes bytes into its RAM (a descriptor into its TX; no FF-A call)",
            _run_write_bytes,
            {
                "page": _P("page", doc="RAM page"),
                "offset": _P("offset", 0, "byte offset from the start of the page"),
                "data": _P("hex", doc="the bytes, in hex"),
            },
            label=lambda p: f"write_bytes(page {p['page']} + {p['offset']})",
        ),
        _op(
            "call",
            GUEST,
            "any FF-A call with raw registers",
            _run_call,
            {
                "fid": _P("fid", doc="the function (name or ID)"),
                "args": _P("args", (), "x1.. as integers or symbols"),
                "name": _P("name", None, "keep the memory handle it answers under this name"),
            },
            {f"{r}{i}": _REG_CHECK for r, n in (("x", 18), ("w", 8)) for i in range(n)},
            _verify_regs,
            lambda p: abi.name(p["fid"]),
        ),
        # -- system operations --
        _op(
            "destroy",
            SYSTEM,
            "the toolstack destroys a VM",
            _run_destroy,
            {"vm": _P("vm", doc="the VM's index (domid)")},
            label=lambda p: f"destroy(d{p['vm']})",
        ),
        _op(
            "run_tasklets",
            SYSTEM,
            "Xen runs its pending tasklets (the notification SRI)",
            _run_tasklets,
            {},
            {"ran": _P("count", doc="how many ran")},
            _verify_ran,
        ),
        _op(
            "run_timers",
            SYSTEM,
            "advance virtual time and run Xen's due timers",
            _run_timers,
            {"advance": _P("advance", 1.0, "seconds of virtual time")},
            {"ran": _P("count", doc="how many ran")},
            _verify_ran,
        ),
        _op(
            "sp_notify",
            SYSTEM,
            "a partition sets a notification for a VM (FFA_NOTIFICATION_SET)",
            _run_sp_notify,
            {
                "sp": _P("sp", doc="the partition"),
                "vm": _P("vm", doc="the receiving VM's index"),
                "bitmap": _P("u64", 1, "the notifications"),
                "flags": _P("u32", 0, "w2"),
            },
            label=lambda p: f"sp_notify(0x{p['sp']:x} -> d{p['vm']})",
        ),
        _op(
            "sp_send2",
            SYSTEM,
            "a partition sends an indirect message to a VM (FFA_MSG_SEND2 from its TX); BUSY "
            "while it runs a request",
            _run_sp_send2,
            {
                "sp": _P("sp", doc="the sending partition"),
                "vm": _P("vm", doc="the receiving VM's index"),
                "data": _P("str", "hi", "the payload (UTF-8)"),
                "sender": _P("endpoint", None, "the header's sender (default: the partition)"),
                "flags": _P("u32", 0, "w2 (bit 1: delay the schedule receiver interrupt)"),
            },
            label=lambda p: f"sp_send2(0x{p['sp']:x} -> d{p['vm']})",
        ),
        _op(
            "sp_check",
            SYSTEM,
            "what a partition was told about VMs (created/destroyed)",
            _run_sp_check,
            {"sp": _P("sp", doc="the partition")},
            {
                "created": _P("ids", doc="FF-A IDs it must have seen created"),
                "destroyed": _P("ids", doc="FF-A IDs it must have seen destroyed"),
            },
            _verify_sp,
            lambda p: f"sp_check(0x{p['sp']:x})",
        ),
    )
}
