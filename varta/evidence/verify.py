"""Check an evidence package offline: no database, no settings, folder or ZIP.

What is checked, and why each check matters:

* ``manifest.json`` parses and says ``varta-evidence/1`` (otherwise nothing else can be read);
* its signature is valid with the key given by the checker, or else with the key in the
  package. A key from the package only shows that the files match *some* key's manifest:
  whose key it is must be settled by comparing its fingerprint with the one the city
  published out of band. The report says so plainly;
* every file the manifest lists exists with the stated size and SHA-256 (file changed
  after signing, truncated, or missing);
* SHA256SUMS agrees with the manifest and with the files (a clerk may have used it);
* nothing unlisted sits in ``video/`` (a clip slipped in would look like evidence).

A ZIP is read member by member (``zipfile`` streams them): nothing is extracted to disk.
"""

from __future__ import annotations

import hashlib
import json
import sys
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterator, Optional

import typer

from varta.evidence.layout import CHUNK, FORMAT, MANIFEST, PUBLIC_KEY, README, SIGNATURE, SUMS, VIDEO_DIR
from varta.evidence.signing import fingerprint_of, normalize_fingerprint, verify_signature


KEY_FROM_PACKAGE_NOTE = (
    "the public key was taken from the package itself: this shows the files match the signed "
    "manifest, not who signed it. Compare the fingerprint {fp} with the one the city published "
    "(or pass --fingerprint)."
)


class NotAPackage(Exception):
    """The input cannot be read as a package at all (exit code 2, not "tampered")."""


@dataclass
class VerifyReport:
    ok: bool
    problems: list[str]
    checked: list[str]
    fingerprint: str
    manifest: dict | None
    warnings: list[str] = field(default_factory=list)
    key_source: str = ""  # "given" (by the checker) or "package" (the packaged key)

    def to_dict(self) -> dict:
        return asdict(self)


# --- reading a folder or a zip the same way ---------------------------------------------
class _Folder:
    """A package folder: relative POSIX paths of regular files."""

    def __init__(self, root: Path):
        self.root = root
        self.label = str(root)

    def files(self) -> set[str]:
        return {p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()}

    def size(self, rel: str) -> int:
        return (self.root / rel).stat().st_size

    def open(self, rel: str):
        return open(self.root / rel, "rb")

    def close(self) -> None:
        pass


class _Zip:
    """A package ZIP: members under one top folder (or at the root), read as streams."""

    def __init__(self, path: Path):
        self.label = str(path)
        try:
            self.zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise NotAPackage(f"{path}: not a readable ZIP file ({exc})") from None
        names = [i.filename for i in self.zf.infolist() if not i.is_dir()]
        self.prefix = _zip_prefix(names)
        if self.prefix is None:
            self.zf.close()
            raise NotAPackage(f"{path}: no {MANIFEST} at the top of the ZIP or in its top folder")
        self.infos = {i.filename[len(self.prefix):]: i for i in self.zf.infolist()
                      if not i.is_dir() and i.filename.startswith(self.prefix)}
        self.outside = [n for n in names if not n.startswith(self.prefix)]

    def files(self) -> set[str]:
        return set(self.infos)

    def size(self, rel: str) -> int:
        return self.infos[rel].file_size

    def open(self, rel: str):
        return self.zf.open(self.infos[rel])

    def close(self) -> None:
        self.zf.close()


def _zip_prefix(names: list[str]) -> str | None:
    if MANIFEST in names:
        return ""
    tops = {n.split("/", 1)[0] for n in names if "/" in n}
    for top in sorted(tops):
        if f"{top}/{MANIFEST}" in names:
            return f"{top}/"
    return None


def _open_package(path: Path):
    path = Path(path)
    if path.is_dir():
        if not (path / MANIFEST).is_file():
            raise NotAPackage(f"{path}: no {MANIFEST} in this folder; is it an evidence package?")
        return _Folder(path)
    if path.is_file():
        return _Zip(path)
    raise NotAPackage(f"{path}: no such file or folder")


