"""pKVM's FF-A proxy, mirroring Linux's ``arch/arm64/kvm/hyp/nvhe/`` file for file.

| Linux file | module | class |
|---|---|---|
| ``mem_protect.c`` (FF-A part, page states) | ``mem_protect`` | ``MemProtect`` |
| ``ffa.c`` | ``ffa`` | ``Ffa`` |
| ``hyp-main.c`` (the host's SMC trap) | ``hyp_main`` | ``Pkvm`` (the whole hypervisor, ``head``) |
| ``include/linux/arm_ffa.h``, ``asm/kvm_pkvm.h`` | ``arm_ffa`` | (constants, layouts) |

The hypervisor is one object whose class chain follows the files, so a variant (``variants/``,
one class per Linux release) overrides any C function under its name. ``host.py`` is the host
kernel as a caller, ``system.py`` assembles a machine, the SPMC, the proxy and the host, and
``programs.py`` builds the checker programs of the historical defects D1-D12.
"""

from .hyp_main import Pkvm as Pkvm
from .system import PkvmInitError as PkvmInitError
from .system import PkvmSystem as PkvmSystem
from .variants import DEFECTS as DEFECTS
from .variants import defects as defects
from .variants import describe as describe
from .variants import get as get
from .variants import names as names
