"""ONVIF rules without I/O: which profiles become the main and sub streams, what a device's
scopes say, whether its clock has drifted or its firmware is below the city's minimum, and
the RTSP address with the camera's credentials in it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit, urlunsplit


class OnvifError(Exception):
    """A device that cannot be used as asked, with the reason in plain words."""


class OnvifAuthError(OnvifError):
    pass


class OnvifTimeout(OnvifError):
    pass


class OnvifFault(OnvifError):
    pass


@dataclass(frozen=True)
class Profile:
    token: str
    name: str
    uri: str = ""
    width: int = 0
    height: int = 0
    codec: str = ""
    fps: float = 0.0
    gop: int = 0
    bitrate_kbps: int = 0
    ptz: bool = False

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def as_dict(self) -> dict:
        return {"token": self.token, "name": self.name, "uri": self.uri, "width": self.width, "height": self.height,
                "codec": self.codec, "fps": self.fps, "gop": self.gop, "bitrate_kbps": self.bitrate_kbps,
                "ptz": self.ptz}


@dataclass
class Device:
    """What a device says of itself."""

    xaddr: str
    manufacturer: str = ""
    model: str = ""
    firmware: str = ""
    serial: str = ""
    hardware_id: str = ""
    clock_offset_s: float | None = None  # the device's clock minus ours
    profiles: list[Profile] = field(default_factory=list)
    snapshot_uri: str = ""
    ptz: bool = False
    events: bool = False  # offers the ONVIF event service


def choose(profiles: list[Profile], main: str | None = None, sub: str | None = None) -> tuple[Profile, Profile | None]:
    """The main stream: the profile asked for, else the largest picture; the sub stream: the
    one asked for, else the smallest other picture (none when the device has one profile)."""
    if not profiles:
        raise OnvifError("the device reports no media profiles")
    by_token = {p.token: p for p in profiles}
    for t in (main, sub):
        if t and t not in by_token:
            raise OnvifError(f"no profile {t!r}: the device has {', '.join(by_token)}")
    m = by_token[main] if main else max(profiles, key=lambda p: (p.pixels, p.fps))
    rest = [p for p in profiles if p.token != m.token]
    s = by_token[sub] if sub else (min(rest, key=lambda p: (p.pixels, p.fps)) if rest else None)
    if s is not None and s.token == m.token:
        raise OnvifError("the main and the sub stream must be different profiles")
    return m, s


def with_credentials(uri: str, user: str, password: str) -> str:
    """The RTSP address with the camera's user and password in it (as Varta stores stream
    URLs; never shown: cameras.model.redact_url)."""
    parts = urlsplit(uri)
    if not parts.scheme.startswith("rtsp") or not parts.hostname:
        raise OnvifError(f"the device gave a stream address that is not RTSP: {uri!r}")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    cred = f"{quote(user, safe='')}:{quote(password, safe='')}@" if user else ""
    return urlunsplit((parts.scheme, cred + host, parts.path, parts.query, parts.fragment))


def without_credentials(uri: str) -> str:
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def scope_values(scopes: list[str]) -> dict[str, str]:
    """onvif://www.onvif.org/hardware/X, /name/Y, /location/Z … → {hardware: X, name: Y, …}."""
    out: dict[str, str] = {}
    for s in scopes:
        m = re.match(r"onvif://www\.onvif\.org/(\w+)/(.+)", s.strip())
        if m and m.group(1) not in out:
            out[m.group(1)] = unquote(m.group(2))
    return out


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text or "")[:6])


def firmware_below(firmware: str, minimum: str) -> bool:
    """Is the firmware older than the city's minimum for that model ("5.7.3" < "5.10")?"""
    if not minimum or not firmware:
        return False
    return version_tuple(firmware) < version_tuple(minimum)


def minimum_for(rules: str, manufacturer: str, model: str) -> str:
    """The setting ``onvif_min_firmware``: "MAKER MODEL=VERSION; MAKER=VERSION; *=VERSION"."""
    best, best_len = "", -1
    who = f"{manufacturer} {model}".strip().lower()
    for rule in (rules or "").split(";"):
        if "=" not in rule:
            continue
        key, ver = (x.strip() for x in rule.rsplit("=", 1))
        k = key.lower()
        if (k == "*" or who == k or who.startswith(k + " ") or manufacturer.lower() == k) and len(k) > best_len:
            best, best_len = ver, len(k) if k != "*" else 0
    return best


def drifted(offset_s: float | None, threshold_s: float) -> bool:
    return offset_s is not None and abs(offset_s) > threshold_s


def changed_streams(stored: dict, now: dict) -> list[str]:
    """Which of the main/sub stream addresses the device now gives differently (after a
    reboot or an update): the names of those that changed."""
    return [k for k in ("main_uri", "sub_uri") if stored.get(k) and now.get(k) and stored[k] != now[k]]
