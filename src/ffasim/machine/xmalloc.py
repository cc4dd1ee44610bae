"""Xen's small-object allocator and global page mappings: where they fail.

The model keeps Xen's small objects (``struct ffa_ctx``, ``struct ffa_shm_mem``, the subscriber
arrays...) as Python values, so only the outcome of each ``xmalloc``-family call matters: it
returns memory or NULL. These helpers are the one place that outcome is decided, so that an
allocation fails inside the allocator, as in Xen, and never through a fault site sprinkled in the
code that calls it. Each call is a fault site ``alloc:<call>@<caller>``, named after the C
function called and the C function calling it (``alloc:xzalloc@ffa_domain_init``); the checker
may make it fail (choice ``1``). Page allocations are sites of :meth:`Heap.alloc_page` under the
same naming (``alloc:alloc_xenheap_pages@ffa_rxtx_spmc_init``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .machine import Machine
    from .memory import Frame

_FAIL = (1,)


def alloc_site(call: str, caller: str) -> str:
    """The fault-site name of ``call`` made by ``caller`` (without the ``alloc:`` family)."""
    return f"{call}@{caller}"


def xmalloc(machine: Machine, call: str, caller: str) -> bool:
    """Whether Xen's ``call`` (``xzalloc``, ``xzalloc_array``, ``xzalloc_flex_struct``,
    ``xzalloc_bytes``...) made by ``caller`` returns memory; False is NULL."""
    return machine.sink.fault(f"alloc:{call}@{caller}", _FAIL) is None


def map_domain_page_global(machine: Machine, frame: Frame, caller: str) -> int | None:
    """``__map_domain_page_global(pg)`` made by ``caller``: the address Xen reaches ``frame``
    at (its physical address: the model has no virtual addresses), or None when the global
    mapping area is exhausted."""
    if machine.sink.fault(f"alloc:__map_domain_page_global@{caller}", _FAIL) is not None:
        return None
    return frame.pa
