"""`aztriage recover`: walk one VM through a recovery scenario, step by step,
with a journal that survives a crash; `--resume RUN_ID` picks a run up again."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import getpass
import json
import sys
from typing import TYPE_CHECKING, Any

from tui.cli import CliError
from tui.commands.common import add_vm_option, output_format

if TYPE_CHECKING:
    from backend.adapter import RecoveryBackend

EXIT_FAILED = 1
EXIT_WAITING = 3
KIND_MARK = {"check": "check", "change": "change", "destructive": "DESTRUCTIVE", "manual": "manual"}


def add_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    from backend.recovery.scenarios import IDS

    p = sub.add_parser(
        "recover",
        parents=parents,
        help="run a recovery scenario on a VM, step by step (or resume one)",
        description="Show the plan of a recovery scenario for one VM, then run it step by step. Every step is journaled: "
        "a run interrupted anywhere resumes with --resume RUN_ID and nothing is done twice.",
        epilog=f"Scenarios: {', '.join(IDS)}. Exit status: 0 when the run ended verified (or a dry run could run), "
        f"{EXIT_WAITING} when it waits for the operator, 1 when it failed or was refused, 2 for bad input.",
    )
    add_vm_option(p, required=False)
    p.add_argument("--scenario", metavar="ID", help="the recovery scenario (see below)")
    p.add_argument("--resume", metavar="RUN_ID", help="resume an interrupted, waiting or failed run")
    p.add_argument("--dry-run", action="store_true", help="show the full plan and change nothing")
    p.add_argument("--yes", action="store_true", help="run the plan without asking")
    p.add_argument("--confirm", metavar="VM_NAME", help="the VM's name, typed, to allow destructive steps")
    p.add_argument("--size", metavar="SIZE", help="resize: the new size (e.g. Standard_D4s_v5)")
    p.add_argument("--zone", metavar="N", help="move-to-zone: the availability zone (1, 2 or 3)")
    p.add_argument("--availability-set", metavar="NAME", help="move-to-set: the availability set (its name in the VM's group, or its id); a new one is created")
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="reset-access: read the new password from standard input; rescue: the password of the new rescue VM's administrator (typed twice on a terminal)",
    )
    p.add_argument(
        "--ssh-key", metavar="FILE", help="reset-access (Linux): the SSH public key file to install; rescue (Linux): the key that signs in to the new rescue VM"
    )
    p.add_argument("--username", metavar="USER", help="reset-access: the account (default: the VM's administrator)")
    p.add_argument("--reset-config", action="store_true", default=None, help="reset-access (Linux): also reset the SSH configuration")
    p.add_argument("--operator-done", action="store_true", help="with --resume: the manual step the run waits on is done")
    p.add_argument("--rescue-vm", metavar="NAME", help="rescue: repair the disk copy on this existing VM instead of a new rescue VM")
    p.add_argument("--run-fixes", action="store_true", help="rescue: run the common fixes on the rescue VM by run command before the manual step")
    p.add_argument(
        "--source-ip",
        metavar="ADDRESS",
        help="fix-nsg: the address (or CIDR) to allow; default: AZTRIAGE_SOURCE_IP, the demo's, or this machine's address on the route to the VM when it is public",
    )
    p.add_argument("--confirm-source", metavar="PHRASE", help="fix-nsg with --source-ip '*': the phrase the plan asks for, typed ('allow PORT from anywhere')")
    p.add_argument("--disable-rule", action="store_true", help="fix-nsg: delete the blocking rule itself instead (destructive; --undo restores it)")
    p.add_argument("--hours", type=int, metavar="N", help="fix-nsg: how long the temporary rule is meant to stay (said in its description; default 4)")
    p.add_argument("--public-ip", metavar="NAME", help="upgrade-public-ip: the public IP to change (default: the VM's first Basic or Dynamic one)")
    p.add_argument(
        "--connection", metavar="NAME", help="reset-vpn: the VPN connection to reset (default: the first one serving the VM's network that is not Connected)"
    )
    p.add_argument("--retain-days", type=int, metavar="N", help="backup-now: keep the recovery point N days (1-99, default 30)")
    p.add_argument(
        "--consistency",
        choices=("application", "crash"),
        help="restore-point: application-consistent (the VM agent freezes the applications; default when it can) or crash-consistent",
    )
    p.add_argument(
        "--source",
        metavar="SNAPSHOT|RESTORE_POINT",
        help="restore-disk: what to make the new disk from: a snapshot of the disk (its name in the VM's group, or its id) or a restore point "
        "of the VM (its name, e.g. rp-20261206031500, or its id .../restorePointCollections/C/restorePoints/P); the disk it holds of --disk is used",
    )
    p.add_argument("--disk", metavar="os|LUN", help="restore-disk: the disk to swap, os (default) or a data disk's LUN")
    p.add_argument(
        "--backup-first", action="store_true", help="recreate, move-to-zone/-set, rescue, resize: take an on-demand Azure Backup first (protected VMs)"
    )
    p.add_argument(
        "--gateway", action="store_true", help="reset-vpn: also reset the VPN gateway if the connection reset does not help (interrupts every connection on it)"
    )
    p.set_defaults(func=run)


# --- input ----------------------------------------------------------------------------


def _check_args(args: argparse.Namespace) -> None:
    from backend.recovery import scenarios
    from backend.recovery.plan import PlanError

    if args.resume:
        if args.vm or args.scenario:
            raise CliError("--resume takes the run id alone: the VM and the scenario come from the journal")
        if (
            args.dry_run
            or args.size
            or args.username
            or args.reset_config
            or args.rescue_vm
            or args.run_fixes
            or _nsg_args(args)
            or args.public_ip
            or args.connection
            or args.gateway
            or args.zone
            or args.availability_set
            or _restore_args(args)
        ):
            raise CliError(
                "--resume continues a run as it was planned: --dry-run, --size, --username, --reset-config, --rescue-vm, --run-fixes, "
                "--source-ip, --confirm-source, --disable-rule, --hours, --public-ip, --connection, --gateway, --zone, --availability-set, "
                "--retain-days, --consistency, --source, --disk and --backup-first do not apply"
            )
        return
    if args.operator_done:
        raise CliError("--operator-done only applies with --resume RUN_ID")
    if not args.vm or not args.scenario:
        raise CliError("give --vm NAME and --scenario ID (or --resume RUN_ID)")
    try:
        scenarios.get(args.scenario)
    except PlanError as exc:
        raise CliError(str(exc)) from None
    if args.size and args.scenario != "resize":
        raise CliError("--size only applies to --scenario resize")
    if args.scenario not in ("reset-access", "rescue") and (args.password_stdin or args.ssh_key):
        raise CliError("--password-stdin and --ssh-key only apply to --scenario reset-access and rescue")
    if args.scenario != "reset-access" and (args.username or args.reset_config):
        raise CliError("--username and --reset-config only apply to --scenario reset-access")
    if args.rescue_vm and (args.password_stdin or args.ssh_key):
        raise CliError("--password-stdin and --ssh-key set up a new rescue VM: the VM given with --rescue-vm keeps its own accounts")
    if args.zone and args.scenario != "move-to-zone":
        raise CliError("--zone only applies to --scenario move-to-zone")
    if args.availability_set and args.scenario != "move-to-set":
        raise CliError("--availability-set only applies to --scenario move-to-set")
    if args.scenario != "rescue" and (args.rescue_vm or args.run_fixes):
        raise CliError("--rescue-vm and --run-fixes only apply to --scenario rescue")
    if args.scenario != "fix-nsg" and _nsg_args(args):
        raise CliError("--source-ip, --confirm-source, --disable-rule and --hours only apply to --scenario fix-nsg")
    if args.disable_rule and (args.source_ip or args.confirm_source or args.hours is not None):
        raise CliError("--disable-rule deletes the blocking rule for every source: --source-ip, --confirm-source and --hours do not apply")
    if args.scenario != "reset-vpn" and (args.connection or args.gateway):
        raise CliError("--connection and --gateway only apply to --scenario reset-vpn")
    if args.scenario != "upgrade-public-ip" and args.public_ip:
        raise CliError("--public-ip only applies to --scenario upgrade-public-ip")
    if args.password_stdin and args.ssh_key:
        raise CliError("give either --password-stdin or --ssh-key, not both")
    if args.retain_days is not None and args.scenario != "backup-now":
        raise CliError("--retain-days only applies to --scenario backup-now (a backup taken first by --backup-first is kept 30 days)")
    if args.consistency and args.scenario != "restore-point":
        raise CliError("--consistency only applies to --scenario restore-point")
    if (args.source or args.disk) and args.scenario != "restore-disk":
        raise CliError("--source and --disk only apply to --scenario restore-disk")
    if args.backup_first and args.scenario not in scenarios.OFFERS_BACKUP_FIRST:
        raise CliError(f"--backup-first only applies to --scenario {', '.join(scenarios.OFFERS_BACKUP_FIRST)}")


def _restore_args(args: argparse.Namespace) -> bool:
    """Options of backup-now, restore-point, restore-disk and --backup-first (none applies to a resume)."""
    return bool(args.retain_days is not None or args.consistency or args.source or args.disk or args.backup_first)


def _nsg_args(args: argparse.Namespace) -> bool:
    return bool(args.source_ip or args.confirm_source or args.disable_rule or args.hours is not None)


def read_secrets(args: argparse.Namespace) -> dict[str, str]:
    """Secrets stay in memory: read here, sent in protected settings, never printed or written."""
    from backend.recovery.plan import PlanError
    from backend.recovery.scenarios.reset_access import check_ssh_key

    secrets: dict[str, str] = {}
    if args.password_stdin:
        if sys.stdin.isatty():
            password = ask_password("new password: ")
        else:
            password = sys.stdin.read()
            if password.endswith("\n"):
                password = password[:-1]
            if password.endswith("\r"):
                password = password[:-1]
        if not password:
            raise CliError("--password-stdin read an empty password")
        secrets["password"] = password
    if args.ssh_key:
        try:
            with open(args.ssh_key, encoding="utf-8") as fh:
                text = fh.read(64 * 1024)
        except OSError as exc:
            raise CliError(f"--ssh-key {args.ssh_key} cannot be read: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise CliError(f"--ssh-key {args.ssh_key} is not a text file") from None
        try:
            secrets["ssh_key"] = check_ssh_key(text)
        except PlanError as exc:
            raise CliError(f"--ssh-key {args.ssh_key}: {exc}") from None
    return secrets


def ask_password(prompt: str) -> str:
    """A password typed twice on the terminal, never echoed; two that differ stop here."""
    password = getpass.getpass(prompt)
    if password and getpass.getpass("again, to confirm: ") != password:
        raise CliError("the two passwords differ: nothing was changed")
    return password


def ask_rescue_way_in(os_type: str, secrets: dict[str, str]) -> None:
    """On a terminal: how the operator will sign in to the new rescue VM (Linux: a key file, or a password)."""
    from backend.recovery.plan import PlanError
    from backend.recovery.scenarios.rescue import ADMIN
    from backend.recovery.scenarios.reset_access import check_password, check_ssh_key

    if os_type.lower() != "windows":
        path = input(f"The rescue VM has no public IP. Your SSH public key file for {ADMIN} (enter: a password instead): ").strip()
        if path:
            try:
                with open(path, encoding="utf-8") as fh:
                    secrets["ssh_key"] = check_ssh_key(fh.read(64 * 1024))
            except OSError as exc:
                raise CliError(f"{path} cannot be read: {exc.strerror}") from None
            except (UnicodeDecodeError, PlanError) as exc:
                raise CliError(f"{path}: {exc if isinstance(exc, PlanError) else 'not a text file'}") from None
            return
    password = ask_password(f"A password for {ADMIN} on the rescue VM (never kept; enter: none, set it later): ")
    if password:
        try:
            check_password(password, os_type)
        except PlanError as exc:
            raise CliError(str(exc)) from None
        secrets["password"] = password


def _params(args: argparse.Namespace, secrets: dict[str, str]) -> dict[str, Any]:
    params = _scenario_params(args, secrets)
    if getattr(args, "backup_first", False):
        params["backup_first"] = True
    return params


def _scenario_params(args: argparse.Namespace, secrets: dict[str, str]) -> dict[str, Any]:
    if args.scenario == "restore-disk":
        return {k: v for k, v in (("source", args.source), ("disk", args.disk)) if v is not None}
    if args.scenario == "restore-point":
        return {"consistency": args.consistency} if args.consistency else {}
    if args.scenario == "backup-now":
        return {"retain_days": args.retain_days} if args.retain_days is not None else {}
    if args.scenario == "resize":
        return {"size": args.size} if args.size else {}
    if args.scenario == "fix-nsg":
        params: dict[str, Any] = {"source": args.source_ip, "disable_rule": bool(args.disable_rule), "hours": args.hours}
        if args.confirm_source:
            params["wide_confirmed"] = args.confirm_source.strip()
        return params
    if args.scenario == "rescue":
        return {"rescue_vm": args.rescue_vm, "run_fixes": bool(args.run_fixes), "credential": _credential(secrets)}
    if args.scenario == "reset-vpn":
        return {"connection": args.connection, "gateway": bool(args.gateway)}
    if args.scenario == "upgrade-public-ip":
        return {"public_ip": args.public_ip} if args.public_ip else {}
    if args.scenario == "move-to-zone":
        return {"zone": args.zone} if args.zone else {}
    if args.scenario == "move-to-set":
        return {"availability_set": args.availability_set} if args.availability_set else {}
    if args.scenario == "reset-access":
        return {"credential": _credential(secrets), "username": args.username, "reset_config": args.reset_config}
    return {}


def _credential(secrets: dict[str, str]) -> str | None:
    """Which secret the run was given (a password or an SSH key), never the secret itself."""
    return "password" if "password" in secrets else "ssh_key" if "ssh_key" in secrets else None


# --- output ---------------------------------------------------------------------------------


class Printer:
    def __init__(self, fmt: str):
        self.fmt = fmt
        self.total = 0
        self.events = 0
        self._current: int | None = None
        self._last = ""

    def line(self, obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj, default=str) + "\n")
        sys.stdout.flush()

    def plan(self, plan: Any, *, read_only: bool, verbose: bool) -> None:
        self.total = len(plan.steps)
        if self.fmt == "json":
            self.line({"event": "plan", "plan": plan.to_json(read_only=read_only)})
            return
        vm = plan.vm
        out = [f"{plan.title}: {vm.name} ({vm.resource_group}, {vm.location}, {vm.os_type}, {vm.power_state})", plan.summary, ""]
        if plan.details:
            from tui.textfmt import table

            out += [table(("", "NOW", "AFTER"), [(w, b, a) for w, b, a in plan.details]), ""]
        for i, step in enumerate(plan.steps, 1):
            mark = KIND_MARK[str(step.kind)]
            disabled = " (disabled: read-only)" if read_only and step.writes else ""
            out.append(f"{i:>2}. [{mark}] {step.title}{disabled}")
            if verbose:
                out.append(f"      why: {step.why}")
                out.append(f"      changes: {step.changes}")
                for w in step.warnings:
                    out.append(f"      warning: {w}")
                if step.writes:
                    out.append(f"      undo: {step.undo or 'cannot be undone'}")
                if step.instructions:
                    out.append("      what you will do:")
                    out += [f"        {line}" for line in step.instructions.splitlines()]
        if plan.warnings:
            out += ["", "warnings:"] + [f"  - {w}" for w in plan.warnings]
        if plan.blockers:
            out += ["", "cannot run:"] + [f"  - {b}" for b in plan.blockers]
        print("\n".join(out))
        sys.stdout.flush()

    def event(self, ev: Any) -> None:
        self.events += 1
        if self.fmt == "json":
            self.line(ev.to_json())
            return
        if ev.index is not None and ev.index != self._current:
            self._current = ev.index
            self._last = ""
            print(f"[{ev.index + 1}/{self.total}] {ev.title}")
        if ev.event in ("run-started", "run-resumed"):
            print(f"\nrun {ev.run_id}: {ev.message}")
        elif ev.event in ("progress", "log", "checked", "resource", "done"):
            print(f"      {ev.message}")
            self._last = ev.message
        elif ev.event == "verified":
            print("      ok" + ("" if ev.message == self._last else f": {ev.message}"))
        elif ev.event == "skipped":
            print("      already done" + ("" if ev.message == self._last else f": {ev.message}"))
        elif ev.event == "failed":
            print(f"      FAILED: {ev.message}")
        elif ev.event == "waiting":
            print(f"      WAITING for the operator: {ev.message}")
        elif ev.event == "run-finished":
            print(f"\n{ev.message}")
        sys.stdout.flush()


# --- the command --------------------------------------------------------------------------------


def _settings_for_runs(settings: Any) -> Any:
    """An endpoint on loopback (the emulator) answers long-running operations fast: poll it often."""
    from backend.settings import is_loopback_url

    if settings.polling_interval is None and is_loopback_url(settings.endpoint):
        return dataclasses.replace(settings, polling_interval=0.2)
    return settings


def on_azure(args: argparse.Namespace, act: Any, refused: tuple[type[Exception], ...] = ()) -> Any:
    """`act(backend)` on the connection the arguments name (the demo's emulator, when asked
    for, runs meanwhile); Azure's failures and the `refused` exceptions as one sentence."""
    from backend.errors import BackendError
    from tui.runtime import demo_emulator, open_backend, resolve_settings

    failures: tuple[type[Exception], ...] = (BackendError, *refused)
    with demo_emulator(args) as emulator:
        settings = _settings_for_runs(resolve_settings(args, emulator))

        async def main() -> Any:
            async with open_backend(settings) as backend:
                return await act(backend)

        try:
            return asyncio.run(main())
        except failures as exc:
            raise CliError(str(exc), exit_code=1) from None