def _sha256(src, rel: str) -> str:
    h = hashlib.sha256()
    with src.open(rel) as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _read(src, rel: str) -> bytes:
    with src.open(rel) as fh:
        return fh.read()


# --- the check ----------------------------------------------------------------------------
def verify_package(path: Path, trusted_fingerprint: str | None = None,
                   public_key_pem: bytes | None = None) -> VerifyReport:
    """Check a package folder or ZIP; raises :class:`NotAPackage` if it is not one at all."""
    src = _open_package(Path(path))
    try:
        return _Check(src, trusted_fingerprint, public_key_pem).run()
    finally:
        src.close()


class _Check:
    """One verification: collects problems (each naming a file) and what passed."""

    def __init__(self, src, trusted_fingerprint: str | None, public_key_pem: bytes | None):
        self.src = src
        self.trusted = normalize_fingerprint(trusted_fingerprint) if trusted_fingerprint else None
        self.given_key = public_key_pem
        self.problems: list[str] = []
        self.checked: list[str] = []
        self.warnings: list[str] = []
        self.fingerprint = ""
        self.key_source = ""
        self.present = src.files()

    def run(self) -> VerifyReport:
        try:
            data = _read(self.src, MANIFEST)
        except (zipfile.BadZipFile, OSError) as exc:
            self.problems.append(f"{MANIFEST}: cannot be read ({exc}); the package is damaged")
            return self._report(None)
        manifest = self._parse_manifest(data)
        self._check_signature(data, manifest)
        listed: dict[str, str] = {}
        if manifest is not None:
            listed = self._check_files(manifest)
            self._check_totals(manifest)
        self._check_sums(listed, data)
        self._check_unlisted(listed)
        if getattr(self.src, "outside", None):
            self.warnings.append(f"the ZIP also holds {len(self.src.outside)} file(s) outside the package "
                                 f"folder (ignored), e.g. {self.src.outside[0]}")
        return self._report(manifest)

    def _report(self, manifest: dict | None) -> VerifyReport:
        return VerifyReport(ok=not self.problems, problems=self.problems, checked=self.checked,
                            fingerprint=self.fingerprint, manifest=manifest, warnings=self.warnings,
                            key_source=self.key_source)

    def _read_small(self, rel: str) -> bytes | None:
        """A small member (key, signature, sums), or None with the problem recorded."""
        try:
            return _read(self.src, rel)
        except (zipfile.BadZipFile, OSError) as exc:
            self.problems.append(f"{rel}: cannot be read ({exc}); the package is damaged")
            return None

    def _parse_manifest(self, data: bytes) -> dict | None:
        try:
            manifest = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self.problems.append(f"{MANIFEST}: cannot be read as UTF-8 JSON ({exc}); it was damaged or edited")
            return None
        if not isinstance(manifest, dict):
            self.problems.append(f"{MANIFEST}: is not a JSON object")
            return None
        fmt = manifest.get("format")
        if fmt != FORMAT:
            more = " (made by a newer Varta?)" if isinstance(fmt, str) and fmt.startswith("varta-evidence/") else ""
            self.problems.append(f"{MANIFEST}: format is {fmt!r}, expected {FORMAT!r}{more}")
            return None
        self.checked.append(f"{MANIFEST}: format {FORMAT}, package {manifest.get('package')!r}, "
                            f"created {manifest.get('created')}")
        return manifest

    def _public_key(self) -> bytes | None:
        """The checker's key if given, else the packaged one (and say so)."""
        if self.given_key is not None:
            self.key_source = "given"
            return self.given_key
        if PUBLIC_KEY not in self.present:
            self.problems.append(f"{PUBLIC_KEY}: missing, and no key was given (--key): "
                                 "the signature cannot be checked")
            return None
        self.key_source = "package"
        return self._read_small(PUBLIC_KEY)

    def _check_signature(self, data: bytes, manifest: dict | None) -> None:
        pem = self._public_key()
        if pem is None:
            return
        try:
            self.fingerprint = fingerprint_of(pem)
        except ValueError as exc:
            where = "--key" if self.key_source == "given" else PUBLIC_KEY
            self.problems.append(f"{where}: {exc}")
            return
        if self.key_source == "package":
            self.warnings.append(KEY_FROM_PACKAGE_NOTE.format(fp=self.fingerprint))
        elif PUBLIC_KEY in self.present:
            try:
                packaged = fingerprint_of(_read(self.src, PUBLIC_KEY))
            except (ValueError, zipfile.BadZipFile, OSError):
                packaged = None
            if packaged != self.fingerprint:
                self.warnings.append(f"{PUBLIC_KEY}: differs from the key given for checking; "
                                     "the given key was used")
        if self.trusted is not None:
            if self.trusted == self.fingerprint:
                self.checked.append(f"key fingerprint {self.fingerprint} equals the trusted one")
            else:
                self.problems.append(f"{PUBLIC_KEY if self.key_source == 'package' else '--key'}: fingerprint "
                                     f"{self.fingerprint} is not the trusted {self.trusted} "
                                     "(signed by another key than the city's)")
        claimed = ((manifest or {}).get("signing") or {}).get("fingerprint_sha256")
        if manifest is not None and claimed and claimed != self.fingerprint:
            self.problems.append(f"{MANIFEST}: names signing key {claimed}, but the key used to check "
                                 f"is {self.fingerprint}")
        if SIGNATURE not in self.present:
            self.problems.append(f"{SIGNATURE}: missing: the manifest is not signed")
            return
        sig = self._read_small(SIGNATURE)
        if sig is None:
            return
        if verify_signature(pem, data, sig):
            self.checked.append(f"{MANIFEST}: signature valid (Ed25519, key {self.fingerprint})")
        else:
            self.problems.append(f"{MANIFEST}: signature does not match (manifest changed after signing, "
                                 "or signed by another key)")

    def _entries(self, manifest: dict) -> Iterator[dict]:
        for group in ("items", "extra_files", "package_files"):
            entries = manifest.get(group) or []
            if not isinstance(entries, list):
                self.problems.append(f"{MANIFEST}: '{group}' is not a list")
                continue
            for e in entries:
                if isinstance(e, dict) and isinstance(e.get("file"), str):
                    yield e
                else:
                    self.problems.append(f"{MANIFEST}: an entry in '{group}' has no file name")

    def _check_files(self, manifest: dict) -> dict[str, str]:
        """Each listed file: present, stated size, stated SHA-256. Returns file → stated hash."""
        listed: dict[str, str] = {}
        for e in self._entries(manifest):
            rel = e["file"]
            if not _safe(rel):
                self.problems.append(f"{MANIFEST}: unsafe file name {rel!r} (absolute or with '..')")
                continue
            listed[rel] = str(e.get("sha256", ""))
            if rel not in self.present:
                self.problems.append(f"{rel}: missing from the package")
                continue
            size = self.src.size(rel)
            if size != e.get("bytes"):
                self.problems.append(f"{rel}: {size} bytes, the manifest says {e.get('bytes')} "
                                     "(file changed or truncated after signing)")
                continue
            try:
                digest = _sha256(self.src, rel)
            except (zipfile.BadZipFile, OSError) as exc:
                self.problems.append(f"{rel}: cannot be read ({exc}): damaged or changed after packaging")
                continue
            if digest != e.get("sha256"):
                self.problems.append(f"{rel}: SHA-256 differs from the manifest (file changed after signing)")
            else:
                self.checked.append(f"{rel}: {size} bytes, SHA-256 matches the manifest")
        return listed

    def _check_totals(self, manifest: dict) -> None:
        totals = manifest.get("totals") or {}
        content = [e for e in (manifest.get("items") or []) + (manifest.get("extra_files") or [])
                   if isinstance(e, dict)]
        want = {"files": len(content), "bytes": sum(e["bytes"] for e in content if isinstance(e.get("bytes"), int))}
        if totals != want:
            self.problems.append(f"{MANIFEST}: totals {totals} do not add up to the listed files {want}")

    def _check_sums(self, listed: dict[str, str], manifest_data: bytes) -> None:
        """SHA256SUMS must list every manifest file with the same hash, and the files must match it."""
        if SUMS not in self.present:
            self.problems.append(f"{SUMS}: missing")
            return
        raw = self._read_small(SUMS)
        if raw is None:
            return
        try:
            sums = parse_sums(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            self.problems.append(f"{SUMS}: cannot be read ({exc})")
            return
        bad = 0
        expected = dict(listed)
        expected[MANIFEST] = hashlib.sha256(manifest_data).hexdigest()
        for rel, digest in expected.items():
            if rel not in sums:
                self.problems.append(f"{SUMS}: does not list {rel}")
                bad += 1
            elif sums[rel] != digest:
                self.problems.append(f"{SUMS}: the hash of {rel} differs from the "
                                     f"{'file' if rel == MANIFEST else 'manifest'}")
                bad += 1
        for rel in sorted(set(sums) - set(expected)):
            bad += 1
            if rel not in self.present:
                self.problems.append(f"{SUMS}: lists {rel}, which is not in the package")
            elif self._digest_or_none(rel) != sums[rel]:
                self.problems.append(f"{rel}: SHA-256 differs from {SUMS}")
            else:
                self.problems.append(f"{SUMS}: lists {rel}, which the signed manifest does not")
        if not bad:
            self.checked.append(f"{SUMS}: agrees with the manifest ({len(sums)} files)")

    def _digest_or_none(self, rel: str) -> str | None:
        try:
            return _sha256(self.src, rel)
        except (zipfile.BadZipFile, OSError):
            return None

    def _check_unlisted(self, listed: dict[str, str]) -> None:
        known = set(listed) | {MANIFEST, SIGNATURE, PUBLIC_KEY, README, SUMS}
        for rel in sorted(self.present - known):
            if rel.startswith(f"{VIDEO_DIR}/"):
                self.problems.append(f"{rel}: not listed in the signed manifest (added after signing)")
            else:
                self.warnings.append(f"{rel}: not part of the signed package (ignored)")


def parse_sums(text: str) -> dict[str, str]:
    """GNU ``sha256sum`` lines (``HASH  name`` or ``HASH *name``) → {name: hash}."""
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, rest = line.partition(" ")
        if len(digest) != 64 or not sep or rest[:1] not in (" ", "*"):
            raise ValueError(f"line {n} is not 'SHA-256  file'")
        out[rest[1:]] = digest.lower()
    return out


def _safe(rel: str) -> bool:
    p = PurePosixPath(rel)
    return bool(rel) and not p.is_absolute() and ".." not in p.parts and "\\" not in rel


# --- the archive still holds what was packaged ------------------------------------------
def verify_against_archive(package_path: Path, index, recordings_dir: Path) -> list[str]:
    """Re-hash every source segment the manifest lists in the live archive.

    An empty list proves the archive still holds exactly the footage that was packaged;
    otherwise each line names the camera and segment that differs or is gone. Check the
    package itself first with :func:`verify_package` (this reads its manifest as is).
    """
    src = _open_package(Path(package_path))
    try:
        manifest = json.loads(_read(src, MANIFEST).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotAPackage(f"{package_path}: {MANIFEST} cannot be read ({exc})") from None
    finally:
        src.close()
    problems = []
    for item in manifest.get("items") or []:
        cam = item.get("camera_id", "")
        in_index = _indexed_paths(index, cam, item)
        for seg in item.get("source_segments") or []:
            problems += _check_segment(Path(recordings_dir) / cam, cam, seg, in_index)
    return problems


def _indexed_paths(index, cam: str, item: dict) -> set[str] | None:
    """Paths the index holds for the item's interval (None when the times cannot be read)."""
    from datetime import datetime

    from varta.clock import from_datetime

    try:
        t1 = from_datetime(datetime.fromisoformat(item["asked_from"]))
        t2 = from_datetime(datetime.fromisoformat(item["asked_to"]))
    except (KeyError, TypeError, ValueError):
        return None
    return {s.path for s in index.segments_between(cam, t1, t2, include_missing=True)}


def _check_segment(cam_dir: Path, cam: str, seg: dict, in_index: set[str] | None) -> list[str]:
    rel = seg.get("path", "")
    where = f"camera {cam}: archive segment {rel}"
    if not _safe(rel):
        return [f"{where}: unsafe path in the manifest"]
    path = cam_dir / rel
    out = []
    if in_index is not None and rel not in in_index:
        out.append(f"{where}: no longer in the archive index (retention or removal?)")
    if not path.is_file():
        return out + [f"{where}: the file is gone from the archive"]
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    if h.hexdigest() != seg.get("sha256"):
        out.append(f"{where}: SHA-256 differs from the package (the archive file changed after packaging)")
    return out


# --- the command --------------------------------------------------------------------------
def verify_command(
    package: Path = typer.Argument(..., metavar="PACKAGE", help="the package folder or its .zip"),
    fingerprint: Optional[str] = typer.Option(
        None, "--fingerprint",
        help="the instance key fingerprint the city published (SHA-256 hex); without it the "
             "packaged key is only reported, not trusted"),
    key: Optional[Path] = typer.Option(
        None, "--key", help="check the signature with this public key PEM instead of the packaged one"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Check an evidence package (folder or .zip) offline: signature, hashes, completeness."""
    pem = None
    if key is not None:
        try:
            pem = key.read_bytes()
        except OSError as exc:
            typer.echo(f"cannot read the key {key}: {exc.strerror or exc}", err=True)
            raise typer.Exit(2)
    try:
        report = verify_package(package, trusted_fingerprint=fingerprint, public_key_pem=pem)
    except NotAPackage as exc:
        typer.echo(f"not an evidence package / не пакет доказів: {exc}", err=True)
        raise typer.Exit(2)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        typer.echo(format_report(package, report))
    raise typer.Exit(0 if report.ok else 1)


def format_report(package: Path, report: VerifyReport) -> str:
    """The human report: what the package is, what passed, what is wrong, the verdict."""
    m = report.manifest or {}
    inst = m.get("instance") or {}
    by = m.get("exported_by") or {}
    lines = [f"Evidence package / пакет доказів: {package}"]
    if m:
        lines.append(f"  package {m.get('package')!r}, created {m.get('created')}, "
                     f"{len(m.get('items') or [])} video file(s)")
        lines.append(f"  instance {inst.get('name', '?')} ({inst.get('id', '?')}), Varta {inst.get('version', '?')}")
        lines.append(f"  exported by {by.get('full_name') or by.get('login', '?')} ({by.get('role', '?')})")
    if report.fingerprint:
        src = "given with --key" if report.key_source == "given" else "from the package"
        lines.append(f"  signing key fingerprint (SHA-256): {report.fingerprint} ({src})")
    lines += [f"  ok    {c}" for c in report.checked]
    lines += [f"  note  {w}" for w in report.warnings]
    lines += [f"  FAIL  {p}" for p in report.problems]
    if report.ok:
        lines.append("RESULT: INTACT, every file matches the signed manifest / "
                     "ПАКЕТ ЦІЛИЙ: усі файли відповідають підписаному опису")
        if report.key_source == "package":
            lines.append("        (the key came from the package: compare its fingerprint with the city's "
                         "published one / порівняйте відбиток ключа з оприлюдненим містом)")
    else:
        lines.append(f"RESULT: NOT INTACT, {len(report.problems)} problem(s) / "
                     "ПАКЕТ ЗМІНЕНО АБО НЕПОВНИЙ")
    return "\n".join(lines)


def main() -> None:  # pragma: no cover - ``python -m varta.evidence.verify`` before CLI registration
    typer.run(verify_command)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
