"""An ONVIF camera for the tests: IPyCam's ONVIF device (PyPI `ipycam`: its device, media
and PTZ services, WS-Security digest, WS-Discovery) serving the stream addresses of our real
RTSP server (camsim) instead of its own encoder.

    python tests/onvif_device.py --port 18080 --main rtsp://127.0.0.1:8554/gen1 \
        --sub rtsp://127.0.0.1:8554/gen1 --user admin --password pw [--discovery] [--model M]

Prints ``ready`` once it listens. Three fixes to the emulator, here rather than in a fork,
each where it departs from the standards a real camera follows: it demands WS-Security on
GetSystemDateAndTime, which ONVIF Core (access class PRE_AUTH) answers to anyone so that a
client can learn the device's clock before signing; its PTZ replies use the
``ptz:``/``tptz:`` prefixes its SOAP envelope never declares (a strict client such as zeep
refuses the XML), so the envelope declares them; and its WS-Discovery answer is a bare
``ProbeMatch`` where WS-Discovery 2005/04 has ``ProbeMatches`` around it (Action
…/ProbeMatches), so the answer is wrapped as the standard has it.
"""

from __future__ import annotations

import argparse
import signal
import socketserver
import sys
from urllib.parse import urlsplit

from ipycam.config import CameraConfig
from ipycam.http import IPCameraHTTPHandler
from ipycam.onvif import ONVIFService
from ipycam.ptz import PTZController

PTZ_NS = 'xmlns:ptz="http://www.onvif.org/ver20/ptz/wsdl" xmlns:tptz="http://www.onvif.org/ver20/ptz/wsdl" '


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class _Camera:
    """The parts of ipycam's IPCamera that its HTTP handler reads for ONVIF."""


