"""Hypothesis strategies for FF-A inputs: descriptors, near-valid descriptors, partition-info
UUIDs, guest calls and small concurrent scenarios.

Each strategy draws values that the model accepts (or, for :func:`mutated`, values one change
away from that), ordered so that hypothesis shrinks a failure to the simplest example: the
first VM's ID, the first partition, one page, zero tags, the plainest layout::

    from hypothesis import given
    from ffasim import abi, strategies

    @given(strategies.mem_share_descriptors(sender=1))
    def test_share(d):
        ...  # d.data: the bytes; d.fields: the MemTransaction they decode to

The module needs hypothesis (``pip install 'ffasim[hypothesis]'``); ``import ffasim`` does not.
See ``docs/testing.md`` for what each strategy draws and how to feed it to a VM.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

try:
    from hypothesis import strategies as st
except ImportError:
    raise ImportError(
        "ffasim.strategies needs hypothesis; install it with: pip install 'ffasim[hypothesis]'"
    ) from None

from . import abi
from .desc import (
    Composite,
    Constituent,
    DescriptorError,
    MemAccess,
    MemTransaction,
    dump,
    guess_type,
)
from .spmc import default_partitions
from .system import GUEST_RAM_BASE

__all__ = [
    "DEFAULT_PAGES",
    "DEFAULT_PARTITIONS",
    "MEDIATED_FUNCTIONS",
    "Descriptor",
    "Mutant",
    "guest_calls",
    "mem_share_descriptors",
    "mutated",
    "partition_info_uuids",
    "scenarios",
]

DEFAULT_PAGES = tuple(GUEST_RAM_BASE + n * abi.FFA_PAGE_SIZE for n in range(2, 64))
"""Addresses the descriptors share by default: RAM pages 2..63 of a 64-page VM, the pages its
RX (page 0) and TX (page 1) buffers leave free, as the ``ffasim_vm`` fixture maps them."""

DEFAULT_PARTITIONS: tuple[tuple[int, str], ...] = tuple(
    (sp.id, abi.uuid_str(sp.uuid_bytes)) for sp in default_partitions()
)
"""``(id, uuid)`` of ``ffasim.default_partitions()``, what ``System()`` runs by default."""

_TYPE_OF_VERSION = {0: "mem-v1.0", 1: "mem", 2: "mem-v1.2"}


class Descriptor(NamedTuple):
    """A drawn memory transaction descriptor: its bytes, what they decode to, and the FF-A
    version whose layout they use (``MemTransaction.decode(data, version) == fields``)."""

    data: bytes
    fields: MemTransaction
    version: int

    @property
    def type_name(self) -> str:
        """The descriptor type ``ffasim.desc.dump`` and ``ffasim decode --type`` take."""
        return _TYPE_OF_VERSION[self.version & 0xFFFF]


class Mutant(NamedTuple):
    """Bytes one change away from a valid descriptor: ``base`` (a :class:`Descriptor` or the
    bytes drawn), and ``change``, what was done (``"emad_count at 28: 0x1 -> 0x2"``)."""

    data: bytes
    base: Descriptor | bytes
    change: str

    @property
    def version(self) -> int | None:
        """The FF-A version of the base descriptor's layout, when the base is a Descriptor."""
        return self.base.version if isinstance(self.base, Descriptor) else None


# -- memory transaction descriptors -----------------------------------------------------------


def _ranges(addresses: Sequence[int]) -> tuple[Constituent, ...]:
    """``addresses`` (page addresses, in the order drawn) as constituents, each run of
    consecutive pages merged into one range, as a guest driver writes them."""
    out: list[Constituent] = []
    for a in addresses:
        if out and out[-1].address + out[-1].page_count * abi.FFA_PAGE_SIZE == a:
            out[-1] = Constituent(out[-1].address, out[-1].page_count + 1)
        else:
            out.append(Constituent(a, 1))
    return tuple(out)


def _descriptor(
    version: int,
    sender: int,
    receivers: Sequence[int],
    permissions: int,
    pages: Sequence[int],
    tag: int,
    impdef: bytes,
) -> Descriptor:
    emad = 32 if version & 0xFFFF >= 2 else 16
    tx = MemTransaction(
        sender=sender,
        attributes=abi.FFA_NORMAL_MEM_REG_ATTR,
        flags=0,
        handle=0,
        tag=tag,
        receivers=tuple(
            MemAccess(r, permissions, impdef=impdef if emad == 32 else bytes(16)) for r in receivers
        ),
        composite=Composite.of(_ranges(pages)),
    )
    return Descriptor(tx.encode(version), tx.resolved(version), version)


