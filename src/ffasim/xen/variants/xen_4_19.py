"""Variant ``xen-4.19``: Xen's FF-A mediator as released in RELEASE-4.19.0 (tee/ffa at
b490f470f5; 4.19.1 to 4.19.6 did not change it).

4.19.0 is 4.20.0 without cf15d85707 and 1a20f862f3 (firmware discovery: no ABI bitmap yet, eight
mandatory features instead), da07df5558 (version negotiation), 2f9f240a5e (fine-grained call
support), 8a932b91aa and 2833aa172f (partition info), 6dceb1378d (RX/TX forwarding and RX
ownership), 42b6f47132 and df8a0eec1c (ffa_msg.c, SEND2), e6794b683b (per-VM notification
state), a1a1e2b7dc and 39c45caef2 (BIND/UNBIND), so the class derives from ``xen-4.20`` and
undoes those. There is no ABI bitmap: the model's probe marks every ABI 4.19 calls without
checking, so that the gates 4.20 added stay open. Its defects, each found by a command of the
README:

- ``ffa_probe`` refuses any SPMC whose FF-A version is above 1.1 (da07df5558 fixed the
  negotiation): against the default SPMC (FF-A 1.2, as Hafnium v2.14) no VM gets FF-A;
- FFA_NOTIFICATION_BIND and UNBIND pass the bitmap halves swapped (39c45caef2): a VM binding
  notification 0 binds notification 32, so its partition cannot signal it;
- FFA_RXTX_MAP checks ``tx_pg`` where it means ``rx_pg``: an RX address outside the guest's RAM
  reaches ``put_page(NULL)``, a hypervisor crash;
- FFA_RXTX_MAP and UNMAP take no lock (as up to 4.21).

Not in 4.19: FFA_MSG_SEND2 (NOT_SUPPORTED), VM-to-VM.
"""

from __future__ import annotations

from ... import abi
from ...machine import (
    Frame,
    HypervisorPanic,
    Machine,
    P2MType,
    SmcConduit,
    get_page_from_gfn,
    put_page,
    spin_lock,
    spin_trylock,
    spin_unlock,
)
from ...machine.xmalloc import alloc_site, map_domain_page_global, xmalloc
from ..ffa_private import (
    ENODEV,
    ENOMEM,
    ERANGE,
    FFA_ABI_BITNUM,
    FFA_ADDRESS_RANGE,
    FFA_MAX_RXTX_PAGE_COUNT,
    FFA_MEM_REGION,
    FFA_PAGE_SIZE,
    FFA_PARTITION_INFO_1_0,
    FFA_PARTITION_INFO_1_1,
    FFA_RXTX_PAGE_COUNT,
    GUEST_FFA_NOTIF_PEND_INTR_ID,
    GUEST_FFA_SCHEDULE_RECV_INTR_ID,
    Domain,
    FfaCtx,
    FfaShmMem,
    MappedBuf,
    Regs,
    ffa_get_vm_id,
    ffa_set_regs,
    ffa_set_regs_error,
    ffa_set_regs_success,
    ffa_uuid_set,
)
from ..ffa_rxtx import rxtx_unmap_pages, xenheap_buf
from ..ffa_shm import FfaMemTransactionInt
from .seed_v1 import SEED_DIRECT_PASS
from .xen_4_20 import Xen420Ffa
from .xen_4_21 import LockedGuestVers

# The features ffa_probe() requires (check_mandatory_feature), in its order.
MANDATORY_FEATURES: tuple[int, ...] = (
    abi.FFA_PARTITION_INFO_GET,
    abi.FFA_RX_RELEASE,
    abi.FFA_RXTX_MAP_64,
    abi.FFA_MEM_SHARE_64,
    abi.FFA_RXTX_UNMAP,
    abi.FFA_MEM_SHARE_32,
    abi.FFA_MEM_RECLAIM,
    abi.FFA_MSG_SEND_DIRECT_REQ_32,
)
# Every firmware ABI 4.19 calls, checked or not: what the model's bitmap holds for it.
USED_WITHOUT_BITMAP: tuple[int, ...] = (
    *MANDATORY_FEATURES,
    abi.FFA_VERSION,
    abi.FFA_FEATURES,
    abi.FFA_MSG_SEND_DIRECT_REQ_64,
    abi.FFA_NOTIFICATION_BITMAP_CREATE,
    abi.FFA_NOTIFICATION_BITMAP_DESTROY,
    abi.FFA_NOTIFICATION_GET,
    abi.FFA_NOTIFICATION_INFO_GET_64,
)


