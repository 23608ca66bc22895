"""ONVIF as the console, the API and the CLI use it: discover, add from profiles, check the
devices (clock, streams, firmware, reachability), inventory, and PTZ under the control lock.
Routes and commands check the policy and journal; this module does the work."""

from __future__ import annotations

import csv
import io
import logging

from varta.cameras.model import Camera, CameraError
from varta.clock import format_time, now_us
from varta.onvif import model as m
from varta.onvif.client import Client, device_url, run
from varta.onvif.discovery import discover as ws_discover
from varta.onvif.ptzlock import decide
from varta.onvif.store import OnvifStore

log = logging.getLogger("varta.onvif")


class Onvif:
    def __init__(self, engine, registry, settings, node: str = "console"):
        self.engine, self.registry, self.settings, self.node = engine, registry, settings, node
        self.store = OnvifStore(engine)
        self.timeout_s = settings.onvif_timeout_s

    # ---------------------------------------------------------------- discovery and adding

    def discover(self, ranges: list[str], user: str = "", password: str = "", multicast: bool = True,
                 timeout_s: float = 3.0) -> list[dict]:
        """Devices that answered, each with what it says of itself (when the credentials
        open it) and the camera it is registered as, if any."""
        known = {device_url(d["xaddr"]): d["camera_id"] for d in self.store.all()}
        out = []
        for f in ws_discover(ranges, timeout_s, multicast):
            item = {"address": f.address, "xaddr": f.xaddr, "manufacturer": "", "model": f.scopes.get("hardware", ""),
                    "name": f.scopes.get("name", ""), "firmware": "", "serial": "",
                    "registered": known.get(device_url(f.xaddr)), "error": None}
            if user:
                try:
                    dev = run(lambda c: c.device(resolve_streams=False), f.xaddr, user, password, self.timeout_s)
                    item |= {"manufacturer": dev.manufacturer, "model": dev.model, "firmware": dev.firmware,
                             "serial": dev.serial, "profiles": len(dev.profiles), "ptz": dev.ptz}
                except m.OnvifError as exc:
                    item["error"] = str(exc)
            out.append(item)
        return out

    def describe(self, xaddr: str, user: str, password: str) -> m.Device:
        return run(lambda c: c.device(), xaddr, user, password, self.timeout_s)

    def add(self, xaddr: str, camera_id: str, user: str, password: str, main_profile: str | None = None,
            sub_profile: str | None = None, **camera) -> dict:
        """Ask the device everything first; register the camera only when all of it answered
        (a wrong password, a silent device or a fault adds nothing)."""
        if self.registry.get(camera_id) is not None:
            raise CameraError(f"camera {camera_id} already exists")
        dev = self.describe(xaddr, user, password)
        main, sub = m.choose(dev.profiles, main_profile, sub_profile)
        name = camera.pop("name", "") or f"{dev.manufacturer} {dev.model}".strip()
        camera["retention_days"] = camera.get("retention_days") or self.settings.default_retention_days
        cam = Camera(id=camera_id, main_url=m.with_credentials(main.uri, user, password), name=name,
                     sub_url=m.with_credentials(sub.uri, user, password) if sub else None, **camera).validated()
        self.registry.add(cam)
        try:
            self.store.add({"camera_id": camera_id, "xaddr": device_url(xaddr), "username": user, "password": password,
                            "manufacturer": dev.manufacturer, "model": dev.model, "firmware": dev.firmware,
                            "serial": dev.serial, "hardware_id": dev.hardware_id, "main_profile": main.token,
                            "sub_profile": sub.token if sub else None, "main_uri": main.uri,
                            "sub_uri": sub.uri if sub else None, "snapshot_uri": dev.snapshot_uri,
                            "profiles": [p.as_dict() for p in dev.profiles], "ptz": dev.ptz, "events": dev.events,
                            "clock_offset_s": dev.clock_offset_s, "checked_us": now_us(), "state": "ok"})
        except Exception:
            self.registry.remove(camera_id)  # nothing half-way
            raise
        return {"camera": camera_id, "name": name, "manufacturer": dev.manufacturer, "model": dev.model,
                "firmware": dev.firmware, "serial": dev.serial, "main": main.as_dict(),
                "sub": sub.as_dict() if sub else None, "ptz": dev.ptz, "events": dev.events,
                "snapshot_uri": dev.snapshot_uri,
                "clock_offset_s": dev.clock_offset_s}

    # ---------------------------------------------------------------- health and inventory

    def check(self, camera_id: str) -> dict:
        """One device: reachable? its clock? its streams as registered? its firmware? Alarms
        raised (once) and cleared as the answers say; streams re-resolved when changed."""
        d = self.store.get(camera_id, with_secrets=True)
        if d is None:
            raise m.OnvifError(f"camera {camera_id} was not added by ONVIF")
        problems = []
        try:
            dev = self.describe(d["xaddr"], d["username"], d["password"])
        except m.OnvifError as exc:
            self.store.update(camera_id, state=str(exc)[:200], checked_us=now_us())
            self.store.alarm("onvif_unreachable", camera_id, f"{camera_id}: {exc}", self.node)
            return {"camera": camera_id, "ok": False, "problems": [str(exc)]}
        self.store.clear("onvif_unreachable", camera_id)
        values = {"clock_offset_s": dev.clock_offset_s, "firmware": dev.firmware, "checked_us": now_us(),
                  "events": dev.events}
        if m.drifted(dev.clock_offset_s, self.settings.onvif_clock_drift_s):
            text = (f"{camera_id}: the camera's clock is {dev.clock_offset_s:+.0f} s off the server's "
                    f"(more than {self.settings.onvif_clock_drift_s:g} s): its picture's time stamps are wrong")
            problems.append(text)
            self.store.alarm("onvif_clock", camera_id, text, self.node)
        else:
            self.store.clear("onvif_clock", camera_id)
        now = {"main_uri": next((p.uri for p in dev.profiles if p.token == d["main_profile"]), None),
               "sub_uri": next((p.uri for p in dev.profiles if p.token == d["sub_profile"]), None)}
        if now["main_uri"] is None:
            text = f"{camera_id}: the device no longer has profile {d['main_profile']} (reset or reconfigured?)"
            problems.append(text)
            self.store.alarm("onvif_profile", camera_id, text, self.node)
        changed = m.changed_streams(d, now)
        if changed:
            cam = self.registry.get(camera_id)
            new = {"main_url": m.with_credentials(now["main_uri"], d["username"], d["password"])}
            if now.get("sub_uri"):
                new["sub_url"] = m.with_credentials(now["sub_uri"], d["username"], d["password"])
            if cam is not None:
                self.registry.update(camera_id, **new)
            values |= {k: now[k] for k in changed}
            text = f"{camera_id}: the device changed its stream address ({', '.join(changed)}); re-resolved"
            problems.append(text)
            self.store.alarm("onvif_streams", camera_id, text, self.node)
        minimum = m.minimum_for(self.settings.onvif_min_firmware, dev.manufacturer, dev.model)
        if m.firmware_below(dev.firmware, minimum):
            text = f"{camera_id}: firmware {dev.firmware} of {dev.manufacturer} {dev.model} is below the minimum {minimum}"
            problems.append(text)
            self.store.alarm("onvif_firmware", camera_id, text, self.node)
        else:
            self.store.clear("onvif_firmware", camera_id)
        values["state"] = "ok" if not problems else problems[0][:200]
        self.store.update(camera_id, **values)
        return {"camera": camera_id, "ok": not problems, "problems": problems, "clock_offset_s": dev.clock_offset_s,
                "firmware": dev.firmware}

    def tick(self) -> None:
        """The cluster duty (one web node for the city): devices due a check, and PTZ cameras
        idle long enough to go home."""
        t = now_us()
        devices = self.store.all()
        for d in devices:
            due = (d["checked_us"] or 0) + self.settings.onvif_check_interval_s * 1e6
            if t >= due:
                try:
                    self.check(d["camera_id"])
                except Exception:  # noqa: BLE001 — one device never stops the others
                    log.exception("checking ONVIF camera %s", d["camera_id"])
        self.return_home(t, devices)

    def inventory(self) -> list[dict]:
        tz = self.settings.tz
        return [{"camera": d["camera_id"], "manufacturer": d["manufacturer"], "model": d["model"],
                 "firmware": d["firmware"], "serial": d["serial"], "hardware_id": d["hardware_id"],
                 "address": m.without_credentials(d["xaddr"]), "ptz": d["ptz"], "events": d["events"],
                 "clock_offset_s": d["clock_offset_s"], "state": d["state"],
                 "checked": format_time(d["checked_us"], tz) if d["checked_us"] else "",
                 "firmware_minimum": m.minimum_for(self.settings.onvif_min_firmware, d["manufacturer"], d["model"])}
                for d in self.store.all()]

    def inventory_csv(self, rows: list[dict] | None = None) -> str:
        rows = self.inventory() if rows is None else rows
        out = io.StringIO()
        w = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["camera"])
        w.writeheader()
        w.writerows(rows)
        return out.getvalue()

    def inventory_pdf(self, lang: str = "uk", rows: list[dict] | None = None) -> bytes:
        """The inventory for the installation agreement (MVS-4), A4 landscape, Cyrillic."""
        from varta.pdftable import table_pdf

        rows = self.inventory() if rows is None else rows
        uk = lang == "uk"
        head = (("Камера", "Виробник", "Модель", "Прошивка", "Мінімум", "Серійний номер", "Адреса пристрою",
                 "Поворотна", "Годинник, с", "Стан", "Перевірено") if uk else
                ("Camera", "Manufacturer", "Model", "Firmware", "Minimum", "Serial", "Device address", "PTZ",
                 "Clock, s", "State", "Checked"))
        body = [(r["camera"], r["manufacturer"], r["model"], r["firmware"], r["firmware_minimum"] or "—", r["serial"],
                 r["address"], ("так" if uk else "yes") if r["ptz"] else "—",
                 "—" if r["clock_offset_s"] is None else f"{r['clock_offset_s']:+.0f}",
                 ("норма" if uk else "ok") if r["state"] == "ok" else r["state"], r["checked"][:16].replace("T", " "))
                for r in rows]
        title = "Перелік камер ONVIF" if uk else "ONVIF camera inventory"
        sub = (f"Камер: {len(rows)}; сформовано {format_time(now_us(), self.settings.tz)[:16].replace('T', ' ')}"
               if uk else f"Cameras: {len(rows)}; made {format_time(now_us(), self.settings.tz)[:16].replace('T', ' ')}")
        return table_pdf(title, sub, head, (20, 24, 26, 18, 16, 26, 46, 14, 16, 40, 26), body)

    # ---------------------------------------------------------------- PTZ

    def _device(self, camera_id: str) -> dict:
        d = self.store.get(camera_id, with_secrets=True)
        if d is None:
            raise m.OnvifError(f"camera {camera_id} is not an ONVIF camera Varta added")
        if not d["ptz"]:
            raise m.OnvifError(f"camera {camera_id} has no PTZ")
        return d

    def control(self, camera_id: str, login: str, full_name: str, role: str) -> str | None:
        """Take (or keep) the control for the hold time; raise with who holds it otherwise.
        Returns whose control was taken over, if any."""
        lock, _ = self.store.lock(camera_id)
        t = now_us()
        v = decide(lock, login, role, t)
        if not v.granted:
            raise PtzBusy(v.reason, lock)
        until = t + int(self.settings.ptz_hold_s * 1e6)
        if not self.store.take(camera_id, lock if v.taken_over else None, login, full_name, role, until, away=True):
            raise PtzBusy("someone else took the control this instant: try again", lock)
        return v.taken_over

    def ptz(self, camera_id: str, op: str, **kw):
        d = self._device(camera_id)
        prof = d["main_profile"]

        async def go(c: Client):
            if op == "presets":
                return await c.presets(prof)
            if op == "status":
                return await c.status(prof)
            if op == "goto":
                return await c.goto(prof, kw["preset"])
            if op == "set_preset":
                return await c.set_preset(prof, kw["name"])
            if op == "remove_preset":
                return await c.remove_preset(prof, kw["preset"])
            if op == "move":
                import asyncio

                await c.move(prof, kw["pan"], kw["tilt"], kw.get("zoom", 0.0))
                if kw.get("seconds"):
                    await asyncio.sleep(kw["seconds"])
                    await c.stop(prof)
                return None
            if op == "stop":
                return await c.stop(prof)
            if op == "absolute":
                return await c.absolute(prof, kw["pan"], kw["tilt"], kw.get("zoom"))
            if op == "relative":
                return await c.relative(prof, kw["pan"], kw["tilt"], kw.get("zoom", 0.0))
            if op == "home":
                return await c.home(prof)
            raise m.OnvifError(f"unknown PTZ operation {op}")

        return run(go, d["xaddr"], d["username"], d["password"], self.timeout_s + float(kw.get("seconds") or 0))

    def preset_token(self, camera_id: str, preset: str) -> str | None:
        """A preset's token from its token or its name (None: the camera has no such preset)."""
        return next((p["token"] for p in self.ptz(camera_id, "presets") if preset in (p["token"], p["name"])), None)

    def set_home_after(self, camera_id: str, seconds: int | None) -> None:
        self._device(camera_id)
        self.store.update(camera_id, home_after_s=seconds)

    def return_home(self, t: int, devices: list[dict]) -> None:
        homes = {d["camera_id"]: d["home_after_s"] for d in devices if d["ptz"] and d["home_after_s"]}
        if not homes:
            return
        for row in self.store.away():
            after = homes.get(row["camera_id"])
            if not after or t < row["last_command_us"] + after * 1e6 or row["expires_us"] > t:
                continue
            try:
                presets = self.ptz(row["camera_id"], "presets")
                home = next((p for p in presets if p["name"].lower() in ("home", "додому", "дім")), None)
                self.ptz(row["camera_id"], "goto", preset=home["token"]) if home else self.ptz(row["camera_id"], "home")
                self.store.homed(row["camera_id"])
                log.info("PTZ camera %s returned home after %s s idle", row["camera_id"], after)
            except m.OnvifError as exc:
                log.warning("PTZ camera %s could not return home: %s", row["camera_id"], exc)


class PtzBusy(m.OnvifError):
    def __init__(self, reason: str, lock):
        super().__init__(reason)
        self.lock = lock

