"""VM and vCPU locks, the normal-world VM table, and the order the SPMC takes its locks in.

Mirrors Hafnium v2.14's ``src/vm.c`` (``vm_lock``, ``vm_lock_both_in_order``, ``vm_unlock``),
``src/vcpu.c`` (``vcpu_lock``, ``vcpu_lock_both``, ``vcpu_unlock``), ``src/ffa/spmc/vm.c``
(``nwd_vms_lock``, ``ffa_vm_find_locked``, ``ffa_vm_find_locked_create``, ``ffa_vm_nwd_alloc``,
``ffa_vm_nwd_free``), ``api_ffa_get_vm_vcpu`` and ``lock_other_world``
(``src/arch/aarch64/hypervisor/other_world.c``). An :class:`~.mailbox.Endpoint` is Hafnium's
``struct vm``; a :class:`Vcpu` its ``struct vcpu``.

Lock order. Hafnium's ``src/api.c`` documents ``vm::lock -> vcpu::lock -> mm_stage1_lock ->
dlog sl``; it says nothing of its two table locks, which its code takes this way (``nwd_vms_lock``
around ``vm_lock`` in ``ffa_vm_nwd_alloc``; the share-states lock inside the sender's or
borrower's ``vm_lock`` in ``ffa_memory_send``/``_retrieve``; ``mm_stage1_lock`` inside it to
clear memory). The SPMC's locks are therefore taken in this order:

    spmc.nwd_vms_lock -> spmc.vmN.lock -> spmc.vmN.vcpuI.lock -> spmc.share_states_lock
        -> spmc.mm_stage1_lock

Two locks of one kind are taken lowest first (``sl_lock_both`` compares addresses; Hafnium's
``vms[]`` array is in ID order, and the model orders VMs by FF-A ID and vCPUs by VM ID, then
index). The SPMC takes two VM locks only through ``vm_lock_both_in_order`` (Hafnium's
``vm_lock_both`` serves its hypervisor build alone), two vCPU locks through ``vcpu_lock_both``.

Hafnium v2.14 leaves its own order in two places, and the model mirrors both (a model is only
worth its keep where it is wrong exactly where Hafnium is):

- ``api_ffa_msg_send2`` holds the sender's VM lock while ``ffa_vm_find_locked`` takes the
  receiver's (and ``nwd_vms_lock`` first when the receiver is a VM), whichever ID is lower: a
  VM and a partition sending indirect messages to each other at once can deadlock;
- ``api_ffa_rxtx_map`` / ``api_ffa_rxtx_unmap`` of a normal-world endpoint hold
  ``mm_stage1_lock`` while ``lock_other_world`` takes VM 0's lock (dropping and retaking the
  owner's, ``vm_lock_both_in_order``).

:data:`LOCK_ORDER_EXCEPTIONS` names them, so that a test can tell them from new departures.

What each lock guards in the model: a VM's lock its mailbox (RX/TX buffers and their
ownership), notifications, FF-A version, and for a partition the pages it retrieved; VM 0's
lock also the NS memory view (``spmc.ns_excluded``); a vCPU's lock its state and the origin
of its direct request; ``nwd_vms_lock`` the table of normal-world VMs; the share-states lock
the memory-sharing table (``spmc.shares``, which pages are shared or donated);
``mm_stage1_lock`` the SPMC's own mappings (its grants on RX/TX buffers, pages it clears).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..machine import Machine, spin_lock, spin_unlock
from ..machine.events import MEM

if TYPE_CHECKING:
    from .mailbox import Endpoint
    from .spmc import Spmc

HYP_ID = 0  # HF_OTHER_WORLD_ID / HF_HYPERVISOR_VM_ID

SPMC_STATE = "spmc"
"""Kind of the accesses the SPMC declares to the machine's sink (``sink.access``) for state
that one lock does not cover: its keys are :data:`NWD_VMS`, :data:`SRI` and :data:`VERSION`
pairs."""
NWD_VMS = "nwd_vms"
"""The normal-world VM table: freed under the VM's lock only (``ffa_vm_nwd_free``), read
under ``nwd_vms_lock``."""
SRI = "sri_pending"
"""``spmc.sri_pending``: set by whoever raises the SRI, cleared by FFA_NOTIFICATION_INFO_GET."""
VERSION = "version"
"""An endpoint's FF-A version (key ``(VERSION, id)``): changed by FFA_VERSION under the VM's
lock, read without it where Hafnium reads it so (:func:`version_unlocked`)."""

LOCK_ORDER = (
    "spmc.nwd_vms_lock",
    "spmc.vm*.lock",
    "spmc.vm*.vcpu*.lock",
    "spmc.share_states_lock",
    "spmc.mm_stage1_lock",
)
"""The documented order, outermost first (``*``: one lock per VM or vCPU, lowest first)."""

LOCK_ORDER_EXCEPTIONS = (
    ("FFA_MSG_SEND2", "the receiver's VM lock (and nwd_vms_lock) under the sender's"),
    ("FFA_RXTX_MAP_64", "VM 0's lock (and the owner's again) under mm_stage1_lock"),
    ("FFA_RXTX_UNMAP", "VM 0's lock (and the owner's again) under mm_stage1_lock"),
)
"""Where Hafnium v2.14 itself takes a lock against :data:`LOCK_ORDER` (see the module note)."""

# vCPU states (Hafnium ``enum vcpu_state``, the three the model uses): a partition's
# execution context WAITING takes a direct request, RUNNING runs its handler, BLOCKED waits
# for the answer to a direct request it sent. The hypervisor's vCPUs run the normal world.
WAITING = "WAITING"
RUNNING = "RUNNING"
BLOCKED = "BLOCKED"


class Vcpu:
    """Hafnium ``struct vcpu``: one execution context of a partition, or the hypervisor's
    vCPU on one CPU. ``state`` and ``origin`` (the sender of the direct request it handles,
    Hafnium ``direct_request_origin``) are read and written under ``lock`` only."""

    __slots__ = ("index", "lock", "origin", "state", "vm_id")

    def __init__(self, machine: Machine, vm_id: int, index: int, state: str) -> None:
        self.vm_id = vm_id
        self.index = index
        self.lock = machine.spinlock(f"spmc.vm{vm_id:x}.vcpu{index}.lock")
        self.state = state
        self.origin: int | None = None

    def __repr__(self) -> str:
        return f"<vcpu {self.index} of 0x{self.vm_id:x} {self.state}>"


# -- which vCPU runs -----------------------------------------------------------------------------

_CPU_OF: dict[str, int] = {}


def cpu_index(machine: Machine) -> int:
    """The CPU the running context is on: vCPU ``i`` of any VM (``"d0v1"``) makes its calls
    on CPU ``i``; every other context (``boot``, ``toolstack``, ``sri``...) on CPU 0.

    A modelling choice: the machine has contexts, not CPUs. It makes a partition with several
    execution contexts (pinned to CPUs, as FF-A requires of MP partitions that take direct
    requests) take the requests of a VM's vCPU ``i`` on its context ``i``."""
    ctx = machine.current
    cpu = _CPU_OF.get(ctx)
    if cpu is None:
        head, sep, tail = ctx.rpartition("v")
        cpu = int(tail) if sep and head and tail.isdigit() else 0
        _CPU_OF[ctx] = cpu
    return cpu