class Xen419Ffa(Xen420Ffa):
    """RELEASE-4.19.0 (see the module docstring)."""

    variant = "xen-4.19"
    ffa_fw_abi_needed = ()  # cf15d85707 introduced the list

    def __init__(self, machine: Machine, conduit: SmcConduit, vm_to_vm: bool = False) -> None:
        super().__init__(machine, conduit, vm_to_vm)
        # ctx->notif.enabled (e6794b683b replaced it by the global fw_notif_enabled).
        self.ctx_notif_enabled: set[FfaCtx] = set()

    # -- ffa.c ------------------------------------------------------------------------------------
    def ffa_features(self, fid: int) -> int:
        return self.ffa_simple_call(abi.FFA_FEATURES, fid, 0, 0, 0)

    def check_mandatory_feature(self, fid: int) -> bool:
        ret = self.ffa_features(fid)
        if ret:
            self.printk(f"mandatory feature id {fid:#x} missing: error {ret}")
        return not ret

    def handle_version(self, d: Domain, regs: Regs) -> Regs:
        """Before da07df5558: below 1.1 the guest gets 1.0, anything else 1.1 (whatever the
        major), set without a lock, and that is what the guest is answered."""
        ctx = d.tee
        assert ctx is not None
        vers = regs[1] & abi.MASK32
        vers = abi.FFA_VERSION_1_0 if vers < abi.FFA_VERSION_1_1 else abi.FFA_VERSION_1_1
        ctx.guest_vers.set(vers)
        return ffa_set_regs(vers)

    def handle_msg_send_direct_req(self, d: Domain, regs: Regs, fid: int) -> Regs:
        """Before 42b6f47132 moved it to ffa_msg.c and 2f9f240a5e/2833aa172f added the checks:
        no firmware check, any destination (the SPMC checks it)."""
        mask = abi.MASK64 if abi.is_64bit_fid(fid) else abi.MASK32
        src_dst = regs[1] & abi.MASK32
        if (src_dst >> 16) != ffa_get_vm_id(d):
            return ffa_set_regs(abi.FFA_ERROR, 0, abi.FFA_RET_INVALID_PARAMETERS & mask)
        resp = self.smc(fid, src_dst, *(r & mask for r in regs[2:8]))
        if resp[0] not in SEED_DIRECT_PASS:
            return ffa_set_regs(abi.FFA_ERROR, src_dst & mask, abi.FFA_RET_ABORTED & mask)
        return ffa_set_regs(resp[0], *(r & mask for r in resp[1:8]))

    def handle_features(self, d: Domain, regs: Regs) -> Regs:
        """Before e6794b683b: the notification features only for a VM with notifications
        enabled; before df8a0eec1c: no FFA_MSG_SEND2."""
        ctx = d.tee
        a1 = regs[1] & abi.MASK32
        if any(regs[2:8]):
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        enabled = ctx in self.ctx_notif_enabled
        if a1 in (
            abi.FFA_ERROR,
            abi.FFA_VERSION,
            abi.FFA_SUCCESS_32,
            abi.FFA_SUCCESS_64,
            abi.FFA_FEATURES,
            abi.FFA_ID_GET,
            abi.FFA_RX_RELEASE,
            abi.FFA_RXTX_UNMAP,
            abi.FFA_MEM_RECLAIM,
            abi.FFA_PARTITION_INFO_GET,
            abi.FFA_MSG_SEND_DIRECT_REQ_32,
            abi.FFA_MSG_SEND_DIRECT_REQ_64,
            abi.FFA_MEM_SHARE_64,
            abi.FFA_MEM_SHARE_32,
            abi.FFA_RXTX_MAP_64,
            abi.FFA_RXTX_MAP_32,
        ):
            return ffa_set_regs_success(0, 0)
        if a1 == abi.FFA_FEAT_NOTIF_PEND_INTR and enabled:
            return ffa_set_regs_success(GUEST_FFA_NOTIF_PEND_INTR_ID, 0)
        if a1 == abi.FFA_FEAT_SCHEDULE_RECV_INTR and enabled:
            return ffa_set_regs_success(GUEST_FFA_SCHEDULE_RECV_INTR_ID, 0)
        if enabled and a1 in (
            abi.FFA_NOTIFICATION_BIND,
            abi.FFA_NOTIFICATION_UNBIND,
            abi.FFA_NOTIFICATION_GET,
            abi.FFA_NOTIFICATION_SET,
            abi.FFA_NOTIFICATION_INFO_GET_32,
            abi.FFA_NOTIFICATION_INFO_GET_64,
        ):
            return ffa_set_regs_success(0, 0)
        return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)

    def ffa_handle_call(self, d: Domain, regs: Regs) -> Regs | None:
        """4.19's dispatcher: no FFA_MSG_SEND2; partition info answered from the count and size
        ``ffa_handle_partition_info_get`` returns; RX_RELEASE by ``ffa_handle_rx_release``."""
        ctx = d.tee
        if ctx is None:
            return None
        fid = regs[0] & abi.MASK32
        e: int
        match fid:
            case abi.FFA_VERSION:
                return self.handle_version(d, regs)
            case abi.FFA_ID_GET:
                return ffa_set_regs_success(ffa_get_vm_id(d), 0)
            case abi.FFA_FEATURES:
                return self.handle_features(d, regs)
            case abi.FFA_RXTX_MAP_32 | abi.FFA_RXTX_MAP_64:
                e = self.ffa_handle_rxtx_map(d, fid, regs[1], regs[2], regs[3])
            case abi.FFA_RXTX_UNMAP:
                e = self.ffa_handle_rxtx_unmap(d)
            case abi.FFA_PARTITION_INFO_GET:
                return self.ffa_handle_partition_info_get(d, regs)
            case abi.FFA_RX_RELEASE:
                e = self.ffa_handle_rx_release(d)
            case abi.FFA_MSG_SEND_DIRECT_REQ_32 | abi.FFA_MSG_SEND_DIRECT_REQ_64:
                return self.handle_msg_send_direct_req(d, regs, fid)
            case abi.FFA_MEM_SHARE_32 | abi.FFA_MEM_SHARE_64:
                return self.ffa_handle_mem_share(d, regs)
            case abi.FFA_MEM_RECLAIM:
                e = self.ffa_handle_mem_reclaim(
                    d, abi.make_handle(regs[1], regs[2]), regs[3] & abi.MASK32
                )
            case abi.FFA_NOTIFICATION_BIND:
                e = self.ffa_handle_notification_bind(d, regs)
            case abi.FFA_NOTIFICATION_UNBIND:
                e = self.ffa_handle_notification_unbind(d, regs)
            case abi.FFA_NOTIFICATION_INFO_GET_32 | abi.FFA_NOTIFICATION_INFO_GET_64:
                return self.ffa_handle_notification_info_get(d, regs)
            case abi.FFA_NOTIFICATION_GET:
                return self.ffa_handle_notification_get(d, regs)
            case abi.FFA_NOTIFICATION_SET:
                e = self.ffa_handle_notification_set(d, regs)
            case _:
                self.printk(f"unhandled fid {fid:#x}")
                return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        if e:
            return ffa_set_regs_error(e)
        return ffa_set_regs_success(0, 0)

    def ffa_domain_init(self, d: Domain) -> int:
        """Before 2833aa172f: only the last domain ID is refused (UINT16_MAX)."""
        if not self.ffa_fw_version:  # ffa_version
            return -ENODEV
        if d.domain_id >= 0xFFFF:
            return -ERANGE
        if not xmalloc(self.machine, "xzalloc", "ffa_domain_init"):
            return -ENOMEM
        ctx = FfaCtx(self.machine, d)
        ctx.guest_vers = LockedGuestVers(  # type: ignore[assignment]
            self.machine, f"d{d.domain_id}.ffa.guest_vers", 0, ctx.lock
        )
        d.tee = ctx
        ctx.ffa_id = ffa_get_vm_id(d)
        ctx.num_vcpus = d.max_vcpus
        ret = self.ffa_partinfo_domain_init(d)
        if ret:
            return ret
        return self.ffa_notif_domain_init(d)

    def ffa_probe(self) -> bool:
        """Before da07df5558: the SPMC's answer must lie between 1.1 and Xen's own 1.1, so a
        1.2 SPMC is refused; then eight mandatory features (no ABI bitmap, cf15d85707)."""
        if self.smccc_ver < 0x10002:
            return False
        ok, vers = self.ffa_get_version()
        if not ok:
            return False
        if vers < abi.FFA_VERSION_1_1 or vers > self.FFA_MY_VERSION:
            self.printk(f"Incompatible version {vers:#x} found")
            return False
        self.printk(f"ARM FF-A Mediator version {abi.version_str(self.FFA_MY_VERSION)}")
        if not all(self.check_mandatory_feature(fid) for fid in MANDATORY_FEATURES):
            return False
        for fid in USED_WITHOUT_BITMAP:
            self.ffa_fw_abi_supported.add(FFA_ABI_BITNUM(fid))
        if not self.ffa_rxtx_init():
            return False
        self.ffa_fw_version = vers  # ffa_version
        if not self.ffa_partinfo_init():
            self.ffa_rxtx_destroy()  # err_rxtx_destroy:
            self.ffa_fw_version = 0
            return False
        self.ffa_notif_init()
        self.probed = True
        return True

    # -- ffa_rxtx.c -------------------------------------------------------------------------------
    def ffa_handle_rxtx_map(
        self, d: Domain, fid: int, tx_addr: int, rx_addr: int, page_count: int
    ) -> int:
        """Before 6dceb1378d: no forwarding to the SPMC, and the RX page lookup is checked by
        testing ``tx_pg``: an RX address with no RAM behind it goes on with ``rx_pg`` NULL to
        ``put_page(rx_pg)``. No lock (a3075e2fda)."""
        ctx = d.tee
        assert ctx is not None
        page_count &= abi.MASK32
        if not abi.is_64bit_fid(fid):
            tx_addr &= abi.MASK32
            rx_addr &= abi.MASK32
        if page_count > FFA_MAX_RXTX_PAGE_COUNT:
            return abi.FFA_RET_INVALID_PARAMETERS
        if ctx.rx.get() is not None:
            return abi.FFA_RET_DENIED
        e = get_page_from_gfn(d.p2m, tx_addr >> 12)
        if e is None:
            return abi.FFA_RET_INVALID_PARAMETERS
        tx_pg, t = e
        goto = "err_put_tx_pg" if t is not P2MType.ram_rw else ""
        rx_pg: Frame | None = None
        tx = None
        if not goto:
            e = get_page_from_gfn(d.p2m, rx_addr >> 12)
            rx_pg, t = e if e is not None else (None, P2MType.invalid)
            # "if ( !tx_pg )": the RX lookup's failure goes unnoticed; its type decides.
            if t is not P2MType.ram_rw:
                goto = "err_put_rx_pg"
        if not goto:
            assert rx_pg is not None
            tx_pa = map_domain_page_global(self.machine, tx_pg, "ffa_handle_rxtx_map")
            if tx_pa is None:
                goto = "err_put_rx_pg"
            else:
                tx = MappedBuf(self.machine, tx_pa, page_count * FFA_PAGE_SIZE, "TX")
        if not goto:
            assert rx_pg is not None and tx is not None
            rx_pa = map_domain_page_global(self.machine, rx_pg, "ffa_handle_rxtx_map")
            if rx_pa is None:
                goto = "err_unmap_tx"
            else:
                ctx.rx.set(MappedBuf(self.machine, rx_pa, page_count * FFA_PAGE_SIZE, "RX"))
                ctx.tx.set(tx)
                ctx.rx_pg.set(rx_pg)
                ctx.tx_pg.set(tx_pg)
                ctx.page_count = page_count
                ctx.rx_is_free.set(True)
                return abi.FFA_RET_OK
        if goto == "err_unmap_tx":
            assert tx is not None
            tx.mapped = False
            goto = "err_put_rx_pg"
        if goto == "err_put_rx_pg":
            if rx_pg is None:
                raise HypervisorPanic("NULL pointer dereference: put_page(NULL) for rx_pg")
            put_page(rx_pg)
        put_page(tx_pg)  # err_put_tx_pg:
        return abi.FFA_RET_INVALID_PARAMETERS

    def rxtx_unmap(self, d: Domain, teardown: bool) -> int:
        """4.19's ``rxtx_unmap(ctx)``: drop both mappings and pages; no SPMC, no lock."""
        ctx = d.tee
        assert ctx is not None
        rxtx_unmap_pages(ctx)
        return abi.FFA_RET_OK

    def ffa_handle_rxtx_unmap(self, d: Domain) -> int:
        ctx = d.tee
        assert ctx is not None
        if ctx.rx.get() is None:
            return abi.FFA_RET_INVALID_PARAMETERS
        return self.rxtx_unmap(d, False)

    def ffa_handle_rx_release(self, d: Domain) -> int:
        """Before 6dceb1378d: a trylock (BUSY), and the SPMC is never told."""
        ctx = d.tee
        assert ctx is not None
        if not spin_trylock(ctx.rx_lock):
            return abi.FFA_RET_BUSY
        ret = abi.FFA_RET_DENIED
        if ctx.page_count and not ctx.rx_is_free.get():
            ret = abi.FFA_RET_OK
            ctx.rx_is_free.set(True)
        spin_unlock(ctx.rx_lock)  # out:
        return ret

    def ffa_rxtx_domain_destroy(self, d: Domain) -> None:
        ctx = d.tee
        assert ctx is not None
        if ctx.rx.get() is not None:
            self.rxtx_unmap(d, True)

    def ffa_rxtx_init(self) -> bool:
        """Before cf15d85707: no check that the SPMC has RXTX_MAP_64 (it is mandatory)."""
        heap = self.machine.heap
        site = alloc_site("alloc_xenheap_pages", "ffa_rxtx_init")
        rx = heap.alloc_page("xen", site=site, tag="ffa_rx")
        self.ffa_rx.value = rx
        if rx is None:
            return False
        tx = heap.alloc_page("xen", site=site, tag="ffa_tx")
        self.ffa_tx.value = tx
        if tx is not None:
            e = self.ffa_rxtx_map(tx.pa, rx.pa, FFA_RXTX_PAGE_COUNT)
            if not e:
                return True
            self.printk(f"Failed to map rxtx: error {e}")
        self.ffa_rxtx_destroy()  # err:
        return False

    # -- ffa_partinfo.c ---------------------------------------------------------------------------
    def ffa_handle_partition_info_get(self, d: Domain, regs: Regs) -> Regs:
        """Before 8a932b91aa: the guest's RX under a trylock of ``rx_lock`` (BUSY) and
        ``ffa_rx_buffer_lock``; the SPMC's entries copied whole (``count * fpi_size`` bytes,
        no bit-15 filter), or for a 1.0 guest field by field; the guest then owns its RX."""
        ctx = d.tee
        assert ctx is not None
        w5 = regs[5] & abi.MASK32
        uuid = ffa_uuid_set(regs[1], regs[2], regs[3], regs[4])
        count = fpi_size = 0
        if w5 == abi.FFA_PARTITION_INFO_GET_COUNT_FLAG and (
            ctx.guest_vers.read() == abi.FFA_VERSION_1_1
        ):
            ret, count, fpi_size = self.ffa_partition_info_get(uuid, w5)
        elif w5:
            ret = abi.FFA_RET_INVALID_PARAMETERS
        elif self.ffa_rx.value is None:
            ret = abi.FFA_RET_DENIED
        elif not spin_trylock(ctx.rx_lock):
            ret = abi.FFA_RET_BUSY
        else:
            ret = abi.FFA_RET_DENIED
            if ctx.page_count and ctx.rx_is_free.get():
                spin_lock(self.ffa_rx_buffer_lock)
                ret, count, fpi_size = self.ffa_partition_info_get(uuid, 0)
                if not ret:  # we now own Xen's RX: release it once copied
                    frame = self.ffa_rx.get()
                    assert frame is not None
                    src = xenheap_buf(self.machine, frame, "ffa_rx")
                    dst = ctx.rx.get() or MappedBuf.null(self.machine, 0, "ctx->rx")
                    if ctx.guest_vers.read() == abi.FFA_VERSION_1_0:
                        size = FFA_PARTITION_INFO_1_0.size
                        if ctx.page_count * FFA_PAGE_SIZE < count * size:
                            ret = abi.FFA_RET_NO_MEMORY
                        else:
                            for n in range(count):
                                s1 = n * FFA_PARTITION_INFO_1_1.size
                                dst.store(n * size, src.load(s1, 2))
                                dst.store(n * size + 2, src.load(s1 + 2, 2))
                                dst.store(n * size + 4, src.load(s1 + 4, 4))
                    else:
                        sz = count * fpi_size
                        if ctx.page_count * FFA_PAGE_SIZE < sz:
                            ret = abi.FFA_RET_NO_MEMORY
                        elif sz:
                            dst.store(0, src.load(0, sz))
                    if not ret:
                        ctx.rx_is_free.set(False)
                    self.ffa_hyp_rx_release()  # out_rx_release: (4.19 calls it ffa_rx_release)
                spin_unlock(self.ffa_rx_buffer_lock)  # out_rx_buf_unlock:
            spin_unlock(ctx.rx_lock)  # out:
        if ret:
            return ffa_set_regs_error(ret)
        return ffa_set_regs_success(count, fpi_size)

    def init_subscribers(self, buf: MappedBuf, count: int, fpi_size: int) -> bool:
        """Before 2833aa172f: the entries are read as an array of 24-byte entries whatever
        ``fpi_size`` the SPMC gave, and no bit-15 filter."""
        created = destroyed = 0
        for n in range(count):
            props = buf.u32(n * FFA_PARTITION_INFO_1_1.size + 4)
            created += bool(props & abi.FFA_PART_PROP_NOTIF_CREATED)
            destroyed += bool(props & abi.FFA_PART_PROP_NOTIF_DESTROYED)
        ok_created = not created or xmalloc(self.machine, "xzalloc_array", "init_subscribers")
        ok_destroyed = not destroyed or xmalloc(self.machine, "xzalloc_array", "init_subscribers")
        if not ok_created or not ok_destroyed:
            self.printk("Failed to allocate subscription lists")
            self.uninit_subscribers()
            return False
        self.subscr_vm_created = []
        self.subscr_vm_destroyed = []
        for n in range(count):
            off = n * FFA_PARTITION_INFO_1_1.size
            if buf.u32(off + 4) & abi.FFA_PART_PROP_NOTIF_CREATED:
                self.subscr_vm_created.append(buf.u16(off))
            if buf.u32(off + 4) & abi.FFA_PART_PROP_NOTIF_DESTROYED:
                self.subscr_vm_destroyed.append(buf.u16(off))
        return True

    def ffa_partinfo_init(self) -> bool:
        """Before 2f9f240a5e: no gating; RX released whatever happened."""
        ret = False
        e, count, fpi_size = self.ffa_partition_info_get(abi.NIL_UUID, 0)
        if e:
            self.printk(f"Failed to get list of SPs: {e}")
        elif count >= 0xFFFF:
            self.printk(f"Impossible number of SPs: {count}")
        else:
            frame = self.ffa_rx.value
            assert frame is not None
            ret = self.init_subscribers(xenheap_buf(self.machine, frame, "ffa_rx"), count, fpi_size)
        self.ffa_hyp_rx_release()  # out: ffa_rx_release()
        return ret

    # -- ffa_shm.c --------------------------------------------------------------------------------
    def ffa_handle_mem_share(self, d: Domain, regs: Regs) -> Regs:
        """Before 2833aa172f: no check that the receiver is an SP (the SPMC sees whatever
        receiver the guest wrote), read after the page count, when the share is built."""
        tot_len = regs[1] & abi.MASK32
        frag_len = regs[2] & abi.MASK32
        addr = regs[3]
        ctx = d.tee
        assert ctx is not None
        shm: FfaShmMem | None = None
        handle = 0
        ret = abi.FFA_RET_DENIED
        if addr:
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        if frag_len > tot_len:
            return ffa_set_regs_error(abi.FFA_RET_INVALID_PARAMETERS)
        if frag_len != tot_len:
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        if not spin_trylock(ctx.tx_lock):
            return ffa_set_regs_error(abi.FFA_RET_BUSY)
        goto = ""
        trans = FfaMemTransactionInt()
        region_offs = 0
        tx = ctx.tx.get()
        if frag_len > ctx.page_count * FFA_PAGE_SIZE:
            goto = "out_unlock"
        if not goto:
            ret, trans = self.read_mem_transaction(
                ctx.guest_vers.read(), tx or MappedBuf.null(self.machine, 0, "ctx->tx"), frag_len
            )
            if ret:
                goto = "out_unlock"
        if not goto:
            if trans.mem_reg_attr != abi.FFA_NORMAL_MEM_REG_ATTR or trans.mem_access_count != 1:
                ret, goto = abi.FFA_RET_NOT_SUPPORTED, "out_unlock"
            elif trans.sender_id != ffa_get_vm_id(d):
                ret, goto = abi.FFA_RET_INVALID_PARAMETERS, "out_unlock"
            elif trans.mem_access_offs + trans.mem_access_size > frag_len:
                goto = "out_unlock"
        if not goto:
            assert tx is not None
            mem_access = trans.mem_access_offs
            if tx.u8(mem_access + 2) != abi.FFA_MEM_ACC_RW:
                ret, goto = abi.FFA_RET_NOT_SUPPORTED, "out_unlock"
            else:
                region_offs = tx.u32(mem_access + 4)
                if FFA_MEM_REGION.size + region_offs > frag_len:
                    ret, goto = abi.FFA_RET_NOT_SUPPORTED, "out_unlock"
        if not goto:
            assert tx is not None
            range_count = tx.u32(region_offs + 4)
            page_count = tx.u32(region_offs)
            if not page_count:
                ret, goto = abi.FFA_RET_INVALID_PARAMETERS, "out_unlock"
            else:
                shm = self.alloc_ffa_shm_mem(d, page_count)
                if shm is None:
                    ret, goto = abi.FFA_RET_NO_MEMORY, "out_unlock"
                else:
                    shm.sender_id = trans.sender_id
                    shm.ep_id = tx.u16(trans.mem_access_offs)
                    if (
                        FFA_MEM_REGION.size + region_offs + range_count * FFA_ADDRESS_RANGE.size
                        > frag_len
                    ):
                        ret = abi.FFA_RET_INVALID_PARAMETERS
                    else:
                        ret = self.get_shm_pages(
                            d, shm, tx, region_offs + FFA_MEM_REGION.size, range_count
                        )
                    if not ret:
                        ret = self.share_shm(shm, abi.FFA_VERSION_1_1)
                    if not ret:
                        spin_lock(ctx.lock)
                        ctx.shm_list.set([*ctx.shm_list.get(), shm])
                        spin_unlock(ctx.lock)
                        handle = shm.handle
        if ret and goto != "out_unlock":
            self.free_ffa_shm_mem(d, shm)
        spin_unlock(ctx.tx_lock)  # out_unlock:
        if ret == 0:
            return ffa_set_regs_success(abi.handle_lo(handle), abi.handle_hi(handle))
        return ffa_set_regs_error(ret)

    # -- ffa_notif.c ------------------------------------------------------------------------------
    def ffa_handle_notification_bind(self, d: Domain, regs: Regs) -> int:
        """Before 39c45caef2: the bitmap halves go to the SPMC swapped (w3 = high, w4 = low)."""
        src_dst = regs[1] & abi.MASK32
        flags = regs[2] & abi.MASK32
        bitmap_lo = regs[3] & abi.MASK32
        bitmap_hi = regs[4] & abi.MASK32
        if not self.fw_notif_enabled:
            return abi.FFA_RET_NOT_SUPPORTED
        if (src_dst & 0xFFFF) != ffa_get_vm_id(d):
            return abi.FFA_RET_INVALID_PARAMETERS
        if flags:
            return abi.FFA_RET_DENIED
        return self.ffa_simple_call(abi.FFA_NOTIFICATION_BIND, src_dst, flags, bitmap_hi, bitmap_lo)

    def ffa_handle_notification_unbind(self, d: Domain, regs: Regs) -> int:
        """Before 39c45caef2: the bitmap halves go to the SPMC swapped."""
        src_dst = regs[1] & abi.MASK32
        bitmap_lo = regs[3] & abi.MASK32
        bitmap_hi = regs[4] & abi.MASK32
        if not self.fw_notif_enabled:
            return abi.FFA_RET_NOT_SUPPORTED
        if (src_dst & 0xFFFF) != ffa_get_vm_id(d):
            return abi.FFA_RET_INVALID_PARAMETERS
        return self.ffa_simple_call(abi.FFA_NOTIFICATION_UNBIND, src_dst, 0, bitmap_hi, bitmap_lo)

    def ffa_notif_domain_init(self, d: Domain) -> int:
        """Before e6794b683b: the VM's own ``notif.enabled`` records a created bitmap."""
        ctx = d.tee
        assert ctx is not None
        if not self.fw_notif_enabled:
            return 0
        if self.ffa_notification_bitmap_create(ffa_get_vm_id(d), d.max_vcpus):
            return -ENOMEM
        self.ctx_notif_enabled.add(ctx)
        return 0

    def ffa_notif_domain_destroy(self, d: Domain) -> None:
        ctx = d.tee
        assert ctx is not None
        if ctx in self.ctx_notif_enabled:
            self.ffa_notification_bitmap_destroy(ffa_get_vm_id(d))
            self.ctx_notif_enabled.discard(ctx)
