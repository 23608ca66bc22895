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
    a = ap.parse_args()
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
