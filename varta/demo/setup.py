"""``varta demo``: demonstration cameras from a built-in RTSP simulator, registered in Varta.

Nothing here is used by a real installation; the cameras are real RTSP streams served by
GStreamer on 127.0.0.1, so the demo records exactly as a town hall's server would.

The first cameras show real footage (Intel's CC BY 4.0 sample clips in ``footage/``, see its
README) with analytics rules, so that a new user sees alarms with pictures and directions;
the rest show synthetic test patterns.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from varta.access import credentials
from varta.access.accounts import Accounts
from varta.analytics.models import DEFAULT_MODEL, MODELS, model_path, models_dir
from varta.analytics.store import AnalyticsSettings
from varta.cameras.model import Camera
from varta.cameras.registry import CameraRegistry
from varta.cameras.schedule import Schedule
from varta.demo.media import make_test_stream
from varta.demo.simulator import CameraSimulator, gst_rtsp_available

FOOTAGE = Path(__file__).resolve().with_name("footage")
# The command as the user can type it: the virtual environment's own, which is not on PATH
# unless the environment is activated.
_BIN = Path(sys.executable).parent / "varta"
VARTA = str(_BIN) if _BIN.is_file() and not shutil.which("varta") else "varta"

# Real footage first, with rules that fire on it (docs/analytics.md for the JSON). Points are
# shares of the picture; the rules are armed around the clock in the demo. Rule names are
# the city's words, shown as written in both languages of the console: Ukrainian here.
#   khol: people walk in from the bottom, stand at the table (feet at y 0.85-1.0), and
#         leave to the right across x = 0.8.
#   parkovka: a cyclist (top right, ~7 s into the loop), a walker (top left, ~21 s) and a car
#         that drives in from the bottom and leaves to the left across x = 0.2 (~28 s).
_REAL = [
    ("Miska rada, khol", "building_inside", "centre", 46.8478, 35.3661, "one-by-one-person-detection.ts", {
        "fps": 5, "priority": "high",
        "rules": [
            {"name": "Людина в холі", "type": "zone", "zone": "khol",
             "polygon": [[0, 0.55], [1, 0.55], [1, 1], [0, 1]], "classes": ["person"], "min_dwell_s": 1,
             "severity": "alarm"},
            # Drawn top to bottom: side A is the picture's right, so b_to_a is left to right.
            {"name": "Вихід праворуч", "type": "line", "zone": "vykhid",
             "a": [0.8, 0.5], "b": [0.8, 1.0], "direction": "b_to_a", "classes": ["person"],
             "severity": "warning"},
        ],
    }),
    ("Miska rada, parkovka", "building_perimeter", "centre", 46.8475, 35.3668, "person-bicycle-car-detection.ts", {
        "fps": 5, "priority": "high",
        "rules": [
            {"name": "Людина на парковці", "type": "zone", "zone": "parkovka",
             "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]], "classes": ["person"], "min_dwell_s": 1,
             "severity": "alarm"},
            # a_to_b: from the picture's right to its left (towards the western exit).
            {"name": "Авто виїжджає на захід", "type": "line", "zone": "vyizd",
             "a": [0.2, 0.0], "b": [0.2, 1.0], "direction": "a_to_b", "classes": ["car"],
             "severity": "warning"},
        ],
    }),
]

# Places in Melitopol for the map (approximate), with the order's camera kinds.
_PLACES = [
    ("Ploshcha Peremohy", "square", "centre", 46.8489, 35.3653),
    ("Prospekt B. Khmelnytskoho / vul. Heroiv Ukrainy", "intersection", "centre", 46.8440, 35.3680),
    ("Zupynka 'Avtovokzal'", "transport_stop", "north", 46.8627, 35.3745),
    ("Miska rada, perymetr", "building_perimeter", "centre", 46.8478, 35.3660),
    ("Vul. Hetmanska", "street", "south", 46.8370, 35.3720),
]
_PATTERNS = ["testsrc2", "testsrc", "smptebars", "rgbtestsrc"]


def start_demo(settings, engine, count: int, rtsp_port: int):
    ok, why = gst_rtsp_available()
    if not ok:
        raise SystemExit(f"varta demo needs the GStreamer RTSP server for its simulated cameras: {why}")
    media = settings.home / "demo"
    media.mkdir(parents=True, exist_ok=True)
    mounts: dict[str, Path] = {}
    places: dict[str, tuple] = {}
    analytics: dict[str, dict] = {}
    for i in range(1, count + 1):
        cam_id = f"mel-demo-{i:02d}"
        if i <= len(_REAL):
            name, kind, group, lat, lon, clip, rules = _REAL[i - 1]
            mounts[cam_id] = FOOTAGE / clip
            analytics[cam_id] = rules
        else:
            j = i - len(_REAL) - 1
            name, kind, group, lat, lon = _PLACES[j % len(_PLACES)]
            print(f"preparing demonstration video for {cam_id}…", flush=True)
            mounts[cam_id] = make_test_stream(
                media / f"{cam_id}.ts", width=1280, height=720, fps=25, seconds=30, bitrate="1500k",
                label=cam_id, pattern=_PATTERNS[j % len(_PATTERNS)],
            )
        places[cam_id] = (name, kind, group, lat, lon)
    sim = CameraSimulator(mounts, port=rtsp_port)
    sim.start()
    registry = CameraRegistry(engine)
    settings_store = AnalyticsSettings(engine)
    for cam_id in mounts:
        name, kind, group, lat, lon = places[cam_id]
        registry.upsert(Camera(
            id=cam_id, main_url=sim.url(cam_id), name=f"{name} (demo)", kind=kind, group_name=group,
            address=f"{name}, Melitopol", latitude=lat, longitude=lon,
            retention_days=settings.default_retention_days, schedule=Schedule.always(),
        ))
        # The footage cameras' rules, unless this demo home already has settings for them
        # (someone trying out rules keeps theirs across restarts).
        if cam_id in analytics and settings_store.get_raw(cam_id) is None:
            settings_store.set(cam_id, analytics[cam_id])

    logins = _demo_accounts(engine)
    real = [f"{cam_id} ({places[cam_id][0]})" for cam_id in analytics]

    def analytics_line() -> str:
        if not real:
            return ""
        if not settings.analytics:
            return "  analytics is switched off in the settings (analytics = false): no alarms\n"
        if _detector_installed(settings):
            return (f"  real footage with analytics: {', '.join(real)}: alarms with pictures and directions "
                    f"appear within a minute (console: Events)\n")
        home = f"VARTA_HOME={settings.home} {VARTA} "
        return (f"  no detector model yet, so motion only is analysed meanwhile; for alarms on people and "
                f"vehicles install it: {home}model install {DEFAULT_MODEL}  (offline: {home}model "
                f"install {DEFAULT_MODEL} --from FILE), then start the demo again\n")

    def banner(listen: str, remote: str | None = None) -> str:
        synthetic = len(mounts) - len(real)
        return (
            f"\nVarta demo is running: http://{listen}/  (API: http://{listen}/api/docs)\n"
            f"  {len(mounts)} demonstration cameras from the built-in RTSP simulator on 127.0.0.1:{sim.port}"
            f" ({len(real)} from real footage, Intel sample videos, CC BY 4.0"
            + (f"; {synthetic} test pattern{'s' if synthetic != 1 else ''}" if synthetic else "") + ")\n"
            + analytics_line()
            + f"  data folder: {settings.home.resolve()}  (SQLite database and recordings)\n"
            f"  first login (printed once; new passwords at every demo start):\n"
            + "".join(f"    {login:<9} {pw}   {what}\n" for login, pw, what in logins if login != "mayor"
                      or remote)
            + f"  sign in: curl -c jar -X POST http://{listen}/api/auth/login -H 'Content-Type: application/json' "
            f"-d '{{\"login\": \"operator\", \"password\": \"…\"}}'\n"
            f"  http://{listen}/ is on-site (direct) access: this machine's own console\n"
            + (f"  http://{remote}/ is remote access, as from outside the city hall: the mayor signs in there "
               f"(A4.3: the mayor's access is remote only) and enrols a second factor at the first sign-in: scan "
               f"the QR code with an authenticator app, or read the code with\n"
               f"      .venv/bin/python -c \"import pyotp; print(pyotp.TOTP('SECRET').now())\"   (SECRET: shown "
               f"under the QR code)\n"
               f"  the whole order in a few minutes: operator registers a request (Evidence → Requests), mayor "
               f"resolves it, operator prepares the package and verifies it\n" if remote else "")
            + f"  try:  VARTA_HOME={settings.home} {VARTA} recordings --camera mel-demo-01 --from now-5m --to now\n"
            f"Stop with Ctrl-C."
        )

    return sim, banner


def _detector_installed(settings) -> bool:
    """The configured model file, or the default one as `varta model install` leaves it."""
    return model_path(settings).is_file() or (
        not settings.detector_model and (models_dir(settings.home) / MODELS[DEFAULT_MODEL].filename).is_file())


def _demo_accounts(engine) -> list[tuple[str, str, str]]:
    """An administrator, a Responsible Department operator and the mayor (who resolves
    requests), with fresh generated passwords (no default password, even in the demo)."""
    accounts = Accounts(engine)
    out = []
    for login, name, role, what in (
        ("admin", "Адміністратор Демо Системи", "admin", "administrator: accounts, cameras, policy (sees no video)"),
        ("operator", "Оператор Демо Відділу", "department", "Responsible Department: live, archive, export, journal"),
        ("mayor", "Міський Голова Демо", "mayor", "mayor: resolves requests for footage (remote access only)"),
    ):
        password = credentials.generate_password()
        if accounts.get(login) is None:
            accounts.add(login, name, role, position="demo", organisation="Varta demo", password=password)
        else:
            accounts.change_password(login, password)
            accounts.set_active(login, True)
        out.append((login, password, what))
    return out
