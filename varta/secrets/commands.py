"""`varta secrets …`: the secrets key from the server's shell (docs/operations.md)."""

from __future__ import annotations

import base64
import json

import typer

from varta.cli_support import authorize, fail, load_settings, open_engine

def _run(fn, detail: str = ""):
    """``fn(engine)`` for whoever may maintain the system (journaled if refused); a secrets
    error ends the command in words. Returns (access, principal, fn's answer)."""
    from varta.secrets.box import SecretsError

    settings = load_settings()
    engine = open_engine(settings)
    access, who = authorize(settings, engine, "system.maintain", obj="secrets", detail=detail)
    try:
        return access, who, fn(engine)
    except SecretsError as exc:
        fail(str(exc))


secrets_app = typer.Typer(help="Secrets at rest: the key that seals passwords, camera credentials and second "
                               "factors in the database.", no_args_is_help=True)


@secrets_app.command("status")
def status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Which key seals new values, which keys this data folder holds, how many values each
    key seals per column and how many are still in clear (no secret is shown)."""
    from varta.secrets.vault import census

    _, _, info = _run(census, "secrets status read")
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    typer.echo(f"current key: {info['current'] or '(none yet)'}; held here: {', '.join(info['held']) or 'none'}")
    for col, by in info["columns"].items():
        typer.echo(f"  {col:<26} " + (", ".join(f"{k}: {n}" for k, n in sorted(by.items())) or "no values"))


@secrets_app.command("rotate")
def rotate_command() -> None:
    """Make a new key, register it for every node and re-seal every value under it (with
    VARTA_SECRETS_KEY set: re-seal under its first key). The old key stays until `retire`."""
    from varta.secrets.vault import rotate

    access, who, out = _run(rotate)
    n = sum(out["resealed"].values())
    access.record(who, "system.maintain", "secrets",
                  detail=f"secrets key rotated: key {out['current']} now seals new values; {n} values re-sealed")
    typer.echo(f"new key {out['current']}: {n} values re-sealed "
               f"({', '.join(f'{k} {v}' for k, v in out['resealed'].items()) or 'none'}); the old key stays until "
               "`varta secrets retire` (run it once every node holds the new one)")


@secrets_app.command("retire")
def retire_command() -> None:
    """Forget the keys no value uses any more (never the current one)."""
    from varta.secrets.vault import retire

    access, who, gone = _run(retire)
    if gone:
        access.record(who, "system.maintain", "secrets", detail=f"secrets keys retired: {', '.join(gone)}")
    typer.echo(f"retired: {', '.join(gone)}" if gone else "no key to retire")


@secrets_app.command("seal-setting")
def seal_setting(name: str = typer.Argument(..., help="s3_secret_key, archive_s3_secret_key, alarm_webhook_secret, "
                                                      "oidc_client_secret, s3_access_key, archive_s3_access_key")) -> None:
    """Seal a secret setting for varta.toml or the environment: the value is read from standard
    input (never from the command line, so it stays out of the shell's history); prints
    `vs1:…` to put in place of the clear value. After `rotate`, seal it again before `retire`."""
    import sys

    from varta.config import SEALED_SETTINGS
    from varta.secrets.vault import setting_purpose, vault_for

    if name not in SEALED_SETTINGS:
        fail(f"{name} is not a secret setting; these are: {', '.join(SEALED_SETTINGS)}")
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        fail("give the value on standard input (e.g. read -rs V; printf '%s' \"$V\" | varta secrets seal-setting NAME)")
    access, who, sealed = _run(lambda engine: vault_for(engine).seal(value, setting_purpose(name)))
    access.record(who, "system.maintain", "secrets", detail=f"setting {name} sealed")
    typer.echo(sealed)


@secrets_app.command("new-key")
def new_key_command() -> None:
    """Print a new random key for VARTA_SECRETS_KEY (base64; put the old one after a comma
    to rotate: VARTA_SECRETS_KEY=NEW,OLD varta secrets rotate)."""
    from varta.secrets.box import new_key

    typer.echo(base64.b64encode(new_key()).decode())
