"""The daily deadline report (A4.10): every morning, a PDF of the requests that are overdue,
due today or due soon, and a system alarm while any is overdue, so the Responsible Department
sees it on the dashboard without looking for it."""

from __future__ import annotations

import logging
import threading
from datetime import date, datetime
from pathlib import Path

from varta.clock import US, format_time, now_us
from varta.evidence.registers import deadline_report_pdf

log = logging.getLogger("varta.evidence")

ALARM_KIND = "requests_overdue"


def report_path(folder: Path, day: date) -> Path:
    return folder / f"deadlines-{day.isoformat()}.pdf"


def write_daily_report(evidence, alarms, folder: Path, day: date) -> Path:
    """Write the day's report (again, if asked twice) and set the overdue alarm to match."""
    d = evidence.requests.deadlines(day)
    settings = evidence.settings
    pdf = deadline_report_pdf(d, f"{settings.instance_name}: строки відповідей на запити / request deadlines",
                              f"{day.isoformat()} ({settings.holiday_rules}); {format_time(now_us(), settings.tz)}")
    folder.mkdir(parents=True, exist_ok=True)
    path = report_path(folder, day)
    tmp = path.with_suffix(".pdf.part")
    tmp.write_bytes(pdf)
    tmp.replace(path)
    overdue = d["overdue"]
    alarms.clear(ALARM_KIND)
    if overdue:
        alarms.raise_alarm(ALARM_KIND, "warning", f"{len(overdue)} request(s) overdue (A4.10): "
                           + ", ".join(f"{r['number']} due {r['due_date']}" for r in overdue[:10]))
    return path


class DailyReporter(threading.Thread):
    """Checks once a minute; writes the report once a day after ``hour`` (city time)."""

    def __init__(self, evidence, alarms, folder: Path, hour: int, interval_s: float = 60.0):
        super().__init__(name="deadline-report", daemon=True)
        self.evidence, self.alarms, self.folder, self.hour, self.interval_s = evidence, alarms, folder, hour, interval_s
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            now = datetime.fromtimestamp(now_us() / US, self.evidence.settings.tz)
            if now.hour >= self.hour and not report_path(self.folder, now.date()).exists():
                try:
                    write_daily_report(self.evidence, self.alarms, self.folder, now.date())
                except Exception:  # a report failing must not take the web node down
                    log.exception("daily deadline report failed")
            self._halt.wait(self.interval_s)

    def halt(self) -> None:
        self._halt.set()