def mem_share_descriptors(
    version: int = abi.FFA_VERSION_1_2,
    *,
    sender: int | Sequence[int] | None = None,
    receivers: Sequence[int] | None = None,
    addresses: Sequence[int] = DEFAULT_PAGES,
    permissions: Sequence[int] = (abi.FFA_MEM_ACC_RW,),
    max_pages: int = 8,
    max_receivers: int = 1,
) -> st.SearchStrategy[Descriptor]:
    """Valid ``FFA_MEM_SHARE`` transaction descriptors in ``version``'s layout.

    Drawn: the sender (``sender``: an ID, IDs to choose from, or ``None`` for any VM ID,
    shrinking to 1), 1 to ``max_receivers`` distinct receivers (default the default
    partitions), a permission from ``permissions`` (default RW, the only one Xen's mediator
    forwards), 1 to ``max_pages`` distinct pages of ``addresses`` in any order (runs of
    consecutive pages become one address range), a tag (shrinking to 0) and, in v1.2 EMADs,
    an implementation-defined value (shrinking to zeros). The attributes are normal
    write-back inner-shareable memory and the flags 0, as a share requires.

    Each value is a :class:`Descriptor`: ``data`` to write in a TX buffer, ``fields`` (the
    :class:`ffasim.desc.MemTransaction` it decodes to) to assert against.
    """
    if not addresses:
        raise ValueError("mem_share_descriptors() needs at least one page address")
    if sender is None:
        senders = st.integers(1, 0x7FFF)
    else:
        senders = st.just(sender) if isinstance(sender, int) else st.sampled_from(tuple(sender))
    pool = tuple(receivers) if receivers is not None else tuple(i for i, _ in DEFAULT_PARTITIONS)
    return st.builds(
        _descriptor,
        version=st.just(version),
        sender=senders,
        receivers=st.lists(st.sampled_from(pool), min_size=1, max_size=max_receivers, unique=True),
        permissions=st.sampled_from(tuple(permissions)),
        pages=st.lists(
            st.sampled_from(tuple(addresses)), min_size=1, max_size=max_pages, unique=True
        ),
        tag=st.integers(0, abi.MASK64),
        impdef=st.binary(min_size=16, max_size=16),
    )


# -- near-valid bytes -------------------------------------------------------------------------

_MUTATIONS = ("field", "truncate", "extend", "flip")
"""Kinds of change, simplest first (hypothesis shrinks toward the first): one field set to
a boundary value, the descriptor cut short, bytes appended, one bit flipped anywhere."""


def _candidates(name: str, value: int, size: int, length: int) -> list[int]:
    """Values worth trying for field ``name`` (now ``value``, ``size`` bytes, in a
    ``length``-byte descriptor): boundaries first, then what its role makes interesting."""
    top = (1 << (8 * size)) - 1
    out = [0, value + 1, value - 1, top, value ^ (1 << (8 * size - 1))]
    leaf = name.rsplit(".", 1)[-1]
    if leaf.endswith("count"):  # counts: one more, twice as many, far too many
        out += [value * 2, value + 0x100, 0x10000]
    if leaf.endswith("offset"):  # offsets: misaligned, past the end, into the header
        out += [value + 8, value + 16, value - 16, length, length + 16, 16]
    if leaf == "address":  # alignment
        out += [value + 0x800, value + abi.FFA_PAGE_SIZE, value - abi.FFA_PAGE_SIZE]
    if leaf in ("sender", "receiver") or leaf.endswith("_id"):  # endpoint IDs
        out += [0x7FFF, 0x8000, 0xFFFF, value ^ 0x8000, value + 1]
    if "reserved" in leaf or leaf in ("flags", "attributes", "permissions"):
        out += [1, 0x80, value | 0x80]
    seen: list[int] = []
    for v in out:
        v &= top
        if v != value and v not in seen:
            seen.append(v)
    return seen


def _int_fields(data: bytes, type_name: str | None) -> list[tuple[int, int, str, int]]:
    """``(offset, size, name, value)`` of every integer field of the decoded descriptor."""
    if type_name is None:
        return []
    try:
        fields = dump(data, type_name).fields
    except DescriptorError:
        return []
    return [
        (f.offset, f.size, f.name, f.value)
        for f in fields
        if isinstance(f.value, int) and 1 <= f.size <= 8 and f.offset + f.size <= len(data)
    ]


