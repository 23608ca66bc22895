"""The city's address list in the database (adapter): imported from the city's own register
(CSV: address, latitude, longitude), searched without any outside geocoding service."""

from __future__ import annotations

import csv
import io

from sqlalchemy import delete, func, insert, select

from varta.cameras.geo import normalise
from varta.db.schema import addresses


class AddressError(ValueError):
    pass


class AddressBook:
    def __init__(self, engine):
        self.engine = engine

    def import_csv(self, text: str) -> int:
        """Replace the list with the CSV's rows (header: address,latitude,longitude; also
        адреса,широта,довгота). A bad row is refused with its line number; nothing changes."""
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        names = {(n or "").strip().lower(): n for n in reader.fieldnames or []}
        col = {k: next((names[n] for n in opts if n in names), None) for k, opts in
               {"text": ("address", "адреса"), "lat": ("latitude", "lat", "широта"),
                "lon": ("longitude", "lon", "довгота")}.items()}
        if None in col.values():
            raise AddressError("the CSV needs the columns address, latitude, longitude")
        rows = []
        for line, r in enumerate(reader, start=2):
            try:
                lat, lon = float(r[col["lat"]].replace(",", ".")), float(r[col["lon"]].replace(",", "."))
            except (TypeError, ValueError):
                raise AddressError(f"line {line}: latitude and longitude must be numbers") from None
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise AddressError(f"line {line}: {lat}, {lon} is not a place on Earth")
            text = (r[col["text"]] or "").strip()
            if not text:
                raise AddressError(f"line {line}: no address")
            rows.append({"text": text[:300], "key": normalise(text)[:300], "latitude": lat, "longitude": lon})
        with self.engine.begin() as conn:
            conn.execute(delete(addresses))
            for i in range(0, len(rows), 1000):
                conn.execute(insert(addresses), rows[i:i + 1000])
        return len(rows)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(addresses)).scalar_one()

    def search(self, query: str, limit: int = 10) -> list[dict]:
        """Addresses holding every word typed (in any order), exact matches first."""
        key = normalise(query)
        words = key.split()
        if not words:
            return []
        q = select(addresses)
        for w in words:
            q = q.where(addresses.c.key.contains(w, autoescape=True))
        q = q.order_by(func.length(addresses.c.key), addresses.c.key).limit(max(limit * 5, 50))
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        rows.sort(key=lambda r: (r.key != key, not r.key.startswith(key), len(r.key)))
        return [{"address": r.text, "latitude": r.latitude, "longitude": r.longitude} for r in rows[:limit]]

    def locate(self, query: str) -> dict | None:
        found = self.search(query, 1)
        return found[0] if found else None
