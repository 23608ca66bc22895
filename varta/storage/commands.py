"""``varta storage``: where the archive is, what protects its holds, how far shipping is behind."""

from __future__ import annotations

import json

import typer

from varta.cli_support import authorize, fail, load_settings, open_engine

storage_app = typer.Typer(help="The archive's storage (local disks or an S3-compatible bucket).",
                          no_args_is_help=True)


@storage_app.command("status")
def status_command(as_json: bool = typer.Option(False, "--json", help="print as JSON")) -> None:
    """The archive's backend, whether the bucket enforces holds (Object Lock), and the backlog."""
    settings = load_settings()
    engine = open_engine(settings)
    authorize(settings, engine, "system.view")
    from varta.storage.objects import StoreError, open_store
    from varta.storage.shipping import archive_status

    try:
        store = open_store(settings)
    except StoreError as exc:
        fail(str(exc))
    out = archive_status(settings, engine, store)
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        if out["backend"] == "s3" and not out.get("reachable"):
            raise typer.Exit(1)
        return
    if out["backend"] == "s3":
        state = "reachable" if out.get("reachable") else f"NOT reachable: {out.get('error', '')}"
        typer.echo(f"archive: s3 {out['endpoint']} bucket {out['bucket']} prefix {out['prefix']!r} ({state})")
        typer.echo(f"object lock: {'on' if out['object_lock'] else 'off'}; holds are protected by "
                   f"{out['holds_protected_by']}")
    else:
        typer.echo("archive: local (each recording node's disk)")
    typer.echo(f"backlog: {out['backlog_segments']} segments, {out['backlog_bytes'] / 1e6:.1f} MB, "
               f"{out['backlog_s']:.0f} s behind")
    for n in out["nodes"]:
        typer.echo(f"  {n['node']:<20} {n['backlog_segments']:>6} segments {n['backlog_bytes'] / 1e6:>9.1f} MB "
                   f"{n['backlog_s']:>7.0f} s behind")
    if out["backend"] == "s3" and not out.get("reachable"):
        raise typer.Exit(1)  # for monitoring: the archive store cannot be reached
