"""``varta user|token|policy|journal``: accounts, API tokens, the policy and the journal."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from varta.access.accounts import AccountError
from varta.access.policy import ACTIONS, ROLES
from varta.cli_support import authorize, fail, load_settings, open_engine, parse_cli_time
from varta.clock import format_time, now_us

user_app = typer.Typer(help="Named accounts (A4.3).", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for outside systems such as police dispatch (R11).", no_args_is_help=True)
policy_app = typer.Typer(help="The permission matrix: show it, tighten it (never loosen).", no_args_is_help=True)
journal_app = typer.Typer(help="The tamper-evident access journal.", no_args_is_help=True)


def _ctx(action: str, obj: str = "", detail: str = ""):
    settings = load_settings()
    engine = open_engine(settings)
    access, who = authorize(settings, engine, action, obj=obj, detail=detail)
    return settings, access, who


# --- users ---------------------------------------------------------------------------------
@user_app.command("add")
def user_add(
    login: str = typer.Argument(..., help="lower-case login, e.g. shevchenko.o"),
    full_name: str = typer.Option(..., "--full-name", help='surname, name, patronymic: "Шевченко Олена Петрівна"'),
    role: str = typer.Option(..., "--role", help=" | ".join(ROLES)),
    position: str = typer.Option("", "--position"),
    organisation: str = typer.Option("", "--organisation"),
    camera_group: list[str] = typer.Option([], "--camera-group", help="repeat; police see only these groups"),
) -> None:
    """Create an account and print its one-time password (to be changed at first sign-in)."""
    settings, access, who = _ctx("user.manage", f"user:{login}")
    try:
        acc, password = access.accounts.add(login, full_name, role, position=position, organisation=organisation,
                                            camera_groups=camera_group)
    except AccountError as exc:
        fail(str(exc))
    access.record(who, "user.manage", f"user:{acc.login}",
                  detail=f"created: {acc.full_name}, role {acc.role}, groups {list(acc.camera_groups)}")
    typer.echo(f"account {acc.login} created ({acc.full_name}, {acc.role})")
    typer.echo(f"one-time password: {password}")
    typer.echo("it must be changed at the first sign-in; remote sign-in also needs an authenticator app")


@user_app.command("list")
def user_list(as_json: bool = typer.Option(False, "--json")) -> None:
    settings, access, who = _ctx("user.manage")
    accs = [a.to_dict() for a in access.accounts.list()]
    if as_json:
        typer.echo(json.dumps(accs, ensure_ascii=False, indent=2))
        return
    for a in accs:
        flags = ",".join(f for f, on in (("disabled", not a["active"]), ("locked", a["locked"]),
                                         ("2fa", a["totp_enabled"]), ("one-time-pw", a["must_change_password"])) if on)
        groups = f" groups={','.join(a['camera_groups'])}" if a["camera_groups"] else ""
        typer.echo(f"{a['login']:<20} {a['role']:<13} {a['full_name']}  [{flags}]{groups}")


def _change(login: str, what: str, fn) -> None:
    settings, access, who = _ctx("user.manage", f"user:{login}")
    try:
        result = fn(access)
    except AccountError as exc:
        fail(str(exc))
    access.record(who, "user.manage", f"user:{login}", detail=what)
    return result


@user_app.command("disable")
def user_disable(login: str) -> None:
    """Disable an account: its sessions end at once and it cannot sign in."""
    _change(login, "disabled; sessions ended", lambda a: a.accounts.set_active(login, False))
    typer.echo(f"account {login} disabled")


@user_app.command("enable")
def user_enable(login: str) -> None:
    _change(login, "enabled", lambda a: a.accounts.set_active(login, True))
    typer.echo(f"account {login} enabled")


@user_app.command("reset-password")
def user_reset_password(login: str) -> None:
    """Issue a new one-time password; the account's sessions end."""
    pw = _change(login, "password reset (one-time password issued; sessions ended)",
                 lambda a: a.accounts.reset_password(login))
    typer.echo(f"one-time password for {login}: {pw}")


