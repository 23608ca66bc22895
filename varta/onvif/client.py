"""Talking to one ONVIF device (adapter over onvif-zeep-async, WS-Security digest): what it
is, its clock, its profiles and stream addresses, and PTZ. Every call has a deadline, and
every failure becomes an OnvifError saying what went wrong in words (a wrong password, a
device that does not answer, a SOAP fault). The device's clock offset is measured first and
the security token's time adjusted to it (adjust_time): a camera an hour off still answers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

from varta.onvif.model import Device, OnvifAuthError, OnvifError, OnvifFault, OnvifTimeout, Profile

log = logging.getLogger("varta.onvif")
logging.getLogger("zeep").setLevel(logging.CRITICAL)  # a device's odd field is logged there, not fatal

DEFAULT_TIMEOUT_S = 8.0


def endpoint(xaddr: str) -> tuple[str, int]:
    """http://host[:port]/onvif/device_service → (host, port); a bare host:port is taken too."""
    text = xaddr if "://" in xaddr else f"http://{xaddr}"
    try:  # "http://[x" (Invalid IPv6 URL) and ports out of range raise ValueError
        p = urlsplit(text)
        port = p.port
    except ValueError as exc:
        raise OnvifError(f"not an ONVIF device address: {xaddr!r} ({exc})") from None
    if p.scheme not in ("http", "https") or not p.hostname:
        raise OnvifError(f"not an ONVIF device address: {xaddr!r} (http://HOST[:PORT]/onvif/device_service)")
    return p.hostname, port or (443 if p.scheme == "https" else 80)


def device_url(xaddr: str) -> str:
    host, port = endpoint(xaddr)
    return f"http://{host}:{port}/onvif/device_service"


def _word(exc: BaseException, where: str) -> OnvifError:
    from onvif.exceptions import ONVIFAuthError, ONVIFError, ONVIFTimeoutError
    from zeep.exceptions import Fault, TransportError

    text = str(getattr(exc, "message", "") or exc)
    low = text.lower()
    if isinstance(exc, (asyncio.TimeoutError, ONVIFTimeoutError)):
        return OnvifTimeout(f"{where}: no answer in time")
    if isinstance(exc, ONVIFAuthError) or "not authorized" in low or "notauthorized" in low or \
            (isinstance(exc, TransportError) and getattr(exc, "status_code", 0) == 401):
        return OnvifAuthError(f"{where}: the device refused the user name or password")
    if isinstance(exc, Fault):
        return OnvifFault(f"{where}: the device answered with a SOAP fault: {text.strip()[:200]}")
    if isinstance(exc, (ONVIFError, TransportError, OSError)) or exc.__class__.__module__.startswith("aiohttp"):
        if "unauthorized" in low or " 401" in low:
            return OnvifAuthError(f"{where}: the device refused the user name or password")
        return OnvifError(f"{where}: cannot reach the device ({text.strip()[:160] or exc.__class__.__name__})")
    return OnvifError(f"{where}: {exc.__class__.__name__}: {text.strip()[:160]}")