@st.composite
def _mutant(draw: st.DrawFn, base_strategy: st.SearchStrategy[Any]) -> Mutant:
    base = draw(base_strategy)
    type_name: str | None
    if isinstance(base, Descriptor):
        data, type_name = base.data, base.type_name
    else:
        data = bytes(base)
        type_name = guess_type(data) if data else None
    fields = _int_fields(data, type_name)
    kinds = [k for k in _MUTATIONS if k != "field" or fields]
    if not data:
        kinds = ["extend"]
    kind = draw(st.sampled_from(kinds))
    out = bytearray(data)
    if kind == "field":
        offset, size, name, value = draw(st.sampled_from(fields))
        choices = _candidates(name, value, size, len(data))
        new = draw(
            st.one_of(st.sampled_from(choices), st.integers(0, (1 << (8 * size)) - 1)).filter(
                lambda v: v != value
            )
        )
        out[offset : offset + size] = new.to_bytes(size, "little")
        change = f"{name} at {offset}: {value:#x} -> {new:#x}"
    elif kind == "truncate":
        cut = draw(st.integers(1, len(data)))
        del out[len(data) - cut :]
        change = f"truncated to {len(out)} of {len(data)} bytes"
    elif kind == "extend":
        extra = draw(st.binary(min_size=1, max_size=64))
        out += extra
        change = f"{len(extra)} bytes appended to {len(data)}"
    else:
        index = draw(st.integers(0, len(data) - 1))
        bit = draw(st.integers(0, 7))
        out[index] ^= 1 << bit
        change = f"bit {bit} of byte {index} flipped"
    return Mutant(bytes(out), base, change)


def mutated(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Mutant]:
    """Near-valid bytes: a value of ``strategy`` (a :class:`Descriptor`, or bytes of any
    descriptor ``ffasim.desc.guess_type`` recognises) with one change: a field set to a value
    its role makes interesting (counts, offsets, lengths, alignment, IDs, reserved bits, or
    any other value), the bytes cut short or extended, or one bit flipped.

    A decoder must answer each :class:`Mutant` with a result or a ``DescriptorError``, and a
    mediator with an FF-A error or success, never anything else. Shrinking leads to the
    simplest change on the simplest descriptor, and ``change`` says what it was.
    """
    return _mutant(strategy)


# -- partition-info UUIDs -------------------------------------------------------------------


def partition_info_uuids(uuids: Sequence[str] | None = None) -> st.SearchStrategy[str]:
    """UUIDs to ask ``FFA_PARTITION_INFO_GET`` about, as strings: the nil UUID (every
    partition) first, then the partitions' own (``uuids``, default the default
    partitions'), then any UUID (usually none). Pass them on with ``abi.uuid_to_regs32``
    (w1..w4) or ``abi.uuid_to_regs64`` (``_GET_REGS``)."""
    nil = "00000000-0000-0000-0000-000000000000"
    own = tuple(u for _, u in DEFAULT_PARTITIONS) if uuids is None else tuple(uuids)
    return st.one_of(st.sampled_from((nil, *own)), st.uuids().map(str))


# -- guest calls ------------------------------------------------------------------------------

MEDIATED_FUNCTIONS: tuple[int, ...] = (
    abi.FFA_VERSION,
    abi.FFA_ID_GET,
    abi.FFA_FEATURES,
    abi.FFA_RXTX_MAP_64,
    abi.FFA_RXTX_MAP_32,
    abi.FFA_RXTX_UNMAP,
    abi.FFA_RX_RELEASE,
    abi.FFA_PARTITION_INFO_GET,
    abi.FFA_PARTITION_INFO_GET_REGS,
    abi.FFA_MSG_SEND_DIRECT_REQ_32,
    abi.FFA_MSG_SEND_DIRECT_REQ_64,
    abi.FFA_MSG_SEND_DIRECT_REQ2,
    abi.FFA_RUN,
    abi.FFA_MSG_SEND2,
    abi.FFA_MEM_SHARE_64,
    abi.FFA_MEM_SHARE_32,
    abi.FFA_MEM_RECLAIM,
    abi.FFA_NOTIFICATION_BIND,
    abi.FFA_NOTIFICATION_UNBIND,
    abi.FFA_NOTIFICATION_SET,
    abi.FFA_NOTIFICATION_GET,
    abi.FFA_NOTIFICATION_INFO_GET_64,
    abi.FFA_NOTIFICATION_INFO_GET_32,
)
"""Every function Xen's mediator handles for a guest (``ffa_handle_call``), simplest first."""


def _word(*simple: int, bits: int = 32) -> st.SearchStrategy[int]:
    """A register value: ``simple`` values first (in order), then 0, 1, all ones, anything."""
    top = (1 << bits) - 1
    return st.one_of(st.sampled_from((*simple, 0, 1, top)), st.integers(0, top))