@user_app.command("reset-totp")
def user_reset_totp(login: str) -> None:
    """Remove the second factor (lost phone); the user enrols again at the next sign-in."""
    _change(login, "second factor reset (must enrol again; sessions ended)", lambda a: a.accounts.reset_totp(login))
    typer.echo(f"second factor of {login} removed")


@user_app.command("set-role")
def user_set_role(login: str, role: str = typer.Argument(..., help=" | ".join(ROLES))) -> None:
    settings, access, who = _ctx("user.manage", f"user:{login}")
    try:
        before = access.accounts.require(login).role
        access.accounts.update(login, role=role)
    except AccountError as exc:
        fail(str(exc))
    access.record(who, "user.manage", f"user:{login}", detail=f"role {before} → {role}; sessions ended")
    typer.echo(f"{login}: role {before} → {role}")


@user_app.command("set-groups")
def user_set_groups(login: str, groups: list[str] = typer.Argument(None, help="camera groups (none: clear)")) -> None:
    """The camera groups an account is limited to (police: the only ones they see)."""
    groups = groups or []
    _change(login, f"camera groups → {groups}; sessions ended", lambda a: a.accounts.update(login, camera_groups=groups))
    typer.echo(f"{login}: camera groups {groups or '(none)'}")


# --- API tokens ----------------------------------------------------------------------------
@token_app.command("create")
def token_create(
    login: str = typer.Argument(..., help="account the token acts as (e.g. a police unit's)"),
    name: str = typer.Option(..., "--name", help="what system uses it"),
    scope: list[str] = typer.Option(..., "--scope", help=f"repeat; one of: {', '.join(ACTIONS)}"),
    days: float = typer.Option(90, "--days", help="expires after this many days (at most 366)"),
) -> None:
    """Create a token; it is printed once and stored only as a hash."""
    settings, access, who = _ctx("token.manage", f"user:{login}")
    bad = [s for s in scope if s not in ACTIONS]
    if bad:
        fail(f"unknown scope(s) {bad}; scopes are actions: {', '.join(ACTIONS)}")
    acc = access.accounts.get(login)
    if acc is None:
        fail(f"no account {login}")
    try:
        token, t = access.tokens.create(acc.id, name, scope, days)
    except ValueError as exc:
        fail(str(exc))
    access.record(who, "token.manage", f"token:{t.id}", detail=f"created for {login}: {name}; scopes {list(t.scopes)}; "
                                                               f"{days:g} days")
    typer.echo(f"token {t.id} for {login}, expires {format_time(t.expires_us, settings.tz)}:\n{token}")


@token_app.command("list")
def token_list() -> None:
    settings, access, who = _ctx("token.manage")
    logins = {a.id: a.login for a in access.accounts.list()}
    for t in access.tokens.list():
        state = "revoked" if t.revoked_us else "expired" if t.expires_us <= now_us() else "active"
        typer.echo(f"{t.id}  {logins.get(t.user_id, '?'):<16} {state:<8} expires "
                   f"{format_time(t.expires_us, settings.tz)}  {','.join(t.scopes)}  {t.name}")


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    settings, access, who = _ctx("token.manage", f"token:{token_id}")
    if not access.tokens.revoke(token_id):
        fail(f"no active token {token_id}")
    access.record(who, "token.manage", f"token:{token_id}", detail="revoked")
    typer.echo(f"token {token_id} revoked")


# --- policy --------------------------------------------------------------------------------
@policy_app.command("show")
def policy_show(as_json: bool = typer.Option(False, "--json")) -> None:
    """The matrix in force: for each action, the roles allowed remotely and on site."""
    settings, access, who = _ctx("account.self")
    eff = access.policy().effective()
    if as_json:
        typer.echo(json.dumps(eff, indent=2))
        return
    from varta.access.policy import MATRIX

    for action, kinds in eff.items():
        zone = " (restricted zone only)" if MATRIX[action].restricted_zone else ""
        typer.echo(f"{action:<16} remote: {', '.join(kinds['remote']) or '—'}\n{'':<16} direct: "
                   f"{', '.join(kinds['direct']) or '—'}{zone}   [{MATRIX[action].clause}]")


