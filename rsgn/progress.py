"""Progress bars for long commands (tqdm, on stderr, shown only on a terminal)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], *, total: int | None, desc: str, show: bool = True) -> Iterator[T]:
    """``items`` with a tqdm bar named ``desc`` on stderr when ``show`` and stderr is a
    terminal (tqdm's ``disable=None``); nothing is printed otherwise (pipes, logs, tests)."""
    if not show:
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, total=total, desc=desc, file=sys.stderr, disable=None, leave=False)


class Bar:
    """A manual progress bar (``update()`` per finished item) for work that finishes out of
    order (sweep units); tqdm on a terminal, silent otherwise. Use as a context manager."""

    def __init__(self, total: int, desc: str, show: bool = True) -> None:
        self._bar = None
        if show:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, file=sys.stderr, disable=None, leave=False)

    def update(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
