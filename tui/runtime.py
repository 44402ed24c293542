"""From parsed CLI options to a running backend (with the demo emulator when asked)."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from backend.settings import ConnectionSettings, SettingsError
from tui.errors import CliError

if TYPE_CHECKING:
    from backend.adapter import Backend


def load_settings_config():
    """The user's config file and AZTRIAGE_* variables (backend/config.py); a bad one is a CliError.
    Its default subscriptions apply to real Azure, not to the demo estate."""
    from backend.config import ConfigError, load_config

    try:
        return load_config()
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def attaches(args: argparse.Namespace) -> bool:
    """--demo with --arm-endpoint: the demo on an emulator that already runs (`aztriage emulator serve`)."""
    return bool(args.demo and args.arm_endpoint)


def settings_from_args(args: argparse.Namespace) -> ConnectionSettings:
    if attaches(args):
        from backend.settings import is_loopback_url

        if not is_loopback_url(args.arm_endpoint):
            raise CliError("--demo with --arm-endpoint attaches to a running emulator, which listens on loopback: give its https://127.0.0.1:PORT endpoint")
        if args.demo_estate != "demo":
            raise CliError("--demo-estate starts an emulator of its own: with --arm-endpoint the running emulator's estate is used")
    if args.ca_file and not args.arm_endpoint:
        raise CliError("--ca-file only applies with --arm-endpoint")
    auth = args.auth or ("none" if args.demo else "default")
    config = load_settings_config()
    settings = ConnectionSettings(
        arm_endpoint=args.arm_endpoint,
        ca_file=args.ca_file,
        auth=auth,
        cloud=args.cloud,
        subscriptions=tuple(args.subscription or (() if args.demo else config.subscriptions)),
        read_only=bool(args.read_only),
        demo=bool(args.demo),
        engine=getattr(args, "engine", None) or config.inventory_engine,
        graph_threshold=config.graph_threshold,
    )
    if args.demo and not args.arm_endpoint:
        return settings  # endpoint filled in once the emulator runs
    try:
        return settings.validate()
    except SettingsError as exc:
        raise CliError(str(exc)) from None


@contextlib.contextmanager
def demo_emulator(args: argparse.Namespace) -> Iterator[object | None]:
    """Start the embedded emulator for --demo; yields None otherwise (and when --demo
    attaches to an emulator that already runs)."""
    if not args.demo or attaches(args):
        yield None
        return
    from backend.demo import keeps_state, save_demo_state, start_emulator, start_kept_demo
    from backend.emulator.estates import EstateError

    seed = int(os.environ.get("AZTRIAGE_DEMO_SEED", "0"))
    kept = keeps_state(args.demo_estate, seed)
    try:
        emulator = start_kept_demo(seed) if kept else start_emulator(args.demo_estate, seed=seed)
    except EstateError as exc:
        raise CliError(str(exc)) from None
    try:
        yield emulator
    finally:
        try:
            if kept:
                save_demo_state(emulator)  # the next --demo command goes on from here
        except (OSError, RuntimeError, TimeoutError) as exc:
            import logging

            logging.getLogger("aztriage").warning("the demo's state was not saved: %s", exc)
        finally:
            emulator.stop()


def resolve_settings(args: argparse.Namespace, emulator: object | None) -> ConnectionSettings:
    settings = settings_from_args(args)
    if emulator is not None:
        from backend.demo import settings_for

        settings = settings_for(emulator, settings)
    return settings


@contextlib.asynccontextmanager
async def open_backend(settings: ConnectionSettings) -> AsyncIterator[Backend]:
    from backend.composition import create_backend

    try:
        backend = create_backend(settings)
    except SettingsError as exc:
        raise CliError(str(exc)) from None
    try:
        yield backend
    finally:
        await backend.close()
