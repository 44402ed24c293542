"""Helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from tui.cli import CliError

if TYPE_CHECKING:
    from backend.adapter import Backend

T = TypeVar("T")


def run_with_backend(args: argparse.Namespace, work: Callable[[Backend], Awaitable[T]]) -> T:
    """Start the demo emulator if asked, open the adapter, run `work(backend)`."""
    from backend.errors import BackendError
    from tui.runtime import demo_emulator, open_backend, resolve_settings

    with demo_emulator(args) as emulator:
        settings = resolve_settings(args, emulator)

        async def main() -> T:
            async with open_backend(settings) as backend:
                return await work(backend)

        try:
            return run_async(main())
        except BackendError as exc:
            raise CliError(str(exc), exit_code=1) from None


def run_async(coro: Awaitable[T]) -> T:
    """asyncio.run(coro), its result handed back beside the main task rather than as its
    result: on the way out asyncio.run calls signal.getsignal(SIGINT), which in Python 3.11
    formats the repr of the handler, a partial holding the main task, and with it the repr
    of the task's result (about 1.5 s of CPU for a 10,000-VM inventory)."""
    result: list[T] = []

    async def main() -> None:
        result.append(await coro)

    asyncio.run(main())
    return result[0]


def print_json(obj: Any, *, native: bool = False) -> None:
    """Indented JSON on stdout (backend/jsonout.py: orjson, ASCII only)."""
    from backend.jsonout import dumps_bytes

    with _stdout_bytes() as write:
        write(dumps_bytes(obj, native=native))


def print_json_listing(doc: dict[str, Any], items: Iterable[Any], *, native: bool = False) -> None:
    """``print_json`` of ``doc`` whose first key, an empty list in ``doc``, holds ``items``:
    made a batch at a time (``backend.jsonout.write_listing``), never the whole document's
    dicts at once, and written once every batch is made: a failure while making them
    writes nothing, not half a document."""
    from backend.jsonout import write_listing

    parts: list[bytes | memoryview] = []
    write_listing(parts.append, doc, items, native=native)
    with _stdout_bytes() as write:
        for part in parts:
            write(part)


@contextlib.contextmanager
def _stdout_bytes() -> Iterator[Callable[[bytes | memoryview], object]]:
    """A writer of ASCII bytes to stdout, then one newline. Not the text and its newline
    joined: a copy of the whole document (10,000 VMs: 48 MB, some 50 ms of CPU)."""
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        yield lambda data: sys.stdout.write(str(data, "ascii"))
        sys.stdout.write("\n")
        return
    sys.stdout.flush()
    yield buffer.write
    buffer.write(b"\n")
    buffer.flush()


VM_HELP = "the VM (its name, or its ARM id when the name is not unique)"


def add_vm_option(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    p.add_argument("--vm", metavar="NAME", required=required, help=VM_HELP)


def output_format(args: argparse.Namespace, allowed: tuple[str, ...], default: str = "table") -> str:
    fmt = args.format or default
    if fmt not in allowed:
        raise CliError(f"--format {fmt} is not available here: use {' or '.join(allowed)}")
    return fmt


def check_subscriptions(args: argparse.Namespace, errors: Any) -> None:
    """An unknown --subscription is bad input, not a partial result."""
    unknown = [e.subscription_id for e in errors if e.code == "SubscriptionNotFound"]
    if unknown:
        raise CliError(f"unknown subscription {', '.join(unknown)}: it is not visible to the signed-in identity")


def _instance_views(text: str) -> int | None:
    if text.strip().lower() == "all":
        return None
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of VMs or 'all'")
    return int(text)


def add_instance_views_option(p: argparse.ArgumentParser) -> None:
    from backend.settings import DEFAULT_INSTANCE_VIEWS

    p.add_argument(
        "--instance-views",
        metavar="N|all",
        type=_instance_views,
        default=DEFAULT_INSTANCE_VIEWS,
        help=f"read the instance view (VM agent, planned maintenance, fault domains) of at most N VMs, one request each (default {DEFAULT_INSTANCE_VIEWS}); the rest are 'not checked'",
    )
