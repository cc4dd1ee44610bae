"""The host's SMC trap at EL2. Mirrors ``handle_host_smc`` and the default forwarding of
``arch/arm64/kvm/hyp/nvhe/hyp-main.c`` (and ``__kvm_hyp_host_forward_smc`` of host.S).

Every SMC the host executes traps to EL2 (HCR_EL2.TSC). The PSCI relay gets the first look (not
modelled: the model's host makes no PSCI calls), then the FF-A proxy; whatever neither handles
goes to EL3 unchanged, x0..x17 in and x0..x17 back, and EL3 sees the caller as FF-A ID 0. The
forwarding takes no lock: a passed-through FFA_RX_RELEASE releases the hypervisor's RX at EL3
whatever EL2 is doing with it.
"""

from __future__ import annotations

from ..machine import Machine, SmcConduit
from .arm_ffa import ARM_SMCCC_CALL_HINTS
from .ffa import Ffa, KvmCpuContext, cpu_reg


class Pkvm(Ffa):
    """The hypervisor: hyp-main.c on top of ffa.c on top of mem_protect.c. Variant ``head``.

    ``conduit`` carries EL2's own SMCs, ``forward`` the host's passed-through ones (its trace
    caller is ``"host"``, so a trace tells the two apart; the SPMC sees ID 0 for both).
    """

    def __init__(self, machine: Machine, conduit: SmcConduit, forward: SmcConduit) -> None:
        super().__init__(machine, conduit)
        self.forward = forward

    def handle_host_smc(self, host_ctxt: KvmCpuContext) -> None:
        """The host's SMC in ``host_ctxt``: handled by the proxy or forwarded; the result is
        left in ``host_ctxt`` (then the SMC instruction is skipped)."""
        func_id = cpu_reg(host_ctxt, 0) & ~ARM_SMCCC_CALL_HINTS
        handled = self.kvm_host_ffa_handler(host_ctxt, func_id & 0xFFFFFFFF)
        if not handled:
            self.default_host_smc_handler(host_ctxt)

    def default_host_smc_handler(self, host_ctxt: KvmCpuContext) -> None:
        self.kvm_hyp_host_forward_smc(host_ctxt)

    def kvm_hyp_host_forward_smc(self, host_ctxt: KvmCpuContext) -> None:
        """``__kvm_hyp_host_forward_smc``: x0..x17 to EL3, x0..x17 back."""
        host_ctxt.regs[:] = self.forward.smc(*host_ctxt.regs)
