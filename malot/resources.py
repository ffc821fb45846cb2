"""One base for objects used with ``async with``: entering runs :meth:`AsyncResource.open`, leaving runs
:meth:`AsyncResource.aclose`, so a class writes only what opening and closing do (and the ``__aenter__`` /
``__aexit__`` pair is written once, here).

::

    class Pool(AsyncResource):
        async def open(self) -> None:
            ...  # start processes

        async def aclose(self) -> None:
            ...  # stop them
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["AsyncResource"]


class AsyncResource:
    """Base of malot's async context managers: ``async with x`` awaits ``x.open()``, then ``x.aclose()`` on exit.

    If :meth:`open` fails, :meth:`aclose` runs before the error propagates, so a half-opened resource is released.
    """

    async def open(self) -> None:
        """Acquire what the object needs (nothing by default: many resources start lazily)."""

    async def aclose(self) -> None:
        """Release what the object holds (nothing by default)."""

    async def __aenter__(self) -> Self:
        try:
            await self.open()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