def _shift_clock(offset: float) -> None:
    """The device's clock off by ``offset`` seconds: what it reports (GetSystemDateAndTime)
    and what it checks WS-Security time stamps against, as a camera with a wrong clock."""
    import datetime as _dt
    import time as _time
    import types

    import ipycam.onvif as dev

    dev.time = types.SimpleNamespace(**{k: getattr(_time, k) for k in dir(_time) if not k.startswith("_")})
    dev.time.gmtime = lambda secs=None: _time.gmtime((_time.time() if secs is None else secs) + offset)
    dev.time.time = lambda: _time.time() + offset

    class _Shifted(_dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return _dt.datetime.now(tz) + _dt.timedelta(seconds=offset)

    dev.datetime = _Shifted


def _events(cam, period: float, host: str, port: int) -> None:
    """An ONVIF event service for the emulator (ours: IPyCam has none): PullPoint
    subscriptions (CreatePullPointSubscription, PullMessages, Renew, Unsubscribe,
    SetSynchronizationPoint) delivering the camera's motion detector — tns1:VideoSource/
    MotionAlarm, State true for 2 s every ``period`` s — as a camera's firmware would."""
    import datetime as _dt
    import threading
    import time as _time

    url = f"http://{host}:{port}/onvif/events_service"
    pull = f"http://{host}:{port}/onvif/pullpoint"
    t = cam.onvif._templates
    t["get_services"] = t["get_services"].replace("</tds:GetServicesResponse>", (
        "<tds:Service><tds:Namespace>http://www.onvif.org/ver10/events/wsdl</tds:Namespace>"
        f"<tds:XAddr>{url}</tds:XAddr><tds:Version><tt:Major>2</tt:Major><tt:Minor>5</tt:Minor></tds:Version>"
        "</tds:Service></tds:GetServicesResponse>"))
    t["get_capabilities"] = t["get_capabilities"].replace("</tds:Capabilities>", (
        f"<tt:Events><tt:XAddr>{url}</tt:XAddr><tt:WSSubscriptionPolicySupport>false</tt:WSSubscriptionPolicySupport>"
        "<tt:WSPullPointSupport>true</tt:WSPullPointSupport>"
        "<tt:WSPausableSubscriptionManagerInterfaceSupport>false</tt:WSPausableSubscriptionManagerInterfaceSupport>"
        "</tt:Events></tds:Capabilities>"))
    queue: list[tuple[float, bool]] = []
    lock = threading.Lock()

    def detector():
        _time.sleep(min(3.0, period))
        while True:
            with lock:
                queue.append((_time.time(), True))
            _time.sleep(2.0)
            with lock:
                queue.append((_time.time(), False))
            _time.sleep(max(0.0, period - 2.0))

    threading.Thread(target=detector, daemon=True).start()

    def iso(ts: float) -> str:
        return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    env = ('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tt="http://www.onvif.org/ver10/schema" '
           'xmlns:tev="http://www.onvif.org/ver10/events/wsdl" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" '
           'xmlns:wsa5="http://www.w3.org/2005/08/addressing" xmlns:tns1="http://www.onvif.org/ver10/topics">'
           '<s:Body>{}</s:Body></s:Envelope>')
    original = cam.onvif.handle_action

    def handle(action: str, body: str):
        now = _time.time()
        times = f"<wsnt:CurrentTime>{iso(now)}</wsnt:CurrentTime><wsnt:TerminationTime>{iso(now + 60)}</wsnt:TerminationTime>"
        if "CreatePullPointSubscription" in body:
            return env.format("<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference>"
                              f"<wsa5:Address>{pull}</wsa5:Address></tev:SubscriptionReference>{times}"
                              "</tev:CreatePullPointSubscriptionResponse>")
        if "PullMessages" in body:
            with lock:
                got, queue[:] = list(queue), []
            msgs = "".join(
                '<wsnt:NotificationMessage><wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/'
                'ConcreteSet">tns1:VideoSource/MotionAlarm</wsnt:Topic><wsnt:Message>'
                f'<tt:Message UtcTime="{iso(ts)}" PropertyOperation="Changed"><tt:Source>'
                '<tt:SimpleItem Name="Source" Value="VideoSource_1"/></tt:Source><tt:Data>'
                f'<tt:SimpleItem Name="State" Value="{"true" if state else "false"}"/></tt:Data></tt:Message>'
                '</wsnt:Message></wsnt:NotificationMessage>' for ts, state in got)
            return env.format(f"<tev:PullMessagesResponse><tev:CurrentTime>{iso(now)}</tev:CurrentTime>"
                              f"<tev:TerminationTime>{iso(now + 60)}</tev:TerminationTime>{msgs}"
                              "</tev:PullMessagesResponse>")
        if "<wsnt:Renew" in body or ":Renew>" in body or ":Renew " in body:
            return env.format(f"<wsnt:RenewResponse>{times}</wsnt:RenewResponse>")
        if "Unsubscribe" in body:
            return env.format("<wsnt:UnsubscribeResponse/>")
        if "SetSynchronizationPoint" in body:
            return env.format("<tev:SetSynchronizationPointResponse/>")
        return original(action, body)

    cam.onvif.handle_action = handle


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--main", required=True, help="RTSP URL of the main stream")
    ap.add_argument("--sub", required=True, help="RTSP URL of the sub stream")
    ap.add_argument("--user", default="")
    ap.add_argument("--password", default="")
    ap.add_argument("--model", default="VirtualCam-1")
    ap.add_argument("--manufacturer", default="PythonCam")
    ap.add_argument("--serial", default="PY-000001")
    ap.add_argument("--firmware", default="")
    ap.add_argument("--discovery", action="store_true", help="answer WS-Discovery probes (network namespaces only)")
    ap.add_argument("--clock-offset", type=float, default=0.0, help="the device's clock, this many seconds off")
    ap.add_argument("--motion-every", type=float, default=0.0, help="offer an event service: motion for 2 s every S s")
    a = ap.parse_args()
    # The emulator keeps its presets in ptz_presets.json in its working folder: a fresh
    # folder per device, so each test's camera starts with the emulator's own presets only
    # and nothing is written into the checkout.
    import os
    import tempfile

    os.chdir(tempfile.mkdtemp(prefix="onvif-device-"))
    if a.clock_offset:
        _shift_clock(a.clock_offset)

    main_u, sub_u = urlsplit(a.main), urlsplit(a.sub)

    class Config(CameraConfig):  # the stream addresses are our RTSP server's, wherever it runs
        main_stream_rtsp = property(lambda self: a.main)
        sub_stream_rtsp = property(lambda self: a.sub)

    cfg = Config()
    cfg.local_ip = a.host
    cfg.onvif_port = a.port
    cfg.rtsp_port = main_u.port or 554
    cfg.main_stream_name = main_u.path.lstrip("/")
    cfg.sub_stream_name = sub_u.path.lstrip("/")
    cfg.name, cfg.model, cfg.manufacturer, cfg.serial_number = a.model, a.model, a.manufacturer, a.serial
    if a.firmware:
        cfg.firmware_version = a.firmware
    cfg.main_width, cfg.main_height, cfg.sub_width, cfg.sub_height = 1280, 720, 640, 360
    cfg.set_credentials(a.user, a.password)
    cam = _Camera()
    cam.config = cfg
    cam.ptz = PTZController(output_width=1280, output_height=720, max_zoom=4.0)
    cam.onvif = ONVIFService(cfg, cam.ptz)
    cam.onvif._templates["envelope"] = cam.onvif._templates["envelope"].replace("xmlns:trt=", PTZ_NS + "xmlns:trt=")
    verify = cam.onvif.verify_usernametoken
    cam.onvif.verify_usernametoken = lambda body: (
        ("GetSystemDateAndTime" in body and "UsernameToken" not in body) or verify(body))
    t = cam.onvif._templates
    t["probe_match"] = (t["probe_match"].replace("discovery/ProbeMatch<", "discovery/ProbeMatches<")
                        .replace("<d:ProbeMatch>", "<d:ProbeMatches><d:ProbeMatch>")
                        .replace("</d:ProbeMatch>", "</d:ProbeMatch></d:ProbeMatches>"))
    if a.motion_every:
        _events(cam, a.motion_every, a.host, a.port)
    IPCameraHTTPHandler.camera = cam
    server = _Server((a.host, a.port), IPCameraHTTPHandler)
    if a.discovery:
        from ipycam.discovery import WSDiscoveryServer

        WSDiscoveryServer(cam.onvif).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