@policy_app.command("restrict")
def policy_restrict(role: str, action: str) -> None:
    """Withdraw ACTION from ROLE (tightening; the order's defaults cannot be exceeded)."""
    settings, access, who = _ctx("policy.manage", f"policy:{role}")
    try:
        access.restrict(who, role, action)
    except ValueError as exc:
        fail(str(exc))
    typer.echo(f"{action} withdrawn from {role}")


@policy_app.command("restore")
def policy_restore(role: str, action: str) -> None:
    """Give back an action withdrawn earlier (up to the order's default, never beyond)."""
    settings, access, who = _ctx("policy.manage", f"policy:{role}")
    if not access.unrestrict(who, role, action):
        fail(f"{action} is not withdrawn from {role}")
    typer.echo(f"{action} restored to {role}")


@policy_app.command("limit")
def policy_limit(name: Optional[str] = typer.Argument(None, help="bulk_view_cameras | bulk_view_window_s"),
                 value: Optional[float] = typer.Argument(None)) -> None:
    """The city's limits (bulk viewing: how many different cameras one account or token may
    open within how many seconds before an alarm); with NAME and VALUE, set one."""
    from varta.access.bulkview import LIMITS

    if name is None:
        settings, access, who = _ctx("account.self")
        for k, v in access.limits().items():
            typer.echo(f"{k:<20} {v:g}   ({LIMITS[k][3]})")
        return
    if value is None:
        fail("give the VALUE to set")
    settings, access, who = _ctx("policy.manage", f"policy:{name}")
    try:
        access.set_limit(who, name, value)
    except ValueError as exc:
        fail(str(exc))
    typer.echo(f"{name} = {value:g}")


# --- journal -------------------------------------------------------------------------------
@journal_app.command("verify")
def journal_verify(heads: Optional[Path] = typer.Option(None, "--heads", help="folder of published heads "
                                                                              "(default: $VARTA_HOME/journal-heads)")) -> None:
    """Check the whole chain and the published heads; exit 1 and name the first bad line."""
    from varta.access.journal import heads_dir, load_heads

    settings, access, who = _ctx("journal.read", "journal")
    published = load_heads(heads or heads_dir(settings.home))
    show = sys.stderr.isatty()
    v = access.journal.verify(published, progress=(lambda n: typer.echo(f"\r{n} lines…", nl=False, err=True))
                              if show else None)
    if show:
        typer.echo("", err=True)
    access.record(who, "journal.read", "journal", detail=f"verify: {'intact' if v.ok else 'BROKEN'} ({v.lines} lines)")
    if v.ok:
        typer.echo(f"journal intact: {v.lines} lines, head {v.last_seq} sha256 {v.last_hash}; "
                   f"{v.heads_checked} published head(s) matched")
        return
    typer.secho(f"JOURNAL BROKEN: first bad line {v.problems[0].seq}", fg=typer.colors.RED, err=True)
    for p in v.problems:
        typer.echo(f"  {p}")
    raise typer.Exit(1)