def api_ffa_get_vm_vcpu(vm: Endpoint, cpu: int) -> Vcpu | None:
    """Hafnium ``api_ffa_get_vm_vcpu``: a UP partition's only vCPU, an MP partition's vCPU of
    CPU ``cpu`` (``None`` when it has none)."""
    vcpus = vm.vcpus
    if len(vcpus) == 1:
        return vcpus[0]
    return vcpus[cpu] if cpu < len(vcpus) else None


def current_vcpu(spmc: Spmc, ep: Endpoint, cpu: int) -> Vcpu:
    """The vCPU making the call: the hypervisor's vCPU of CPU ``cpu`` (created on first use),
    or the execution context the calling partition runs on."""
    vcpus = ep.vcpus
    if ep.id == HYP_ID:
        while len(vcpus) <= cpu:
            vcpus.append(Vcpu(spmc.machine, HYP_ID, len(vcpus), RUNNING))
        return vcpus[cpu]
    vcpu = api_ffa_get_vm_vcpu(ep, cpu)
    return vcpu if vcpu is not None else vcpus[0]


def version_unlocked(spmc: Spmc, ep: Endpoint) -> int:
    """``ep``'s FF-A version read without its lock, as Hafnium reads it in FFA_FEATURES, a
    direct request's checks and FFA_MSG_WAIT; declared to the checker."""
    spmc.machine.sink.access(SPMC_STATE, (VERSION, ep.id), False)
    return ep.version


# -- VM and vCPU locks ---------------------------------------------------------------------------


def vm_lock(vm: Endpoint) -> None:
    """Hafnium ``vm_lock``."""
    spin_lock(vm.lock)


def vm_unlock(vm: Endpoint) -> None:
    """Hafnium ``vm_unlock``."""
    spin_unlock(vm.lock)


def vm_lock_both_in_order(locked: Endpoint, vm2: Endpoint) -> None:
    """Hafnium ``vm_lock_both_in_order``: lock ``vm2`` while ``locked`` is held, keeping the
    order (when ``vm2`` comes first, ``locked`` is dropped and taken again after it)."""
    if locked.id < vm2.id:
        spin_lock(vm2.lock)
    else:
        spin_unlock(locked.lock)
        spin_lock(vm2.lock)
        spin_lock(locked.lock)


