"""Xen's FF-A mediator, mirroring ``xen/arch/arm/tee/ffa*.c`` file for file.

| Xen file | module | class |
|---|---|---|
| ``ffa_private.h`` | ``ffa_private`` | ``FfaBase``, ``FfaCtx``, ``Domain``, ``MappedBuf`` |
| ``ffa_rxtx.c`` | ``ffa_rxtx`` | ``FfaRxtx`` |
| ``ffa_partinfo.c`` | ``ffa_partinfo`` | ``FfaPartinfo`` |
| ``ffa_shm.c`` | ``ffa_shm`` | ``FfaShm`` |
| ``ffa_notif.c`` | ``ffa_notif`` | ``FfaNotif`` |
| ``ffa_msg.c`` | ``ffa_msg`` | ``FfaMsg`` |
| ``ffa.c`` | ``ffa`` | ``Ffa`` (the whole mediator: upstream HEAD, c447b7308b) |

The mediator is one object; each class adds one C file's functions, under their Xen names, as
methods (``mediator.ffa_handle_rxtx_map(d, ...)``), so a call across files picks up a variant's
override (``variants/``: ``reference``, the seed and the released versions).
"""

from .ffa import Ffa as Ffa
from .ffa_private import Domain as Domain
from .ffa_private import FfaCtx as FfaCtx
from .variants import describe as describe
from .variants import get as get
from .variants import names as names