@journal_app.command("export")
def journal_export(
    from_: str = typer.Option(..., "--from"), to: str = typer.Option(..., "--to"),
    fmt: str = typer.Option("csv", "--format", help="csv | pdf"),
    out: Path = typer.Option(..., "--out"),
    account: Optional[str] = typer.Option(None, "--account"),
    action: Optional[str] = typer.Option(None, "--action", help="e.g. archive.play or archive.*"),
    camera: Optional[str] = typer.Option(None, "--camera"),
    access_kind: Optional[str] = typer.Option(None, "--access", help="direct: the direct-access journal (A4.3)"),
) -> None:
    """Write the journal for a period (and filter) as CSV or PDF."""
    from varta.access.journal import heads_dir, load_heads
    from varta.access.reports import journal_csv, journal_report_pdf

    if fmt not in ("csv", "pdf"):
        fail("--format must be csv or pdf")
    settings, access, who = _ctx("journal.read", "journal")
    tz = settings.tz
    t1, t2 = parse_cli_time(from_, settings, "--from"), parse_cli_time(to, settings, "--to")
    if access_kind not in (None, "direct", "remote"):
        fail("--access must be direct or remote")
    lines = access.journal.lines(t1, t2, account=account, action=action, obj=f"camera:{camera}" if camera else None,
                                 access=access_kind)
    period = f"{format_time(t1, tz)} – {format_time(t2, tz)}"
    if fmt == "csv":
        out.write_text(journal_csv(lines, tz), encoding="utf-8")
    else:
        filters = ", ".join(f"{k}={val}" for k, val in (("account", account), ("action", action), ("camera", camera),
                                                        ("access", access_kind)) if val)
        try:
            out.write_bytes(journal_report_pdf(access.journal, load_heads(heads_dir(settings.home)), lines, tz,
                                               settings.instance_name, period, filters, f"{who.full_name} ({who.login})"))
        except RuntimeError as exc:
            fail(str(exc))
    access.record(who, "journal.read", "journal", detail=f"export {fmt} {period} ({len(lines)} lines) to {out}")
    typer.echo(f"{len(lines)} lines written to {out}")


@journal_app.command("viewers")
def journal_viewers(camera: str = typer.Option(..., "--camera"), from_: str = typer.Option(..., "--from"),
                    to: str = typer.Option(..., "--to")) -> None:
    """Who viewed a camera, live or recorded, in a period."""
    settings, access, who = _ctx("journal.read", f"camera:{camera}")
    t1, t2 = parse_cli_time(from_, settings, "--from"), parse_cli_time(to, settings, "--to")
    rows = access.journal.viewers(camera, t1, t2)
    access.record(who, "journal.read", f"camera:{camera}", detail="who viewed")
    if not rows:
        typer.echo(f"nobody viewed {camera} in that period")
    for r in rows:
        typer.echo(f"{r['full_name']} ({r['account']}, {r['role']}): {r['action']} ×{r['times']}, "
                   f"{format_time(r['first_us'], settings.tz)} – {format_time(r['last_us'], settings.tz)}")


@journal_app.command("head")
def journal_head(publish: bool = typer.Option(False, "--publish", help="also write it to the heads folder now")) -> None:
    """Print the newest line's number and hash: write it down or send it off the server."""
    from varta.access.journal import heads_dir, publish_head

    settings, access, who = _ctx("journal.read", "journal")
    seq, h = access.journal.head()
    if publish:
        rec = publish_head(access.journal, heads_dir(settings.home), settings.tz, settings.instance_name, force=True)
        if rec:
            typer.echo(f"published to {heads_dir(settings.home)}")
    typer.echo(f"{seq} {h}")


@journal_app.command("cabinet")
def journal_cabinet(
    person: str = typer.Option(..., "--person", help="full name of who entered"),
    purpose: str = typer.Option(..., "--purpose"),
    let_in_by: str = typer.Option(..., "--let-in-by", help="who let them in"),
    entered: str = typer.Option("now", "--entered"),
    left: Optional[str] = typer.Option(None, "--left"),
    organisation: str = typer.Option("", "--organisation"),
) -> None:
    """Record a physical access to the server cabinet (A4.3) in the journal's chain."""
    settings, access, who = _ctx("journal.cabinet", "cabinet")
    tz = settings.tz
    t_in = parse_cli_time(entered, settings, "--entered")
    t_out = parse_cli_time(left, settings, "--left") if left else None
    detail = json.dumps({"person": person, "organisation": organisation, "purpose": purpose, "let_in_by": let_in_by,
                         "entered": format_time(t_in, tz), "left": format_time(t_out, tz) if t_out else None},
                        ensure_ascii=False)
    seq = access.record(who, "journal.cabinet", "cabinet", detail=detail)
    typer.echo(f"recorded as journal line {seq}")