def lock_other_world(spmc: Spmc, owner: Endpoint) -> Endpoint:
    """Hafnium ``lock_other_world``: with ``owner`` locked, lock VM 0 (the hypervisor, whose
    page tables are the NS memory view) too; returns VM 0."""
    other = spmc.endpoints[HYP_ID]
    if owner is not other:
        vm_lock_both_in_order(owner, other)
    return other


def unlock_other_world(owner: Endpoint, other: Endpoint) -> None:
    """Hafnium ``unlock_other_world``."""
    if owner is not other:
        spin_unlock(other.lock)


def vcpu_lock(vcpu: Vcpu) -> None:
    """Hafnium ``vcpu_lock``."""
    spin_lock(vcpu.lock)


def vcpu_unlock(vcpu: Vcpu) -> None:
    """Hafnium ``vcpu_unlock``."""
    spin_unlock(vcpu.lock)


def vcpu_lock_both(vcpu1: Vcpu, vcpu2: Vcpu) -> None:
    """Hafnium ``vcpu_lock_both``: both vCPUs' locks, lowest (VM ID, index) first."""
    if (vcpu1.vm_id, vcpu1.index) < (vcpu2.vm_id, vcpu2.index):
        spin_lock(vcpu1.lock)
        spin_lock(vcpu2.lock)
    else:
        spin_lock(vcpu2.lock)
        spin_lock(vcpu1.lock)


# -- the normal-world VM table (src/ffa/spmc/vm.c) -----------------------------------------------


def ffa_vm_find_locked(spmc: Spmc, vm_id: int) -> Endpoint | None:
    """Hafnium ``ffa_vm_find_locked``: the endpoint ``vm_id`` with its lock held, or None.

    The hypervisor and the partitions are found directly; a normal-world VM under
    ``nwd_vms_lock``, whose slot is locked before the table lock is dropped."""
    if vm_id & 0x8000 or vm_id == HYP_ID:
        ep = spmc.endpoints.get(vm_id)  # partitions and VM 0: fixed at boot
        if ep is not None:
            spin_lock(ep.lock)
        return ep
    table = spmc.nwd_vms_lock
    spin_lock(table)
    spmc.machine.sink.access(SPMC_STATE, NWD_VMS, False)
    ep = spmc.endpoints.get(vm_id)
    if ep is not None:
        spin_lock(ep.lock)
    spin_unlock(table)
    return ep


def ffa_vm_find_locked_create(spmc: Spmc, vm_id: int) -> Endpoint | None:
    """Hafnium ``ffa_vm_find_locked_create``: as :func:`ffa_vm_find_locked`, allocating a slot
    for a normal-world VM seen for the first time (None when the table is full)."""
    if vm_id & 0x8000 or vm_id == HYP_ID:
        return ffa_vm_find_locked(spmc, vm_id)
    return ffa_vm_nwd_alloc(spmc, vm_id)


def ffa_vm_nwd_alloc(spmc: Spmc, vm_id: int) -> Endpoint | None:
    """Hafnium ``ffa_vm_nwd_alloc``: VM ``vm_id``'s slot, locked (the first free slot for a
    VM seen for the first time); None when every slot is taken."""
    table = spmc.nwd_vms_lock
    spin_lock(table)
    spmc.machine.sink.access(SPMC_STATE, NWD_VMS, True)
    ep = spmc.endpoints.get(vm_id)
    if ep is None:
        ep = spmc.vm_slot_take(vm_id)
    if ep is not None:
        spin_lock(ep.lock)
    spin_unlock(table)
    return ep


def ffa_vm_nwd_free(spmc: Spmc, vm: Endpoint) -> None:
    """Hafnium ``ffa_vm_nwd_free``, with ``vm`` locked: forget a normal-world VM that has
    neither buffers nor notifications. As in Hafnium, the table lock is not taken."""
    if vm.id == HYP_ID or vm.id & 0x8000:
        return
    if not vm.mailbox.rx_frames and not vm.notif.enabled:
        spmc.machine.sink.access(SPMC_STATE, NWD_VMS, True)
        spmc.vm_slot_free(vm)


def declare_pages(spmc: Spmc, mfns: Iterable[int], write: bool) -> None:
    """Tell the checker that this step reads (or changes) whether the pages ``mfns`` are
    shared, lent, donated or mapped: state a partition's memory check reads with no lock.
    Declared as the frame's own state (``MEM``), which ``grant``/``revoke`` change too; the
    hot paths (``memory.py``, ``SecurePartition._check``) make the same calls inline."""
    access = spmc.machine.sink.access
    for mfn in mfns:
        access(MEM, mfn, write)
