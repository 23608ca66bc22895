"""Import a whole city's camera list from YAML or TOML.

Format (YAML shown; TOML uses ``[[cameras]]`` tables with the same keys)::

    defaults: {retention_days: 14, group: centre}
    cameras:
      - id: mel-0001
        name: Ploshcha Peremohy
        kind: square
        url: rtsp://user:pass@10.1.0.11/Streaming/Channels/101
        sub_url: rtsp://user:pass@10.1.0.11/Streaming/Channels/102
        lat: 46.8489
        lon: 35.3653
        address: Ploshcha Peremohy, 1
        schedule: continuous          # or {default: ..., rules: [...]}

Every entry is validated before anything is written: one bad entry refuses the whole file,
naming the entry and the reason, so a half-imported city never happens.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

from varta.cameras.model import Camera, CameraError
from varta.cameras.schedule import Schedule, ScheduleError

_ALIASES = {
    "url": "main_url",
    "main": "main_url",
    "sub": "sub_url",
    "lat": "latitude",
    "lon": "longitude",
    "lng": "longitude",
    "group": "group_name",
    "district": "group_name",
    "retention": "retention_days",
}
_FIELDS = {
    "id", "main_url", "sub_url", "name", "kind", "address", "latitude", "longitude",
    "group_name", "retention_days", "schedule", "recorder", "enabled", "sensitivity",
}


def read_data_file(path: Path):
    """A settings file's data: TOML by its extension, else YAML (which JSON is a subset of).
    Raises ValueError naming the file and what could not be parsed."""
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            return tomllib.loads(text)
        return yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: cannot parse: {exc}") from None


def load_camera_file(path: Path) -> list[Camera]:
    try:
        data = read_data_file(path)
    except ValueError as exc:
        raise CameraError(str(exc)) from None
    return parse_camera_list(data, source=str(path))


def parse_camera_list(data, source: str = "input") -> list[Camera]:
    if isinstance(data, list):
        data = {"cameras": data}
    if not isinstance(data, dict) or not isinstance(data.get("cameras"), list):
        raise CameraError(f"{source}: expected a 'cameras' list")
    defaults = data.get("defaults") or {}
    result: list[Camera] = []
    seen: set[str] = set()
    for index, entry in enumerate(data["cameras"], start=1):
        if not isinstance(entry, dict):
            raise CameraError(f"{source}: entry {index} is not a mapping")
        merged = {**defaults, **entry}
        values = {}
        for key, value in merged.items():
            key = _ALIASES.get(key, key)
            if key not in _FIELDS:
                raise CameraError(f"{source}: entry {index} ({entry.get('id', '?')}): unknown field {key!r}")
            values[key] = value
        label = f"{source}: entry {index} ({values.get('id', '?')})"
        try:
            values["schedule"] = Schedule.from_json(values.get("schedule"))
            if "id" not in values or "main_url" not in values:
                raise CameraError("needs at least 'id' and 'url'")
            values["id"] = str(values["id"])
            cam = Camera(**values).validated()
        except (CameraError, ScheduleError, TypeError) as exc:
            raise CameraError(f"{label}: {exc}") from None
        if cam.id in seen:
            raise CameraError(f"{label}: duplicate id {cam.id}")
        seen.add(cam.id)
        result.append(cam)
    return result
