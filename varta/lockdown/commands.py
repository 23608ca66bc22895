"""`varta lockdown on|off|status` from the server's shell (docs/operations.md § Lockdown).

Whoever holds the server's shell holds its disks: a move typed there takes effect at once,
journaled under that operating-system account (a move from the console takes a second
named person's confirmation instead)."""

from __future__ import annotations

import json

import typer

from varta.cli_support import authorize, fail, load_settings, open_engine

lockdown_app = typer.Typer(help="Lockdown: shut the remote views of sensitive (or all) cameras in one move.",
                           no_args_is_help=True)


def _service(action_detail: str):
    from varta.lockdown.service import Lockdown

    settings = load_settings()
    engine = open_engine(settings)
    access, who = authorize(settings, engine, "lockdown.manage", obj="lockdown", detail=action_detail)
    return Lockdown(engine, access, settings.tz), who


@lockdown_app.command("on")
def on(scope: str = typer.Option(..., "--scope", help="sensitive | all"),
       reason: str = typer.Option(..., "--reason", help="why: it goes into the journal")) -> None:
    """Shut at once: remote live views of the cameras in scope end within a second, new
    ones are refused outside restricted-zone workstations, API tokens' video access and
    outgoing alarms' pictures are suspended for them, every operator sees a banner."""
    from varta.lockdown.rules import LockdownError

    svc, who = _service(f"lockdown on ({scope}) asked from the server's shell")
    try:
        st = svc.on(who, scope, reason, "console")
    except LockdownError as exc:
        fail(str(exc))
    typer.echo(f"lockdown ON: {st.scope} cameras, since {svc.status()['since']}; reason: {st.reason}")


@lockdown_app.command("off")
def off(reason: str = typer.Option(..., "--reason", help="why: it goes into the journal")) -> None:
    """End the lockdown in force: remote views are given again as the policy allows."""
    from varta.lockdown.rules import LockdownError

    svc, who = _service("lockdown off asked from the server's shell")
    try:
        st = svc.off(who, reason, "console")
    except LockdownError as exc:
        fail(str(exc))
    typer.echo(f"lockdown OFF ({st.scope} cameras, started by {st.started_by}); reason: {reason.strip()}")


@lockdown_app.command("status")
def status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Whether a lockdown is in force, since when, by whom and why (and pending requests)."""
    svc, _ = _service("lockdown status read")
    out = svc.status(pending=True)
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    if not out["active"]:
        typer.echo("no lockdown in force")
    else:
        typer.echo(f"lockdown ON: {out['scope']} cameras since {out['since']}, by {out['started_by']}"
                   + (f", confirmed by {out['confirmed_by']}" if out["confirmed_by"] else "")
                   + f" ({out['source']}); reason: {out['reason']}")
    for r in out["pending"]:
        typer.echo(f"  request {r['id']}: {r['move']} {r['scope'] or ''} asked by {r['requested_by']} at "
                   f"{r['requested']} (expires {r['expires']}): {r['reason']}")
