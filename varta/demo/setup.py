"""``varta demo``: demonstration cameras from a built-in RTSP simulator, registered in Varta.

Nothing here is used by a real installation; the cameras are real RTSP streams served by
GStreamer on 127.0.0.1, so the demo records exactly as a town hall's server would.
"""

from __future__ import annotations

from varta.access import credentials
from varta.access.accounts import Accounts
from varta.cameras.model import Camera
from varta.cameras.registry import CameraRegistry
from varta.cameras.schedule import Schedule
from varta.demo.media import make_test_stream
from varta.demo.simulator import CameraSimulator, gst_rtsp_available

# Places in Melitopol for the map (approximate), with the order's camera kinds.
_PLACES = [
    ("Ploshcha Peremohy", "square", "centre", 46.8489, 35.3653),
    ("Prospekt B. Khmelnytskoho / vul. Heroiv Ukrainy", "intersection", "centre", 46.8440, 35.3680),
    ("Zupynka 'Avtovokzal'", "transport_stop", "north", 46.8627, 35.3745),
    ("Miska rada, perymetr", "building_perimeter", "centre", 46.8478, 35.3660),
    ("Vul. Hetmanska", "street", "south", 46.8370, 35.3720),
    ("Miska rada, khol", "building_inside", "centre", 46.8478, 35.3661),
]
_PATTERNS = ["testsrc2", "testsrc", "smptebars", "rgbtestsrc"]


def start_demo(settings, engine, count: int, rtsp_port: int):
    ok, why = gst_rtsp_available()
    if not ok:
        raise SystemExit(f"varta demo needs the GStreamer RTSP server for its simulated cameras: {why}")
    media = settings.home / "demo"
    media.mkdir(parents=True, exist_ok=True)
    mounts = {}
    for i in range(1, count + 1):
        cam_id = f"mel-demo-{i:02d}"
        print(f"preparing demonstration video for {cam_id}…", flush=True)
        mounts[cam_id] = make_test_stream(
            media / f"{cam_id}.ts", width=1280, height=720, fps=25, seconds=30, bitrate="1500k",
            label=cam_id, pattern=_PATTERNS[(i - 1) % len(_PATTERNS)],
        )
    sim = CameraSimulator(mounts, port=rtsp_port)
    sim.start()
    registry = CameraRegistry(engine)
    for i, cam_id in enumerate(mounts, start=1):
        name, kind, group, lat, lon = _PLACES[(i - 1) % len(_PLACES)]
        registry.upsert(Camera(
            id=cam_id, main_url=sim.url(cam_id), name=f"{name} (demo)", kind=kind, group_name=group,
            address=f"{name}, Melitopol", latitude=lat, longitude=lon,
            retention_days=settings.default_retention_days, schedule=Schedule.always(),
        ))

    logins = _demo_accounts(engine)

    def banner(listen: str) -> str:
        return (
            f"\nVarta demo is running: http://{listen}/  (API: http://{listen}/api/docs)\n"
            f"  {len(mounts)} demonstration cameras from the built-in RTSP simulator on 127.0.0.1:{sim.port}\n"
            f"  data folder: {settings.home.resolve()}  (SQLite database and recordings)\n"
            f"  first login (printed once; new passwords at every demo start):\n"
            + "".join(f"    {login:<9} {pw}   {what}\n" for login, pw, what in logins)
            + f"  sign in: curl -c jar -X POST http://{listen}/api/auth/login -H 'Content-Type: application/json' "
            f"-d '{{\"login\": \"operator\", \"password\": \"…\"}}'\n"
            f"  the server listens on {listen} only: sessions from this machine are on-site (direct) access\n"
            f"  try:  VARTA_HOME={settings.home} varta recordings --camera mel-demo-01 --from now-5m --to now\n"
            f"Stop with Ctrl-C."
        )

    return sim, banner


def _demo_accounts(engine) -> list[tuple[str, str, str]]:
    """An administrator and a Responsible Department operator, with fresh generated passwords
    (no default password, even in the demo)."""
    accounts = Accounts(engine)
    out = []
    for login, name, role, what in (
        ("admin", "Адміністратор Демо Системи", "admin", "administrator: accounts, cameras, policy (sees no video)"),
        ("operator", "Оператор Демо Відділу", "department", "Responsible Department: live, archive, export, journal"),
    ):
        password = credentials.generate_password()
        if accounts.get(login) is None:
            accounts.add(login, name, role, position="demo", organisation="Varta demo", password=password)
        else:
            accounts.change_password(login, password)
            accounts.set_active(login, True)
        out.append((login, password, what))
    return out