def _call_args(vm_id: int, sps: Sequence[int], uuids: Sequence[str], pages: int) -> dict[int, Any]:
    """Per function, the strategy of its arguments x1.. (the registers it reads)."""
    ipa = tuple(GUEST_RAM_BASE + n * abi.FFA_PAGE_SIZE for n in (1, 0, 2, 3))
    beyond = GUEST_RAM_BASE + pages * abi.FFA_PAGE_SIZE
    addr = _word(*ipa, beyond, GUEST_RAM_BASE + 8, bits=64)
    to_sp = _word(*(abi.pack_target(vm_id, sp) for sp in sps), abi.pack_target(vm_id, vm_id))
    from_sp = _word(*(abi.pack_target(sp, vm_id) for sp in sps))
    payload = st.integers(0, abi.MASK64)
    bitmap = _word(bits=64)
    uuid32 = partition_info_uuids(uuids).map(abi.uuid_to_regs32)
    uuid64 = partition_info_uuids(uuids).map(abi.uuid_to_regs64)
    length = _word(48, 80, 96, 112, 4096, 4097)
    version = _word(
        abi.FFA_VERSION_1_2, abi.FFA_VERSION_1_1, abi.FFA_VERSION_1_0, abi.FFA_VERSION_1_3, 0x20000
    )
    features = _word(*MEDIATED_FUNCTIONS, abi.FFA_FEAT_NOTIF_PEND_INTR, abi.FFA_MEM_LEND_64)
    none: st.SearchStrategy[tuple[int, ...]] = st.just(())
    notif = st.tuples(from_sp, _word(), bitmap, bitmap)
    return {
        abi.FFA_VERSION: st.tuples(version),
        abi.FFA_ID_GET: none,
        abi.FFA_FEATURES: st.tuples(features, _word()),
        abi.FFA_RXTX_MAP_64: st.tuples(addr, addr, _word(2, 0x40)),
        abi.FFA_RXTX_MAP_32: st.tuples(addr, addr, _word(2, 0x40)),
        abi.FFA_RXTX_UNMAP: st.tuples(_word(vm_id << 16)),
        abi.FFA_RX_RELEASE: st.tuples(_word(vm_id)),
        abi.FFA_PARTITION_INFO_GET: st.builds(
            lambda u, flags: (*u, flags), uuid32, _word(abi.FFA_PARTITION_INFO_GET_COUNT_FLAG)
        ),
        abi.FFA_PARTITION_INFO_GET_REGS: st.builds(
            lambda u, start: (*u, start), uuid64, _word(2, bits=64)
        ),
        abi.FFA_MSG_SEND_DIRECT_REQ_32: st.tuples(to_sp, _word(), *[payload] * 5),
        abi.FFA_MSG_SEND_DIRECT_REQ_64: st.tuples(to_sp, _word(), *[payload] * 5),
        abi.FFA_MSG_SEND_DIRECT_REQ2: st.builds(
            lambda t, u, p: (t, *u, *p), to_sp, uuid64, st.tuples(*[payload] * 14)
        ),
        abi.FFA_RUN: st.tuples(_word(*(sp << 16 for sp in sps))),
        abi.FFA_MSG_SEND2: st.tuples(_word(vm_id << 16), _word(2)),
        abi.FFA_MEM_SHARE_64: st.tuples(length, length, _word(bits=64), _word()),
        abi.FFA_MEM_SHARE_32: st.tuples(length, length, _word(), _word()),
        abi.FFA_MEM_RECLAIM: st.tuples(_word(), _word(), _word()),
        abi.FFA_NOTIFICATION_BIND: notif,
        abi.FFA_NOTIFICATION_UNBIND: notif,
        abi.FFA_NOTIFICATION_SET: st.tuples(to_sp, _word(2), bitmap, bitmap),
        abi.FFA_NOTIFICATION_GET: st.tuples(_word(vm_id, (1 << 16) | vm_id), _word(0xF)),
        abi.FFA_NOTIFICATION_INFO_GET_64: none,
        abi.FFA_NOTIFICATION_INFO_GET_32: none,
    }


def guest_calls(
    functions: Sequence[int] = MEDIATED_FUNCTIONS,
    *,
    vm_id: int = 1,
    partitions: Sequence[tuple[int, str]] = DEFAULT_PARTITIONS,
    pages: int = 64,
) -> st.SearchStrategy[tuple[int, ...]]:
    """Register sets ``(x0, x1, ...)`` a guest may issue: ``vm.smc(*regs)``.

    x0 is one of ``functions`` (default every function Xen mediates, simplest first); the
    arguments are the registers that function reads, each drawn from values that reach deep
    into the handler (this VM's ID ``vm_id`` and the ``partitions`` in sender/receiver words,
    IPAs of the RAM of a ``pages``-page VM, descriptor lengths, their UUIDs), then from
    boundaries, then from anything.
    """
    table = _call_args(vm_id, [i for i, _ in partitions], [u for _, u in partitions], pages)
    unknown = [f for f in functions if f not in table]
    if unknown:
        raise ValueError(
            f"guest_calls() has no argument model for {', '.join(abi.name(f) for f in unknown)}"
        )
    return st.sampled_from(tuple(functions)).flatmap(
        lambda fid: table[fid].map(lambda args: (fid, *args))
    )


