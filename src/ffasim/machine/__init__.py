"""The simulated platform: memory, allocators, stage-2, locks, atomics, the SMC conduit.

Everything the checker must see passes through :class:`EventSink` (``events.py``).
"""

from .conduit import FAULT_CODES as FAULT_CODES
from .conduit import SmcConduit as SmcConduit
from .errors import ASSERT as ASSERT
from .errors import AccessFault as AccessFault
from .errors import Deadlock as Deadlock
from .errors import FirmwarePanic as FirmwarePanic
from .errors import HypervisorPanic as HypervisorPanic
from .errors import ModelError as ModelError
from .events import EventSink as EventSink
from .events import RecordingSink as RecordingSink
from .locks import Atomic as Atomic
from .locks import Guarded as Guarded
from .locks import RwLock as RwLock
from .locks import Shared as Shared
from .locks import Spinlock as Spinlock
from .locks import read_lock as read_lock
from .locks import read_unlock as read_unlock
from .locks import rw_is_locked as rw_is_locked
from .locks import spin_is_locked as spin_is_locked
from .locks import spin_lock as spin_lock
from .locks import spin_trylock as spin_trylock
from .locks import spin_unlock as spin_unlock
from .locks import write_lock as write_lock
from .locks import write_unlock as write_unlock
from .machine import Machine as Machine
from .machine import Thread as Thread
from .memory import PAGE_SHIFT as PAGE_SHIFT
from .memory import PAGE_SIZE as PAGE_SIZE
from .memory import Frame as Frame
from .memory import Heap as Heap
from .memory import PhysMem as PhysMem
from .memory import get_page as get_page
from .memory import grant as grant
from .memory import put_page as put_page
from .memory import revoke as revoke
from .p2m import P2M as P2M
from .p2m import P2MType as P2MType
from .p2m import get_page_from_gfn as get_page_from_gfn
