"""Who may do what: the order's permission matrix, in one place (docs/access.md).

Pure rules, no I/O. Every HTTP route and every CLI command asks :func:`decide` before it
acts, and the answer (allowed or refused, with the reason) is journaled by the caller.

The defaults are the order's:

* A4.3 — access is personal. *Remote* access: the mayor, the first deputy, deputy mayors,
  the Responsible Department and the police. *Direct* (on-site) access: the Responsible
  Department and the contractor only. C4 — the contractor never works remotely.
* A4.4 — archived recordings only for the Responsible Department and the contractor.
* A4.5 — recorded video only in a restricted zone: from restricted-zone workstations.
* R11 / MVS-3 — police see live video of the camera groups assigned to them.
* Administration (accounts, policy, cameras' settings) is a separate role that sees no video.

A city may tighten the matrix (remove an action from a role), never loosen it: the
restrictions are subtracted from these defaults, and nothing can be added to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAYOR, FIRST_DEPUTY, DEPUTY_MAYOR = "mayor", "first_deputy", "deputy_mayor"
DEPARTMENT, CONTRACTOR, POLICE, ADMIN = "department", "contractor", "police", "admin"
ROLES = (MAYOR, FIRST_DEPUTY, DEPUTY_MAYOR, DEPARTMENT, CONTRACTOR, POLICE, ADMIN)

# The server's own shell: a command typed on the server is direct access by whoever holds
# the operating-system account (journaled with that name). It is not an account role.
CONSOLE = "console"

ROLE_TITLES = {
    MAYOR: ("Міський голова", "Mayor"),
    FIRST_DEPUTY: ("Перший заступник міського голови", "First deputy mayor"),
    DEPUTY_MAYOR: ("Заступник міського голови", "Deputy mayor"),
    DEPARTMENT: ("Відповідальний підрозділ", "Responsible Department"),
    CONTRACTOR: ("Обслуговуюча організація", "Contractor"),
    POLICE: ("Національна поліція", "Police"),
    ADMIN: ("Адміністратор системи", "System administrator"),
}

DIRECT, REMOTE = "direct", "remote"

_LEADERS = frozenset({MAYOR, FIRST_DEPUTY, DEPUTY_MAYOR})
_REMOTE_ROLES = _LEADERS | {DEPARTMENT, POLICE}  # A4.3
_DIRECT_ROLES = frozenset({DEPARTMENT, CONTRACTOR})  # A4.3
_ARCHIVE_ROLES = frozenset({DEPARTMENT, CONTRACTOR})  # A4.4


@dataclass(frozen=True)
class Rule:
    """Who may perform one action, by kind of access."""

    remote: frozenset[str]
    direct: frozenset[str]
    clause: str
    text: str
    restricted_zone: bool = False  # only from restricted-zone workstations (A4.5)
    camera_scoped: bool = False  # limited to the account's camera groups
    token_only: bool = False  # an outside system's API token only, never a person's session


def _r(remote, direct, clause, text, **kw) -> Rule:
    return Rule(frozenset(remote), frozenset(direct), clause, text, **kw)


ALL_ROLES = frozenset(ROLES)

# action -> rule. Actions are what the journal records; routes and commands map onto them.
MATRIX: dict[str, Rule] = {
    # Signing in is itself access of a kind: the roles that have no remote access cannot
    # open a remote session at all, and those with no direct access none on site (A4.3, C4).
    "session.remote": _r(_REMOTE_ROLES, (), "A4.3, C4", "remote sessions"),
    "session.direct": _r((), _DIRECT_ROLES | {ADMIN}, "A4.3", "on-site sessions"),
    "account.self": _r(ALL_ROLES, ALL_ROLES, "A4.3", "own password, second factor, sign-out"),
    "live.view": _r(_REMOTE_ROLES, _DIRECT_ROLES, "A4.3, R1, R11", "live video", camera_scoped=True),
    "camera.list": _r(_REMOTE_ROLES, _DIRECT_ROLES | {ADMIN}, "A4.3, R5",
                      "camera list, places and state", camera_scoped=True),
    "camera.manage": _r((), {ADMIN, CONTRACTOR}, "C3", "add, change and remove cameras"),
    # Turning a camera is watching with it: by default whoever may watch that camera live
    # (a city may withdraw it from a role); one operator at a time (varta/onvif/ptzlock.py).
    "ptz.control": _r(_REMOTE_ROLES, _DIRECT_ROLES, "R1, A4.3", "turn, zoom and preset PTZ cameras",
                      camera_scoped=True),
    "archive.search": _r({DEPARTMENT}, _ARCHIVE_ROLES, "A4.4",
                         "what is recorded: ranges and gaps", camera_scoped=True),
    "archive.play": _r((), _ARCHIVE_ROLES, "A4.4, A4.5", "play recorded video",
                       restricted_zone=True, camera_scoped=True),
    "archive.export": _r((), _ARCHIVE_ROLES, "A4.4, A4.5", "export recorded video",
                         restricted_zone=True, camera_scoped=True),
    # Alarms carry a picture of the scene, so they go to whoever may watch that camera live
    # (R6, MVS-3); acting on them (acknowledge, true/false, notes) is the operators' work.
    "event.view": _r(_REMOTE_ROLES, _DIRECT_ROLES, "R3, R6, MVS-3", "alarms and events of the cameras one may watch",
                     camera_scoped=True),
    "event.handle": _r({DEPARTMENT}, _DIRECT_ROLES, "R3, R6", "acknowledge, judge and annotate alarms",
                       camera_scoped=True),
    # Evidence (R7, A4.6–A4.11; docs/evidence.md). The leaders resolve requests and order
    # holds; the Responsible Department keeps the registers and prepares the answers. Building
    # a package reads recorded video, so it is bound like export (A4.4, A4.5).
    "incident.view": _r(_LEADERS | {DEPARTMENT}, _DIRECT_ROLES, "R7", "the incident register"),
    "incident.manage": _r({DEPARTMENT}, _DIRECT_ROLES, "R7", "register and update incidents"),
    "hold.view": _r(_LEADERS | {DEPARTMENT}, _DIRECT_ROLES, "A4.6", "holds on recordings"),
    "hold.manage": _r(_LEADERS | {DEPARTMENT}, {DEPARTMENT}, "A4.6",
                      "place holds and release them on a destruction instruction"),
    "request.view": _r(_LEADERS | {DEPARTMENT}, {DEPARTMENT}, "A4.7–A4.10", "requests for recordings and deadlines"),
    "request.register": _r({DEPARTMENT}, {DEPARTMENT}, "A4.7–A4.9", "register and withdraw requests"),
    "request.resolve": _r(_LEADERS, (), "A4.8, A4.10", "resolve requests (third-party: the mayor only)"),
    # The police's own system files its requests on line and follows them (R11, MVS-3;
    # docs/police-exchange.md): registered and held as if typed in, resolved and prepared
    # by the same people; the filer sees its own requests only.
    "request.file": _r({POLICE}, (), "R11, MVS-3, A4.7", "file requests on line and follow one's own"),
    "request.prepare": _r((), {DEPARTMENT}, "A4.4, A4.5, A4.10", "build and download evidence packages",
                          restricted_zone=True),
    "request.transfer": _r({DEPARTMENT}, {DEPARTMENT}, "A4.11", "upload packages and issue download links"),
    # Search across every camera's tracks reads what the archive saw (thumbnails of people):
    # an archive action, from the restricted zone (A4.4, A4.5; MVS-2).
    "search.tracks": _r((), _ARCHIVE_ROLES, "A4.4, A4.5, MVS-2", "search every camera's tracks",
                        restricted_zone=True, camera_scoped=True),
    # Where the next cameras should go (MVS-3, MVS-4; docs/placement.md): incident places, never
    # video. The department analyses and proposes, the police unit agrees, the leaders approve.
    "placement.view": _r(_LEADERS | {DEPARTMENT}, {DEPARTMENT}, "MVS-3, R7", "camera placement analysis and proposals"),
    "placement.manage": _r({DEPARTMENT}, {DEPARTMENT}, "MVS-3, MVS-4",
                           "import incidents, sites and zones; draft and send placement proposals"),
    "placement.approve": _r(_LEADERS | {DEPARTMENT}, {DEPARTMENT}, "MVS-4", "approve an agreed placement proposal"),
    "placement.review": _r({POLICE}, (), "MVS-4", "read and answer the placement proposals sent to one's unit"),
    # Lockdown (C4; docs/operations.md § Lockdown): the mayor or the department shut the
    # remote views of sensitive (or all) cameras; from the console a second named person
    # confirms. An alert feed (an air-raid alert webhook) uses a token scoped lockdown.alert.
    "lockdown.manage": _r({MAYOR, DEPARTMENT}, {DEPARTMENT}, "C4, A4.3",
                          "lock down remote views of sensitive cameras (with a second person's confirmation)"),
    "lockdown.alert": _r({DEPARTMENT}, {DEPARTMENT}, "C4", "an alert feed's automatic lockdown", token_only=True),
    "system.maintain": _r((), {ADMIN, CONTRACTOR}, "C3",
                          "run, migrate, reconcile and apply retention; drain and resume nodes"),
    "system.view": _r({DEPARTMENT}, _DIRECT_ROLES | {ADMIN}, "R4, R5",
                      "storage, alarms, the cluster's nodes and their health"),
    "user.manage": _r((), {ADMIN}, "A4.3", "accounts, roles and camera groups"),
    "token.manage": _r((), {ADMIN}, "R11, MVS-3", "API tokens for outside systems"),
    "policy.manage": _r((), {ADMIN}, "A4.3", "tighten the permission matrix"),
    "journal.read": _r({DEPARTMENT}, {DEPARTMENT, ADMIN}, "A4.2, A4.3", "read and export the access journal"),
    "journal.cabinet": _r((), {DEPARTMENT}, "A4.3", "record physical access to the server cabinet"),
}
ACTIONS = tuple(MATRIX)


@dataclass(frozen=True)
class Principal:
    """Who is asking, and from where."""

    login: str
    full_name: str
    role: str
    access: str = REMOTE  # direct | remote
    restricted: bool = False  # a restricted-zone workstation (A4.5)
    source: str = ""
    camera_groups: tuple[str, ...] = ()
    scopes: frozenset[str] | None = None  # an API token's actions; None for people


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True)
class Policy:
    """The order's matrix minus the city's restrictions: a set of (role, action)."""

    restrictions: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    def decide(self, who: Principal, action: str, camera_group: str | None = None) -> Decision:
        rule = MATRIX.get(action)
        if rule is None:
            return Decision(False, f"unknown action {action!r}")
        if who.role == CONSOLE:
            # Whoever holds the server's shell already holds its disks; the command is
            # still journaled under that operating-system account.
            return Decision(True, "server console (direct access at the server)")
        if who.role not in ROLES:
            return Decision(False, f"unknown role {who.role!r}")
        if who.scopes is not None and action not in who.scopes and action != "account.self":
            return Decision(False, f"the API token is not scoped for {action}")
        allowed = rule.direct if who.access == DIRECT else rule.remote
        if who.role not in allowed:
            return Decision(False, _refusal(who, rule, action))
        if (who.role, action) in self.restrictions:
            return Decision(False, f"{action} is withdrawn from role {who.role} by the city's policy")
        if rule.token_only and who.scopes is None:
            return Decision(False, f"{rule.text}: only an outside system's API token ({rule.clause})")
        if rule.restricted_zone and not who.restricted:
            return Decision(False, f"{rule.text}: only from a restricted-zone workstation ({rule.clause})")
        if rule.camera_scoped and camera_group is not None and not camera_in_scope(who, camera_group):
            return Decision(False, f"camera group {camera_group or '(none)'} is not assigned to {who.login}")
        return Decision(True, f"{rule.text} ({rule.clause})")

    def allowed_actions(self, who: Principal) -> list[str]:
        return [a for a in ACTIONS if self.decide(who, a)]

    def effective(self) -> dict[str, dict[str, list[str]]]:
        """The matrix in force: action -> {"remote": roles, "direct": roles}."""
        out = {}
        for action, rule in MATRIX.items():
            out[action] = {
                kind: [r for r in ROLES if r in roles and (r, action) not in self.restrictions]
                for kind, roles in ((REMOTE, rule.remote), (DIRECT, rule.direct))
            }
        return out


def camera_in_scope(who: Principal, camera_group: str) -> bool:
    """Police see only the groups assigned to them (R11); others are limited only when given groups."""
    if who.role == CONSOLE:
        return True
    if who.camera_groups:
        return camera_group in who.camera_groups
    return who.role != POLICE


def validate_restriction(role: str, action: str) -> None:
    """A restriction must name a real role and action that the order grants it (tighten only)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    rule = MATRIX.get(action)
    if rule is None:
        raise ValueError(f"unknown action {action!r}; actions: {', '.join(ACTIONS)}")
    if action in ("session.direct", "session.remote", "account.self") and role == ADMIN:
        raise ValueError("the administrator's own sign-in cannot be withdrawn (it would lock everyone out)")
    if role not in rule.remote and role not in rule.direct:
        raise ValueError(f"role {role} has no {action} under the order: nothing to withdraw")


def _refusal(who: Principal, rule: Rule, action: str) -> str:
    if action.startswith("archive.") and who.role not in _ARCHIVE_ROLES:
        return "recorded video only for the Responsible Department and the contractor (A4.4)"
    if who.access == REMOTE and who.role in rule.direct:
        if who.role == CONTRACTOR:
            return "the contractor has no remote access (A4.3, C4)"
        return f"{rule.text}: only on site, not in a remote session ({rule.clause})"
    if who.access == DIRECT and who.role in rule.remote:
        return f"{rule.text}: role {who.role} has remote access only, not on site ({rule.clause})"
    return f"{rule.text}: not permitted to role {who.role} ({rule.clause})"