# -- scenarios --------------------------------------------------------------------------------

_STEP_KINDS = ("id_get", "partition_info", "direct_req", "share")
"""What a drawn thread does, simplest first."""

_TX_FREE = "direct_req"
"""What a share becomes on any vCPU but a VM's first: the vCPUs of a VM write descriptors in
the one TX buffer they share, which the guest itself must serialise (Linux's driver holds a
mutex), so two vCPUs sharing at once would be a bug of the scenario, not of the mediator."""


_OR_BUSY = ["success", "BUSY"]


def _thread_steps(kind: str, thread: int, index: int, value: int) -> list[Any]:
    """The steps of one drawn action of thread ``thread``; ``value`` (1..255) varies the
    payload or the fill. Expectations accept every answer a correct mediator may give in
    some interleaving: BUSY when another vCPU of the VM holds its RX buffer (partition
    information), or when another vCPU's request holds the partition's one execution context
    (a direct request to 0x8001, the memory service's sum)."""
    from .scenario import step

    if kind == "id_get":
        return [step("id_get", id="self")]
    if kind == "partition_info":
        ids = [i for i, _ in DEFAULT_PARTITIONS]
        return [step("partition_info", includes=ids, expect=_OR_BUSY)]
    if kind == "direct_req":
        return [
            step("direct_req", dst=0x8001, payload=[value, index], echo=True, expect=_OR_BUSY)
        ]
    name = f"t{thread}s{index}"
    page = 2 + thread * 8 + index  # pages of their own for each thread and step
    return [
        step("share", receiver=0x8002, pages=[page], fill=value, name=name),
        step("mem_op", handle=name, request="sum", sum=value * abi.FFA_PAGE_SIZE, expect=_OR_BUSY),
        step("reclaim", handle=name),
    ]


def _scenario(vms: int, plans: Sequence[tuple[int, Sequence[tuple[str, int]]]]) -> Any:
    from .scenario import Scenario, ThreadSpec, VmSpec, step

    vcpus = [0] * vms
    threads = []
    for t, (vm, actions) in enumerate(plans):
        vm %= vms
        steps = [
            s
            for i, (kind, v) in enumerate(actions)
            for s in _thread_steps(_TX_FREE if kind == "share" and vcpus[vm] else kind, t, i, v)
        ]
        threads.append(ThreadSpec(tuple(steps), vm=vm, vcpu=vcpus[vm]))
        vcpus[vm] += 1
    setup = [step(op, vm=i) for i in range(vms) for op in ("negotiate", "map")]
    return Scenario(
        "drawn",
        "a scenario drawn by ffasim.strategies.scenarios()",
        vms=[VmSpec(vcpus=max(n, 1)) for n in vcpus],
        setup=setup,
        threads=threads,
    )


def scenarios(
    *, max_vms: int = 2, max_threads: int = 3, max_steps: int = 3
) -> st.SearchStrategy[Any]:
    """Small concurrent scenarios (``ffasim.scenario.Scenario`` objects) for the default
    partitions: 1 to ``max_vms`` VMs, each negotiating v1.2 and mapping its buffers in the
    setup, then 1 to ``max_threads`` vCPU threads of 1 to ``max_steps`` actions each:
    ``FFA_ID_GET``, partition discovery, an echoed direct request to 0x8001, or (on a VM's
    first vCPU only: its vCPUs share one TX buffer) a page shared with 0x8002, summed by it
    and reclaimed. Every answer a correct mediator may give under
    some interleaving is expected, so ``ffasim check`` on ``reference`` finds nothing, and a
    finding elsewhere is a defect. Shrinks toward one VM, one thread, one ``FFA_ID_GET``."""
    action = st.tuples(st.sampled_from(_STEP_KINDS), st.integers(1, 255))
    plan = st.tuples(st.integers(0, max_vms - 1), st.lists(action, min_size=1, max_size=max_steps))
    return st.builds(
        _scenario,
        st.integers(1, max_vms),
        st.lists(plan, min_size=1, max_size=max_threads),
    )