class Client:
    """One session with a device: ``async with Client(xaddr, user, password) as c: …``."""

    def __init__(self, xaddr: str, user: str, password: str, timeout_s: float = DEFAULT_TIMEOUT_S):
        self.xaddr = device_url(xaddr)
        self.host, self.port = endpoint(xaddr)
        self.user, self.password, self.timeout_s = user, password, timeout_s
        self.cam = None
        self._services: dict[str, object] = {}

    async def _call(self, coro, what: str):
        try:
            return await asyncio.wait_for(coro, self.timeout_s)
        except OnvifError:
            raise
        except BaseException as exc:  # noqa: BLE001 — every failure is worded
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise _word(exc, f"{self.host}:{self.port} {what}") from None

    async def __aenter__(self) -> "Client":
        import onvif
        from onvif import ONVIFCamera

        wsdl = os.path.join(os.path.dirname(onvif.__file__), "wsdl")
        self.cam = ONVIFCamera(self.host, self.port, self.user or None, self.password or None, wsdl, adjust_time=True)
        try:
            await self._call(self.cam.update_xaddrs(), "connecting")
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        if self.cam is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.cam.close(), 5)

    async def _service(self, name: str):
        if name not in self._services:
            make = {"devicemgmt": self.cam.create_devicemgmt_service, "media": self.cam.create_media_service,
                    "ptz": self.cam.create_ptz_service}[name]
            self._services[name] = await self._call(make(), f"opening the {name} service")
        return self._services[name]

    async def clock_offset(self) -> float | None:
        """The device's UTC clock minus ours, seconds (None when it does not say)."""
        dm = await self._service("devicemgmt")
        t0 = time.time()
        got = await self._call(dm.GetSystemDateAndTime(), "reading the clock")
        t1 = time.time()
        utc = getattr(got, "UTCDateTime", None)
        try:
            d, t = utc.Date, utc.Time
            theirs = datetime(int(d.Year), int(d.Month), int(d.Day), int(t.Hour), int(t.Minute), int(t.Second),
                              tzinfo=timezone.utc).timestamp()
        except (AttributeError, TypeError, ValueError):
            return None
        return round(theirs - (t0 + t1) / 2, 1)

    async def device(self, resolve_streams: bool = True) -> Device:
        dm = await self._service("devicemgmt")
        info = await self._call(dm.GetDeviceInformation(), "reading the device information")
        dev = Device(self.xaddr, manufacturer=str(info.Manufacturer or ""), model=str(info.Model or ""),
                     firmware=str(info.FirmwareVersion or ""), serial=str(info.SerialNumber or ""),
                     hardware_id=str(getattr(info, "HardwareId", "") or ""))
        dev.clock_offset_s = await self.clock_offset()
        media = await self._service("media")
        profiles = await self._call(media.GetProfiles(), "reading the media profiles")
        for p in profiles or []:
            vec = getattr(p, "VideoEncoderConfiguration", None)
            res = getattr(vec, "Resolution", None)
            rate = getattr(vec, "RateControl", None)
            h264 = getattr(vec, "H264", None)
            uri = ""
            if resolve_streams:
                got = await self._call(media.GetStreamUri({
                    "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}, "ProfileToken": p.token}),
                    f"asking the stream address of {p.token}")
                uri = str(got.Uri or "")
            dev.profiles.append(Profile(
                token=str(p.token), name=str(getattr(p, "Name", "") or p.token), uri=uri,
                width=int(getattr(res, "Width", 0) or 0), height=int(getattr(res, "Height", 0) or 0),
                codec=str(getattr(vec, "Encoding", "") or ""), fps=float(getattr(rate, "FrameRateLimit", 0) or 0),
                gop=int(getattr(h264, "GovLength", 0) or 0), bitrate_kbps=int(getattr(rate, "BitrateLimit", 0) or 0),
                ptz=getattr(p, "PTZConfiguration", None) is not None))
        dev.ptz = any(p.ptz for p in dev.profiles) or "PTZ" in (self.cam.xaddrs or {}) or any(
            "ptz" in str(k).lower() for k in (self.cam.xaddrs or {}))
        dev.events = any("events/wsdl" in str(k) for k in (self.cam.xaddrs or {}))
        if dev.profiles:
            try:
                got = await self._call(media.GetSnapshotUri({"ProfileToken": dev.profiles[0].token}),
                                       "asking the snapshot address")
                dev.snapshot_uri = str(got.Uri or "")
            except OnvifFault:
                dev.snapshot_uri = ""  # optional in Profile S
        return dev

    # ---------------------------------------------------------------- PTZ

    async def presets(self, profile: str) -> list[dict]:
        ptz = await self._service("ptz")
        got = await self._call(ptz.GetPresets({"ProfileToken": profile}), "reading the presets")
        out = []
        for p in got or []:
            pos = getattr(p, "PTZPosition", None)
            pt = getattr(pos, "PanTilt", None)
            z = getattr(pos, "Zoom", None)
            out.append({"token": str(p.token), "name": str(getattr(p, "Name", "") or p.token),
                        "pan": _f(getattr(pt, "x", None)), "tilt": _f(getattr(pt, "y", None)),
                        "zoom": _f(getattr(z, "x", None))})
        return out

    async def status(self, profile: str) -> dict:
        ptz = await self._service("ptz")
        st = await self._call(ptz.GetStatus({"ProfileToken": profile}), "reading the position")
        pos = getattr(st, "Position", None)
        return {"pan": _f(getattr(getattr(pos, "PanTilt", None), "x", None)),
                "tilt": _f(getattr(getattr(pos, "PanTilt", None), "y", None)),
                "zoom": _f(getattr(getattr(pos, "Zoom", None), "x", None))}

    async def goto(self, profile: str, token: str) -> None:
        ptz = await self._service("ptz")
        await self._call(ptz.GotoPreset({"ProfileToken": profile, "PresetToken": token}), "going to the preset")

    async def set_preset(self, profile: str, name: str) -> str:
        ptz = await self._service("ptz")
        got = await self._call(ptz.SetPreset({"ProfileToken": profile, "PresetName": name}), "saving the preset")
        return str(got if isinstance(got, str) else getattr(got, "PresetToken", got))

    async def remove_preset(self, profile: str, token: str) -> None:
        ptz = await self._service("ptz")
        await self._call(ptz.RemovePreset({"ProfileToken": profile, "PresetToken": token}), "removing the preset")

    async def move(self, profile: str, pan: float, tilt: float, zoom: float) -> None:
        ptz = await self._service("ptz")
        await self._call(ptz.ContinuousMove({"ProfileToken": profile, "Velocity": {
            "PanTilt": {"x": pan, "y": tilt}, "Zoom": {"x": zoom}}}), "moving")

    async def stop(self, profile: str) -> None:
        ptz = await self._service("ptz")
        await self._call(ptz.Stop({"ProfileToken": profile, "PanTilt": True, "Zoom": True}), "stopping")

    async def absolute(self, profile: str, pan: float, tilt: float, zoom: float | None) -> None:
        ptz = await self._service("ptz")
        pos = {"PanTilt": {"x": pan, "y": tilt}}
        if zoom is not None:
            pos["Zoom"] = {"x": zoom}
        await self._call(ptz.AbsoluteMove({"ProfileToken": profile, "Position": pos}), "moving to a position")

    async def relative(self, profile: str, pan: float, tilt: float, zoom: float) -> None:
        ptz = await self._service("ptz")
        await self._call(ptz.RelativeMove({"ProfileToken": profile, "Translation": {
            "PanTilt": {"x": pan, "y": tilt}, "Zoom": {"x": zoom}}}), "moving by a step")

    async def home(self, profile: str) -> None:
        ptz = await self._service("ptz")
        await self._call(ptz.GotoHomePosition({"ProfileToken": profile}), "going home")


def _f(v) -> float | None:
    try:
        return None if v is None else round(float(v), 4)
    except (TypeError, ValueError):
        return None


def run(coro_fn, xaddr: str, user: str, password: str, timeout_s: float = DEFAULT_TIMEOUT_S):
    """``coro_fn(client)`` in a session of its own, from synchronous code (routes, commands)."""

    async def go():
        async with Client(xaddr, user, password, timeout_s) as c:
            return await coro_fn(c)

    return asyncio.run(go())
