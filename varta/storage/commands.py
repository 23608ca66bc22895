"""``varta storage``: where the archive is, what protects its holds, how far shipping is behind."""

from __future__ import annotations

import json

import typer

from varta.cli_support import archive_store, authorize, fail, load_settings, open_engine

storage_app = typer.Typer(help="The archive's storage (local disks or an S3-compatible bucket).",
                          no_args_is_help=True)


@storage_app.command("status")
def status_command(as_json: bool = typer.Option(False, "--json", help="print as JSON")) -> None:
    """The archive's backend, whether the bucket enforces holds (Object Lock), and the backlog."""
    settings = load_settings()
    engine = open_engine(settings)
    authorize(settings, engine, "system.view")
    from varta.storage.shipping import archive_status

    out = archive_status(settings, engine, archive_store(settings))
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
    if out.get("index"):
        ix = out["index"]
        typer.echo(f"index: partitioned by day, {ix['days']} days ({ix['first_day']} … {ix['last_day']})"
                   + (f"; {ix['rows_outside_days']} rows outside them" if ix["rows_outside_days"] else ""))
    if out["backend"] == "s3" and not out.get("reachable"):
        raise typer.Exit(1)  # for monitoring: the archive store cannot be reached


@storage_app.command("migrate")
def migrate_command(to: str = typer.Option(..., "--to", help="s3: ship this node's footage to the bucket; "
                                                              "local: bring it back to this disk"),
                    limit: int = typer.Option(0, "--limit", help="stop after this many segments (0: all); "
                                                                 "run again to go on")) -> None:
    """Move this node's archive between its disk and the bucket while it records.

    Resumable and verified: each segment's state is its index row, set only once the copy
    is checked (size and SHA-256), so an interrupted run goes on where it stopped. `--to s3`
    uses the archive_s3_* settings even while archive_storage is still local; switch
    archive_storage to s3 when it is done. `--to local` copies back what is only in the
    bucket (checked against the index's SHA-256); the bucket's copies stay until deleted."""
    from varta.cluster.identity import read_node_id
    from varta.storage.migrate import migrate_to_local, migrate_to_s3
    from varta.storage.objects import StoreError

    if to not in ("s3", "local"):
        fail(f"--to {to!r}: use s3 or local")
    settings = load_settings()
    engine = open_engine(settings)
    access, who = authorize(settings, engine, "system.maintain", obj="archive")
    node = read_node_id(settings.home)
    if node is None:
        fail(f"no node has run in {settings.home} yet: it has no footage to move")
    store = archive_store(settings, always=True)

    def progress(done: int, left: int, nbytes: int) -> None:
        typer.echo(f"{done} segments moved ({nbytes / 1e6:.1f} MB), {left} to go", err=True)

    try:
        rep = (migrate_to_s3 if to == "s3" else migrate_to_local)(engine, settings, node, store, limit or None,
                                                                   progress)
    except StoreError as exc:
        fail(f"migration stopped, resumable: {exc}")
    access.record(who, "system.maintain", "archive",
                  detail=f"storage migrate --to {to}: {rep.moved} segments ({rep.bytes} bytes), {rep.left} left")
    typer.echo(f"moved {rep.moved} segments ({rep.bytes / 1e6:.1f} MB) to {to}; {rep.left} left"
               + (f"; {rep.skipped} skipped (missing on disk: see `varta reconcile`)" if rep.skipped else ""))
    if rep.left:
        raise typer.Exit(1)