def _confirm_interactively(plan: Any, args: argparse.Namespace) -> str | None:
    """Ask on the terminal: yes for the plan, the VM name for destructive steps. Returns the typed name."""
    typed = args.confirm
    if plan.destructive and typed is None:
        if not sys.stdin.isatty() or args.password_stdin:
            raise CliError(f"this plan has destructive steps: add --confirm {plan.vm.name} to run it")
        typed = input(f"Type the VM's name ({plan.vm.name}) to run the destructive steps: ").strip()
    if plan.destructive and typed != plan.vm.name:
        raise CliError(f"the name typed ({typed!r}) is not the VM's name ({plan.vm.name}): nothing was changed")
    if not args.yes and not plan.destructive:
        if not sys.stdin.isatty() or args.password_stdin:
            raise CliError("add --yes to run the plan (or --dry-run to only show it)")
        answer = input("Run this plan? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            raise CliError("not run: nothing was changed", exit_code=1)
    return typed


def run(args: argparse.Namespace) -> int:
    fmt = output_format(args, ("table", "json"), default="table")
    _check_args(args)
    secrets = read_secrets(args)
    printer = Printer(fmt)
    if args.demo:
        import backend.emulator.guest  # noqa: F401  (the demo guests answer RDP/SSH)
    from backend.recovery.journal import Journal, JournalError, SecretLeak

    # A refused command writes nothing: a resume opens the journal only when it exists,
    # a new run creates it only once every check has passed and the run starts.
    with contextlib.ExitStack() as stack:

        def open_journal() -> Any:
            try:
                journal = Journal.open_existing() if args.resume else Journal()
            except JournalError as exc:
                raise CliError(str(exc), exit_code=1) from None
            if journal is None:
                raise CliError(f"there is no run {args.resume} in the journal (see 'aztriage runs')")
            return stack.enter_context(journal)

        journal = open_journal() if args.resume else None

        async def act(backend: RecoveryBackend) -> int:
            if args.resume:
                return await _resume(args, backend, journal, secrets, printer)
            return await _start(args, backend, open_journal, secrets, printer)

        try:
            return on_azure(args, act)
        except SecretLeak as exc:
            raise CliError(f"internal error: {exc}; nothing more was done", exit_code=1) from None
        except KeyboardInterrupt:
            raise CliError(
                "interrupted: the run is in the journal; resume it with 'aztriage recover --resume RUN_ID' (see 'aztriage runs')", exit_code=130
            ) from None


async def _start(args: argparse.Namespace, backend: RecoveryBackend, open_journal: Any, secrets: dict[str, str], printer: Printer) -> int:
    from backend.recovery import scenarios, service
    from backend.recovery.plan import PlanError
    from backend.recovery.runner import Runner, RunRefused
    from backend.recovery.scenarios.reset_access import check_password

    try:
        vm_id = await service.find_vm(backend, args.vm, list(args.subscription) if args.subscription else None)
        plan, facts = await service.make_plan(backend, vm_id, args.scenario, _params(args, secrets))
        if args.scenario == "rescue" and not secrets and not args.rescue_vm and not args.dry_run and sys.stdin.isatty() and printer.fmt != "json":
            ask_rescue_way_in(facts.vm.os_type, secrets)
            if secrets:
                plan, facts = await service.make_plan(backend, vm_id, args.scenario, _params(args, secrets))
        if "password" in secrets:
            check_password(secrets["password"], facts.vm.os_type)
    except PlanError as exc:
        raise CliError(str(exc)) from None
    read_only = bool(backend.settings.read_only)
    printer.plan(plan, read_only=read_only, verbose=args.dry_run or read_only)
    if args.dry_run:
        if plan.blockers:
            print(f"aztriage: {plan.title} cannot run on {plan.vm.name}: {plan.blockers[0]}", file=sys.stderr)
            return EXIT_FAILED
        return 0
    if plan.blockers:
        raise CliError(f"{plan.title} cannot run on {plan.vm.name}: {plan.blockers[0]}", exit_code=EXIT_FAILED)
    if read_only and plan.writes:
        raise CliError("read-only mode: the plan was shown and nothing was changed", exit_code=EXIT_FAILED)
    typed = _confirm_interactively(plan, args)
    runner = Runner(backend, open_journal(), on_event=printer.event, secrets=secrets, confirm_name=typed)

    async def refresh():
        return await service.gather_facts(backend, vm_id, args.scenario, plan.params)

    try:
        result = await runner.start(plan, lambda f, p: scenarios.build_plan(args.scenario, f, p), facts, refresh=refresh)
    except (RunRefused, PlanError) as exc:
        raise CliError(str(exc), exit_code=EXIT_FAILED) from None
    if result.status == "waiting" and printer.fmt != "json":
        print(f"resume with: aztriage recover --resume {result.run_id} --operator-done{_confirm_hint(plan, result)}")
    elif result.status == "failed" and printer.fmt != "json":
        print(f"resume (after fixing the cause) with: aztriage recover --resume {result.run_id}")
    return result.exit_code


def _confirm_hint(plan: Any, result: Any) -> str:
    """` --confirm VM` when the steps still to come are destructive (a resume asks for the name again)."""
    done = {s.idx for s in (result.record.steps if result.record else ()) if s.state in ("verified", "skipped")}
    later = [s for i, s in enumerate(plan.steps) if i not in done]
    return f" --confirm {plan.vm.name}" if any(str(s.kind) == "destructive" for s in later) else ""


async def _resume(args: argparse.Namespace, backend: RecoveryBackend, journal: Any, secrets: dict[str, str], printer: Printer) -> int:
    from backend.recovery import scenarios
    from backend.recovery.plan import PlanError
    from backend.recovery.runner import Runner, RunRefused

    record = journal.get_run(args.resume)
    if record is None:
        raise CliError(f"there is no run {args.resume} in the journal (see 'aztriage runs')")
    printer.total = len(record.steps)
    confirm = args.confirm
    runner = Runner(backend, journal, on_event=printer.event, secrets=secrets, confirm_name=confirm, operator_done=args.operator_done)
    try:
        result = await runner.resume(args.resume, scenarios.build_plan)
    except (RunRefused, PlanError) as exc:
        raise CliError(str(exc), exit_code=EXIT_FAILED) from None
    if not printer.events:  # nothing was left to do
        if printer.fmt == "json":
            printer.line({"run_id": result.run_id, "event": "run-finished", "state": result.status, "message": result.summary})
        else:
            print(result.summary)
    return result.exit_code
