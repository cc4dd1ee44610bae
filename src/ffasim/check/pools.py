"""Where shards run: in this process, in local worker processes, or on a Ray cluster.

A *pool* takes picklable work (a top-level function and its argument), runs it somewhere and
hands back the result; the coordinator (``parallel.py``) decides what to run and in which order
to merge. Three backends, one interface:

- ``inline``: in this process, one task at a time, the argument pickled and unpickled first,
  so that what a worker would see is what runs (tests, and the baseline of the benchmark);
- ``local``: a :class:`~concurrent.futures.ProcessPoolExecutor` of spawned processes (no fork:
  nothing of the parent's greenlets or threads is inherited; each worker imports ffasim and
  rebuilds programs from their description). Workers ignore SIGINT: Ctrl-C is the
  coordinator's to handle, so that it can keep what was found;
- ``ray``: Ray tasks, on the cluster at ``ray_address`` (or ``RAY_ADDRESS``), else on a Ray
  that this process starts on this machine with ``num_cpus=workers``.

:func:`run_shards` is the small generic entry point (``ffasim hunt`` farms programs out with
it): a list of zero-argument picklable callables in, their results out in the same order.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import pickle
import signal
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BACKENDS: tuple[str, ...] = ("local", "ray")
"""Backends ``--backend`` accepts (``inline`` is for tests and benchmarks)."""

RAY_MISSING = "the ray backend needs Ray: pip install 'ffasim[ray]'"


class BackendError(ValueError):
    """A backend that cannot be used (unknown, Ray missing or unreachable); one line."""


class Pool:
    """Runs ``fn(arg)`` somewhere. Handles are opaque; :meth:`wait` returns those done."""

    workers = 1

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> Any:
        raise NotImplementedError

    def wait(self, handles: Sequence[Any], timeout: float | None) -> list[Any]:
        raise NotImplementedError

    def result(self, handle: Any) -> Any:
        raise NotImplementedError

    def cancel(self, handle: Any) -> bool:
        """Drop ``handle`` if it has not started (a started task runs to its end); whether
        it was dropped."""
        return False

    def close(self) -> None:
        """Stop the workers (tasks not started are dropped)."""


class _Inline:
    __slots__ = ("arg", "fn", "value")

    def __init__(self, fn: Callable[[Any], Any], arg: bytes) -> None:
        self.fn = fn
        self.arg = arg
        self.value: Any = None


class InlinePool(Pool):
    """Runs each task in this process when it is waited for, in submission order."""

    def __init__(self) -> None:
        self._done: set[int] = set()

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> Any:
        return _Inline(fn, pickle.dumps(arg))

    def wait(self, handles: Sequence[Any], timeout: float | None) -> list[Any]:
        done = [h for h in handles if id(h) in self._done]
        if done or not handles:
            return done
        h = handles[0]
        h.value = h.fn(pickle.loads(h.arg))
        self._done.add(id(h))
        return [h]

    def result(self, handle: Any) -> Any:
        self._done.discard(id(handle))
        return handle.value

    def cancel(self, handle: Any) -> bool:
        return id(handle) not in self._done


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class LocalPool(Pool):
    """``workers`` spawned processes on this machine."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._ex = cf.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_ignore_sigint,
        )

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> Any:
        return self._ex.submit(fn, arg)

    def wait(self, handles: Sequence[Any], timeout: float | None) -> list[Any]:
        done, _ = cf.wait(handles, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return [h for h in handles if h in done]

    def result(self, handle: Any) -> Any:
        return handle.result()

    def cancel(self, handle: Any) -> bool:
        return bool(handle.cancel())

    def close(self) -> None:
        self._ex.shutdown(wait=True, cancel_futures=True)


def _ray_call(fn: Callable[[Any], Any], arg: Any) -> Any:
    return fn(arg)


class RayPool(Pool):
    """Ray tasks: on the cluster at ``address`` (``None``: ``RAY_ADDRESS``, else a Ray started
    here with ``workers`` CPUs, no dashboard, worker logs not forwarded)."""

    def __init__(self, workers: int, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise BackendError(RAY_MISSING) from None
        self._ray = ray
        self.workers = workers
        address = address or os.environ.get("RAY_ADDRESS") or None
        self._started = False
        if address:
            _reachable(address)
        if not ray.is_initialized():
            # Workers import the ffasim this process runs (a checkout, not only an install).
            src = str(Path(__file__).resolve().parents[2])
            path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
            env = {"env_vars": {"PYTHONPATH": path}}
            try:
                if address:
                    ray.init(address=address, runtime_env=env, log_to_driver=False)
                else:
                    ray.init(
                        num_cpus=workers,
                        include_dashboard=False,
                        log_to_driver=False,
                        logging_level=logging.ERROR,
                        runtime_env=env,
                    )
            except Exception as e:  # ConnectionError, RuntimeError...: one line for the user
                where = f"at {address}" if address else "on this machine"
                raise BackendError(f"cannot start or join Ray {where}: {e}") from None
            self._started = True
        self._remote = ray.remote(_ray_call)

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> Any:
        return self._remote.remote(fn, arg)

    def wait(self, handles: Sequence[Any], timeout: float | None) -> list[Any]:
        done, _ = self._ray.wait(list(handles), num_returns=1, timeout=timeout)
        return done

    def result(self, handle: Any) -> Any:
        return self._ray.get(handle)

    def cancel(self, handle: Any) -> bool:
        return False  # a Ray task may have started: it ends soon (a task is small)

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()


def _reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, with one line, when a Ray cluster's ``host:port`` does not answer
    (Ray itself retries for minutes). ``auto`` and addresses without a port are Ray's."""
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise BackendError(f"cannot reach Ray at {address}: {e.strerror or e}") from None


def open_pool(workers: int, backend: str = "local", ray_address: str | None = None) -> Pool:
    """A pool of ``workers`` on ``backend`` (``inline``, ``local`` or ``ray``)."""
    if workers < 1:
        raise BackendError(f"--workers must be at least 1, not {workers}")
    if backend == "inline":
        return InlinePool()
    if backend == "local":
        return LocalPool(workers)
    if backend == "ray":
        return RayPool(workers, ray_address)
    raise BackendError(f"unknown backend {backend!r} (expected one of: {', '.join(BACKENDS)})")


def _call(task: Callable[[], Any]) -> Any:
    return task()


def run_shards(
    tasks: Sequence[Callable[[], Any]],
    *,
    workers: int = 1,
    backend: str = "local",
    ray_address: str | None = None,
    pool: Pool | None = None,
) -> list[Any]:
    """Run each picklable zero-argument callable of ``tasks`` on ``workers`` of ``backend``
    (or on ``pool``) and return their results in the order of ``tasks``, whatever the order
    they finish in. The first task that raises stops the others and raises here."""
    own = pool is None
    p = open_pool(workers, backend, ray_address) if pool is None else pool
    try:
        handles = [p.submit(_call, t) for t in tasks]
        left = list(handles)
        while left:
            for h in p.wait(left, None):
                left.remove(h)
                p.result(h)  # raise early
        return [p.result(h) for h in handles]
    except BaseException:
        for h in handles if "handles" in locals() else ():
            p.cancel(h)
        raise
    finally:
        if own:
            p.close()
