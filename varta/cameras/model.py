"""What a camera is, and the rules its fields obey (pure, no I/O)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from varta.cameras.schedule import Schedule
from varta.config import MIN_RETENTION_DAYS

# Clause 2 of the order: where the city's cameras are.
KINDS = (
    "intersection",
    "square",
    "street",
    "transport_stop",
    "building_perimeter",
    "building_inside",
    "other",
)

# Stable ids such as ``mel-0042``: lower case, digits, dash/underscore/dot; they name
# folders on disk and appear in URLs and court documents, so they are kept plain.
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "file")


class CameraError(ValueError):
    """A camera definition that cannot be accepted; the message says why."""


def redact_url(url: str | None) -> str | None:
    """The URL with any password replaced by ``***`` (credentials are never shown)."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unreadable URL>"
    if parts.password is None and "@" not in (parts.netloc or ""):
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{user}:***@{host}" if user else f"***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact_text(text: str, urls: list[str | None]) -> str:
    """Remove every secret of ``urls`` from free text (e.g. ffmpeg's error output)."""
    for url in urls:
        if not url:
            continue
        try:
            parts = urlsplit(url)
        except ValueError:
            continue
        if parts.password:
            text = text.replace(url, redact_url(url) or "")
            text = text.replace(parts.password, "***")
    return text


def validate_url(url: str, what: str = "stream URL") -> str:
    url = (url or "").strip()
    if not url:
        raise CameraError(f"{what} is empty")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise CameraError(f"{what} is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in URL_SCHEMES:
        raise CameraError(
            f"{what} {redact_url(url)!r} has scheme {parts.scheme!r}; expected one of {', '.join(URL_SCHEMES)}"
        )
    if parts.scheme != "file" and not parts.hostname:
        raise CameraError(f"{what} {redact_url(url)!r} has no host")
    try:
        parts.port
    except ValueError:
        raise CameraError(f"{what} {redact_url(url)!r} has an invalid port") from None
    return url


def validate_retention(days: int) -> int:
    """A4.6 / R2: recordings are kept at least 10 days; a lower value is refused."""
    try:
        days = int(days)
    except (TypeError, ValueError):
        raise CameraError(f"retention days must be a whole number, got {days!r}") from None
    if days < MIN_RETENTION_DAYS:
        raise CameraError(
            f"retention of {days} days refused: the order (clause A4.6) requires at least "
            f"{MIN_RETENTION_DAYS} days"
        )
    return days


SENSITIVITIES = ("normal", "sensitive")


@dataclass
class Camera:
    id: str
    main_url: str
    name: str = ""
    kind: str = "other"
    address: str = ""
    latitude: float | None = None
    longitude: float | None = None
    group_name: str = ""
    sub_url: str | None = None
    retention_days: int = MIN_RETENTION_DAYS
    schedule: Schedule = field(default_factory=Schedule.always)
    recorder: str | None = None
    enabled: bool = True
    # Field of view on the map (cameras/geo.py): where it looks (degrees from north,
    # clockwise), how wide, how far it makes out a person. None: not surveyed yet.
    view_direction: float | None = None
    view_angle: float | None = None
    view_range_m: float | None = None
    # Lockdown (varta/lockdown): a view of critical infrastructure, a checkpoint or military
    # movement is "sensitive"; `varta lockdown on --scope sensitive` shuts its remote views.
    sensitivity: str = "normal"

    def validated(self) -> "Camera":
        if not ID_PATTERN.match(self.id or ""):
            raise CameraError(
                f"camera id {self.id!r} is not valid: use 1-64 lower-case letters, digits, '.', '-' or '_' "
                "(e.g. mel-0042)"
            )
        if self.kind not in KINDS:
            raise CameraError(f"camera kind {self.kind!r} is not one of: {', '.join(KINDS)}")
        self.main_url = validate_url(self.main_url, "main stream URL")
        if self.sub_url:
            self.sub_url = validate_url(self.sub_url, "sub-stream URL")
        else:
            self.sub_url = None
        self.retention_days = validate_retention(self.retention_days)
        if (self.latitude is None) != (self.longitude is None):
            raise CameraError("give both latitude and longitude, or neither")
        if self.latitude is not None:
            if not -90 <= float(self.latitude) <= 90:
                raise CameraError(f"latitude {self.latitude} is outside -90..90")
            if not -180 <= float(self.longitude) <= 180:
                raise CameraError(f"longitude {self.longitude} is outside -180..180")
            self.latitude, self.longitude = float(self.latitude), float(self.longitude)
        fov = (self.view_direction, self.view_angle, self.view_range_m)
        if any(v is not None for v in fov):
            if any(v is None for v in fov):
                raise CameraError("give the field of view whole: direction, angle and range")
            if not 0 <= float(self.view_direction) < 360:
                raise CameraError(f"view direction {self.view_direction} is outside 0..360 degrees (0 = north)")
            if not 1 <= float(self.view_angle) <= 360:
                raise CameraError(f"view angle {self.view_angle} is outside 1..360 degrees")
            if not 1 <= float(self.view_range_m) <= 2000:
                raise CameraError(f"view range {self.view_range_m} m is outside 1..2000 m")
            if self.latitude is None:
                raise CameraError("a field of view needs the camera's latitude and longitude")
            self.view_direction, self.view_angle, self.view_range_m = (float(v) for v in fov)
        if self.sensitivity not in SENSITIVITIES:
            raise CameraError(f"sensitivity {self.sensitivity!r} is not one of: {', '.join(SENSITIVITIES)}")
        self.name = self.name or self.id
        return self

    def public_dict(self) -> dict:
        """The camera as shown to people and logs: credentials redacted."""
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "address": self.address,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "group": self.group_name,
            "main_url": redact_url(self.main_url),
            "sub_url": redact_url(self.sub_url),
            "retention_days": self.retention_days,
            "schedule": self.schedule.to_json(),
            "recorder": self.recorder,
            "enabled": self.enabled,
            "sensitivity": self.sensitivity,
            "view": ({"direction": self.view_direction, "angle": self.view_angle, "range_m": self.view_range_m}
                     if self.view_range_m is not None else None),
        }
