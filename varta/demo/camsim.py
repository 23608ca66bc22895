#!/usr/bin/python3
"""RTSP camera simulator: serve looping H.264 MPEG-TS files as RTSP cameras on 127.0.0.1.

Standalone script (stdlib + GStreamer's ``gi`` bindings, no ``varta`` imports) because
the bindings exist only for Debian's ``/usr/bin/python3``, not for the project's venv::

    /usr/bin/python3 varta/demo/camsim.py --port 8554 \\
        --mount cam1=/path/a.ts --mount cam2=/path/b.ts \\
        [--user U --password P] [--ready-file PATH] [--exit-with-parent]

Each mount is served at ``rtsp://127.0.0.1:PORT/NAME``. ``--port 0`` picks a free port.
Once listening it prints ``READY rtsp://127.0.0.1:PORT`` (flushed) and writes the same
line to ``--ready-file``. SIGTERM/SIGINT stop it cleanly (exit status 0).

The files must be made by ``varta.demo.media`` (H.264 without B-frames, fixed GOP,
MPEG-TS with PTS starting at 0); no encoding happens here, so a client costs about
1% of a core.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import tempfile

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

HOST = "127.0.0.1"  # never listen on other interfaces: tests must not leave the machine
ROLE = "varta-viewer"

# Exit statuses the parent (varta.demo.simulator) can act upon.
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_BIND_FAILED = 3  # port busy: the parent may retry a restart on the same port

# Why these elements:
# * multifilesrc loop=true re-reads the file forever, like a camera that never stops;
# * tsdemux rebases timestamps when the file wraps, so PTS (hence RTP timestamps) stay
#   monotonic across loops (a raw .h264 has no PTS; qtdemux/MP4 cannot loop this way);
# * config-interval=-1 repeats SPS/PPS before every IDR, as cameras do, so a client
#   joining mid-stream can decode from the next key frame.
LAUNCH = (
    "( multifilesrc location={location} loop=true ! tsdemux ! h264parse"
    " ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
)


def _gst_quote(path: str) -> str:
    """Quote a file path for a gst-launch description."""
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_mount(spec: str) -> tuple[str, str]:
    name, sep, path = spec.partition("=")
    name = name.strip("/")
    if not sep or not path or not re.fullmatch(r"[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*", name):
        raise argparse.ArgumentTypeError(f"expected NAME=PATH.ts, got {spec!r}")
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise argparse.ArgumentTypeError(f"mount {name!r}: no such file {path}")
    return name, path


def make_factory(path: str, protocols: GstRtsp.RTSPLowerTrans) -> GstRtspServer.RTSPMediaFactory:
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(LAUNCH.format(location=_gst_quote(path)))
    # Not shared: a shared pipeline that is past position 0 gets seeked on PLAY, which
    # tsdemux cannot do (the client gets 503). One pipeline per client always starts at
    # 0 and needs no seek, like a real camera's per-session stream.
    factory.set_shared(False)
    factory.set_protocols(protocols)
    return factory


class SessionStats:
    """Open RTSP sessions per mount (each client session builds its own media), written to a
    JSON file at every change so that a test can check "one session per camera stream"."""

    def __init__(self, path: str | None):
        self.path = path
        self.active: dict[str, int] = {}
        self.opened: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    def watch(self, name: str, factory: GstRtspServer.RTSPMediaFactory) -> None:
        self.active.setdefault(name, 0)
        self.opened.setdefault(name, 0)
        self.peak.setdefault(name, 0)
        factory.connect("media-configure", self._configured, name)

    def _configured(self, _factory, media, name: str) -> None:
        self.active[name] += 1
        self.opened[name] += 1
        self.peak[name] = max(self.peak[name], self.active[name])
        media.connect("unprepared", self._unprepared, name)
        self.write()

    def _unprepared(self, _media, name: str) -> None:
        self.active[name] = max(0, self.active[name] - 1)
        self.write()

    def write(self) -> None:
        if self.path:
            data = {n: {"active": self.active[n], "opened": self.opened[n], "peak": self.peak[n]}
                    for n in self.active}
            write_ready_file(self.path, __import__("json").dumps(data))


def build_server(args: argparse.Namespace, stats: "SessionStats | None" = None) -> GstRtspServer.RTSPServer:
    server = GstRtspServer.RTSPServer()
    server.set_address(HOST)
    server.set_service(str(args.port))
    # Default backlog (5) makes a burst of 64+ clients connecting at once wait for SYN
    # retransmits; a camera farm reconnecting after an outage does exactly that.
    server.set_backlog(max(args.backlog, 1))
    if args.threads > 0:
        # Handle RTSP clients on a pool of threads instead of the main loop alone, so
        # the server can use more than one core with many clients.
        server.get_thread_pool().set_max_threads(args.threads)

    # TCP-interleaved only by default: UDP transport would bind UDP ports on all
    # interfaces. Clients asking for UDP get 461 and fall back to TCP (ffmpeg does).
    protocols = GstRtsp.RTSPLowerTrans.TCP
    if args.allow_udp:
        protocols |= GstRtsp.RTSPLowerTrans.UDP

    mounts = server.get_mount_points()
    for name, path in args.mount:
        factory = make_factory(path, protocols)
        if args.user is not None:
            # Only clients holding a token with our role may see and construct media.
            factory.add_role_from_structure(Gst.Structure.new_from_string(
                f"{ROLE}, media.factory.access=(boolean)true,"
                " media.factory.construct=(boolean)true"
            ))
        if stats is not None:
            stats.watch(name, factory)
        mounts.add_factory("/" + name, factory)

    if args.user is not None:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, ROLE)
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        # No default token: unauthenticated requests are answered 401 with a
        # WWW-Authenticate: Basic challenge.
        server.set_auth(auth)
    return server


def write_ready_file(path: str, line: str) -> None:
    """Write atomically so that a poller never reads a half-written line."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".camsim-ready-", dir=directory)
    with os.fdopen(fd, "w") as f:
        f.write(line + "\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8554, help="TCP port (0: pick a free one)")
    parser.add_argument("--mount", type=parse_mount, action="append", required=True,
                        metavar="NAME=FILE.ts", help="serve FILE.ts at /NAME (repeatable)")
    parser.add_argument("--user", help="require RTSP basic auth with this user name")
    parser.add_argument("--password", help="password for --user")
    parser.add_argument("--ready-file", help="also write the READY line to this file")
    parser.add_argument("--allow-udp", action="store_true",
                        help="also offer RTP over UDP (binds UDP ports on all interfaces)")
    parser.add_argument("--threads", type=int, default=0,
                        help="RTSP client threads (0: all clients on the main loop)")
    parser.add_argument("--backlog", type=int, default=256, help="listen backlog")
    parser.add_argument("--stats-file", help="keep the open RTSP sessions per mount in this JSON file")
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="exit when the parent process dies (no orphaned servers)")
    args = parser.parse_args(argv)
    if (args.user is None) != (args.password is None):
        parser.error("--user and --password go together")
    names = [name for name, _ in args.mount]
    if len(set(names)) != len(names):
        parser.error(f"duplicate mount names in {names}")

    Gst.init(None)
    missing = [e for e in ("multifilesrc", "tsdemux", "h264parse", "rtph264pay")
               if Gst.ElementFactory.find(e) is None]
    if missing:
        print(f"camsim: missing GStreamer elements: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE

    stats = SessionStats(args.stats_file)
    server = build_server(args, stats)
    stats.write()
    loop = GLib.MainLoop()
    # attach() creates, binds and listens on the socket synchronously; 0 means failure.
    if server.attach(None) == 0:
        print(f"camsim: cannot listen on {HOST}:{args.port} (port in use?)", file=sys.stderr)
        return EXIT_BIND_FAILED
    port = server.get_bound_port()

    def on_signal() -> bool:
        loop.quit()
        return GLib.SOURCE_REMOVE

    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum, on_signal)

    if args.exit_with_parent:
        parent = os.getppid()

        def check_parent() -> bool:
            if os.getppid() != parent:  # re-parented: our parent died
                loop.quit()
                return GLib.SOURCE_REMOVE
            return GLib.SOURCE_CONTINUE

        GLib.timeout_add_seconds(1, check_parent)

    ready = f"READY rtsp://{HOST}:{port}"
    print(ready, flush=True)
    if args.ready_file:
        write_ready_file(args.ready_file, ready)
    for name, path in args.mount:
        print(f"camsim: rtsp://{HOST}:{port}/{name} <- {path}", file=sys.stderr, flush=True)

    loop.run()
    print("camsim: stopping", file=sys.stderr, flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # Leave without tearing the client pipelines down one by one (a camera losing power
    # sends no TEARDOWN either): exit is immediate however many clients are connected,
    # and the kernel closes every client socket, which clients see as the camera going away.
    os._exit(EXIT_OK)


if __name__ == "__main__":
    sys.exit(main())
