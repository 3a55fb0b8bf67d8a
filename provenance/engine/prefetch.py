"""Run an iterator ahead in a background thread, a bounded number of items in advance.

Used to overlap CPU work (parsing, hashing) with I/O waits (the database) that release the GIL.
The consumer sees items in order, exceptions from the producer where the item would have been,
and leaving the `with` block early stops the producer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_DONE = object()


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Prefetch(Generic[T]):
    def __init__(self, source: Iterable[T], depth: int = 2) -> None:
        self._source = source
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="prefetch", daemon=True)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        items = iter(self._source)
        try:
            for item in items:
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(_Raised(exc))
            return
        finally:
            # A generator stopped early is closed here, in its own thread, so that what it
            # holds open (a pool of processes) ends now rather than when it is collected.
            close = getattr(items, "close", None)
            if close is not None:
                close()
        self._put(_DONE)

    def __enter__(self) -> Iterator[T]:
        self._thread.start()
        return self._items()

    def _items(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item  # type: ignore[misc]

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
