"""``varta nodes``: the cluster's nodes; drain a node for maintenance, resume it, forget it."""

from __future__ import annotations

import json
import time

import typer

from varta.cli_support import authorize, fail, load_settings, open_engine

nodes_app = typer.Typer(help="The cluster's nodes (recorders, web and analytics nodes).", invoke_without_command=True)


@nodes_app.callback()
def nodes_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="print as JSON")) -> None:
    """Every node: roles, state, cameras, last heartbeat (the database's clock)."""
    if ctx.invoked_subcommand is not None:
        return
    from varta.cluster.nodes import NodeRegistry, overview

    settings = load_settings()
    engine = open_engine(settings)
    authorize(settings, engine, "system.view")
    rows = overview(engine, NodeRegistry(engine), settings.tz)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("no node has run against this database yet")
    for n in rows:
        load = n["load"] or {}
        extra = f", {load['recording']} recording" if "recording" in load else ""
        typer.echo(f"{n['name']:<20} {n['state']:<9} {','.join(n['roles']):<26} {len(n['cameras']):>4} cameras"
                   f"{extra}  heartbeat {n['heartbeat']}  v{n['version']}  {n['address'] or '-'}  {n['id']}")


def _change(name: str, state: str, verb: str):
    from varta.cluster.nodes import NodeError, NodeRegistry

    settings = load_settings()
    engine = open_engine(settings)
    access, who = authorize(settings, engine, "system.maintain", obj=f"node:{name}")
    reg = NodeRegistry(engine)
    try:
        node = reg.set_state(name, state)
    except NodeError as exc:
        fail(str(exc))
    access.record(who, "system.maintain", f"node:{node.name}", detail=f"{verb} (node {node.id})")
    return settings, engine, reg, node


@nodes_app.command("drain")
def nodes_drain(name: str = typer.Argument(..., help="the node's name or id"),
                timeout: float = typer.Option(300.0, "--timeout", help="seconds to wait for the moves"),
                wait: bool = typer.Option(True, "--wait/--no-wait", help="return only when the node holds nothing")
                ) -> None:
    """Move a node's cameras to other nodes (no gap: make-before-break) and give it no new
    work; returns when it holds no camera any more (maintenance can begin)."""
    from varta.cluster.leases import ANALYSE, RECORD

    settings, engine, reg, node = _change(name, "draining", "drained: its cameras move to other nodes")
    if not node.alive:
        typer.echo(f"node {node.name} is {node.status}: it takes no work; its cameras were taken over already")
        return
    if not wait:
        typer.echo(f"node {node.name} draining")
        return
    from varta.cluster.leases import LeaseStore

    leases = LeaseStore(engine)
    deadline = time.monotonic() + timeout
    last = None
    while True:
        held = [lease for lease in leases.held_by(node.id).values() if lease.kind in (RECORD, ANALYSE)]
        cams = sorted({lease.key for lease in held if lease.kind == RECORD})
        if not held:
            typer.echo(f"node {node.name} drained: it records and analyses nothing now")
            return
        if len(held) != last:
            typer.echo(f"  {len(cams)} cameras still on {node.name}" + (f" ({', '.join(cams[:8])}"
                       f"{'…' if len(cams) > 8 else ''})" if cams else ""), err=True)
            last = len(held)
        others = [n for n in reg.list() if n.alive and n.id != node.id and n.state == "active"
                  and "recorder" in n.roles]
        if not others and cams:
            fail(f"no other active recorder can take {node.name}'s cameras; they stay there (still draining)", 5)
        if time.monotonic() > deadline:
            fail(f"{len(held)} leases still on {node.name} after {timeout:.0f} s (the node keeps draining)", 5)
        time.sleep(1.0)


@nodes_app.command("resume")
def nodes_resume(name: str = typer.Argument(..., help="the node's name or id")) -> None:
    """Take a drained node back into service (cameras placed on it return without a gap)."""
    _, _, _, node = _change(name, "active", "back in service")
    typer.echo(f"node {node.name} active")


@nodes_app.command("forget")
def nodes_forget(name: str = typer.Argument(..., help="the node's name or id")) -> None:
    """Remove a node that will not return (a decommissioned server) from the list."""
    from varta.cluster.nodes import NodeError, NodeRegistry

    settings = load_settings()
    engine = open_engine(settings)
    access, who = authorize(settings, engine, "system.maintain", obj=f"node:{name}")
    try:
        node = NodeRegistry(engine).forget(name)
    except NodeError as exc:
        fail(str(exc))
    access.record(who, "system.maintain", f"node:{node.name}", detail=f"forgotten (node {node.id})")
    typer.echo(f"node {node.name} removed from the cluster's list; its footage stays in the index")
