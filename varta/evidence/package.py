"""Build an evidence package: stream-copied video, a signed manifest, checksums, a README.

A package is a folder (and optionally a ZIP of it) that a court clerk can check with
``sha256sum`` and ``openssl`` alone::

    NAME/
      video/<camera>_<start city time>_<end city time>.mp4   one per item, stream copy
      <extra files>                                            e.g. redacted copies
      manifest.json            what, when, who, why, and the SHA-256 of every file
      manifest.json.sig        raw Ed25519 signature of the exact manifest.json bytes
      instance-public-key.pem  the key that checks the signature
      README.txt               how to check it (Ukrainian, then English)
      SHA256SUMS               ``sha256sum -c`` list of every file but itself and the .sig

The manifest also lists the hashes of README.txt and the key file, so everything but
SHA256SUMS (a convenience copy) is covered by the signature. Each item names the archive
segments it was cut from with their own SHA-256, so the archive can later be shown to
still hold exactly what was packaged (:func:`varta.evidence.verify.verify_against_archive`).

The package is built in ``NAME.part/`` and renamed when complete: a crash or an error
never leaves a folder that looks like a finished package.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

from varta.clock import format_time, now_us, to_datetime
from varta.evidence.layout import CHUNK, FORMAT, MANIFEST, PUBLIC_KEY, README, SIGNATURE, SUMS, VIDEO_DIR, fsync_dir
from varta.evidence.signing import InstanceKey
from varta.playback.export import ExportError, export_camera, sha256_file
from varta.recording.probe import ProbeError, probe_stream_header
from varta.storage.files import FileUnavailable, segment_reader

# Names the package itself writes; extra files may not take them.
RESERVED = frozenset({MANIFEST, SIGNATURE, PUBLIC_KEY, README, SUMS})

Progress = Callable[[float], None]
_NAME_RE = re.compile(r"^[^/\\\x00-\x1f\x7f]{1,120}$")


class PackageError(Exception):
    """The package could not be built; the message names the camera/interval or file."""


@dataclass
class PackageItem:
    camera_id: str
    start_us: int
    end_us: int
    camera_name: str = ""
    address: str = ""


@dataclass
class BuiltPackage:
    path: Path
    manifest: dict
    bytes: int
    files: list[dict]  # every file in the package: {file, bytes, sha256, role}


# --- building ---------------------------------------------------------------------------
def build_package(*, index, segments_from, ffmpeg: str, out_dir: Path, name: str, items: list[PackageItem],
                  request: dict, exported_by: dict, instance: dict, key: InstanceKey, tz,
                  progress: Progress | None = None,
                  extra_files: Iterable[tuple[Path, str, dict]] = ()) -> BuiltPackage:
    """Export every item by stream copy into ``out_dir/name`` with a signed manifest.

    Any failure removes the partial folder and raises :class:`PackageError`.
    """
    _check_name(name)
    if not items:
        raise PackageError("an evidence package needs at least one camera interval")
    out_dir = Path(out_dir)
    final = out_dir / name
    if final.exists():
        raise PackageError(f"{final} already exists: a finished package is never overwritten")
    part = out_dir / f"{name}.part"
    extra_files = list(extra_files)
    _check_extra_names(extra_files)
    try:
        if part.exists():
            shutil.rmtree(part)  # left by a crash: ours by name, never looks finished
        (part / VIDEO_DIR).mkdir(parents=True)
        built_items = _export_items(index, segment_reader(segments_from), ffmpeg, part, items, tz, progress)
        extras = [_copy_extra(src, rel, fields, part) for src, rel, fields in extra_files]
        _check_originals(extras, built_items)
        manifest = _finish(part, name, built_items, extras, request, exported_by, instance, key, tz)
        files = _list_files(part, manifest)
        _fsync_tree(part)
        os.rename(part, final)
        fsync_dir(out_dir)
    except PackageError:
        shutil.rmtree(part, ignore_errors=True)
        raise
    except OSError as exc:
        shutil.rmtree(part, ignore_errors=True)
        raise PackageError(f"package {name}: cannot write {exc.filename or out_dir}: {exc.strerror or exc}") from exc
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    if progress:
        progress(1.0)
    return BuiltPackage(path=final, manifest=manifest, bytes=sum(f["bytes"] for f in files), files=files)


def _check_name(name: str) -> None:
    if not name or not _NAME_RE.match(name) or name.startswith(".") or name.endswith(".part"):
        raise PackageError(f"package name {name!r} is not usable as a folder name "
                           "(no slashes or control characters, not starting with a dot)")


def _check_extra_names(extra_files: list[tuple[Path, str, dict]]) -> None:
    """Relative, inside the package, unique, not one of the package's own files."""
    seen: set[str] = set()
    for src, rel, _fields in extra_files:
        p = PurePosixPath(rel)
        bad = (not rel or p.is_absolute() or ".." in p.parts or "\\" in rel or "\n" in rel
               or str(p) != rel or str(p) in RESERVED)
        if bad:
            raise PackageError(f"extra file {src}: {rel!r} is not a usable name inside the package "
                               f"(relative, no '..', not one of {', '.join(sorted(RESERVED))})")
        if rel in seen:
            raise PackageError(f"extra file name {rel!r} is given twice")
        seen.add(rel)


def _export_items(index, reader, ffmpeg: str, part: Path, items: list[PackageItem], tz,
                  progress: Progress | None) -> list[dict]:
    """Cut each item from the archive and describe it, with the segments it came from.

    Items are cut in parallel, one ffmpeg per core: a stream copy is bound by one core's
    demuxing, so two cameras on two cores take the time of one (bench/RESULTS.md §9).
    """
    n = len(items)
    used: set[str] = set()
    rels = [_unique(f"{VIDEO_DIR}/{video_name(item, tz)}", used) for item in items]
    done = [0.0] * n
    lock = threading.Lock()

    def step_of(i: int) -> Callable[[float], None]:
        def step(p: float) -> None:
            with lock:
                done[i] = p
                total = sum(done) / n
            if progress:
                progress(min(total, 0.99))
        return step

    with ThreadPoolExecutor(max_workers=max(1, min(n, os.cpu_count() or 1)), thread_name_prefix="package") as pool:
        futures = [pool.submit(_export_item, index, reader, ffmpeg, part, rels[i], item, tz, step_of(i))
                   for i, item in enumerate(items)]
        return [f.result() for f in futures]  # the first failure, in item order; the pool waits for the rest


def video_name(item: PackageItem, tz) -> str:
    """``mel-0012_20260303T140500_20260303T141500.mp4``: camera, asked start and end in city time."""
    cam = re.sub(r"[^A-Za-z0-9._-]", "_", item.camera_id) or "camera"
    a = to_datetime(item.start_us, tz).strftime("%Y%m%dT%H%M%S")
    b = to_datetime(item.end_us, tz).strftime("%Y%m%dT%H%M%S")
    return f"{cam}_{a}_{b}.mp4"


def _unique(rel: str, used: set[str]) -> str:
    """The same camera and interval asked twice gets ``-2``, ``-3``… rather than overwriting."""
    base, ext = os.path.splitext(rel)
    candidate, k = rel, 1
    while candidate in used:
        k += 1
        candidate = f"{base}-{k}{ext}"
    used.add(candidate)
    return candidate


def _interval(item: PackageItem, tz) -> str:
    return f"camera {item.camera_id}, {format_time(item.start_us, tz)} – {format_time(item.end_us, tz)}"


def _export_item(index, reader, ffmpeg: str, part: Path, rel: str, item: PackageItem, tz,
                 step: Callable[[float], None]) -> dict:
    """One camera interval: hash its source segments, stream-copy it, check nothing moved."""
    where = _interval(item, tz)
    if item.end_us <= item.start_us:
        raise PackageError(f"{where}: the end of the interval must be after its start")
    segs = index.segments_between(item.camera_id, item.start_us, item.end_us)
    if not segs:
        raise PackageError(f"{where}: there is no recording in this interval")
    # Hash the source segments while ffmpeg copies them (both read the same, cached, files).
    try:
        paths = {s.id: reader.segment(s) for s in segs}  # fetched once from other nodes
    except FileUnavailable as exc:
        raise PackageError(f"{where}: {exc}") from None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hash") as hasher:
        sources_future = hasher.submit(lambda: [_source_segment(paths[s.id], s, where, tz) for s in segs])
        try:
            exported = export_camera(index, reader, ffmpeg, item.camera_id, item.start_us, item.end_us,
                                     part / rel, tz, step, faststart=False)
        except ExportError as exc:
            raise PackageError(f"{where}: {exc}") from None
        sources = sources_future.result()
    after = [s.path for s in index.segments_between(item.camera_id, item.start_us, item.end_us)]
    if after != [s.path for s in segs]:
        raise PackageError(f"{where}: the archive changed while the package was being made "
                           "(retention or reconciliation ran); make the package again")
    try:
        info = probe_stream_header(part / rel)
    except ProbeError as exc:
        raise PackageError(f"{where}: the exported file cannot be read back: {exc}") from None
    return {
        "camera_id": item.camera_id,
        "camera_name": item.camera_name,
        "address": item.address,
        "asked_from": format_time(item.start_us, tz),
        "asked_to": format_time(item.end_us, tz),
        "file": rel,
        "bytes": exported.bytes,
        "sha256": exported.sha256,
        "redacted": False,
        "duration_s": exported.duration_s,
        "frames": exported.frames,
        "first_frame": exported.start,
        "last_frame": exported.end,
        "gaps": exported.gaps,
        "codec": info.codec,
        "width": info.width,
        "height": info.height,
        "fps": round(info.fps, 3) if info.fps else None,
        "source_segments": sources,
    }


def _source_segment(path: Path, seg, where: str, tz) -> dict:
    """The archive file as it is now: its hash lets anyone show later that it is unchanged."""
    try:
        digest, size = _hash_file(path)
    except FileNotFoundError:
        raise PackageError(f"{where}: recorded file {seg.path} is missing on disk; run the recorder "
                           "to reconcile, then make the package again") from None
    except OSError as exc:
        raise PackageError(f"{where}: cannot read recorded file {seg.path}: {exc.strerror or exc}") from None
    return {"path": seg.path, "start": format_time(seg.start_us, tz), "end": format_time(seg.end_us, tz),
            "bytes": size, "sha256": digest}


def _copy_extra(src: Path, rel: str, fields: dict, part: Path) -> dict:
    """Copy a caller's file in (hashing as it is written) and describe it in the manifest."""
    src = Path(src)
    dest = part / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        raise PackageError(f"extra file {rel}: that name is already taken in the package")
    h = hashlib.sha256()
    size = 0
    try:
        with open(src, "rb") as fin, open(dest, "xb") as fout:
            while chunk := fin.read(CHUNK):
                h.update(chunk)
                fout.write(chunk)
                size += len(chunk)
    except FileNotFoundError:
        raise PackageError(f"extra file {src} (for {rel}) does not exist") from None
    except OSError as exc:
        raise PackageError(f"extra file {src} (for {rel}): {exc.strerror or exc}") from None
    entry = {"file": rel, "bytes": size, "sha256": h.hexdigest()}
    clash = sorted(set(fields or {}) & set(entry))
    if clash:
        raise PackageError(f"extra file {rel}: the package sets {', '.join(clash)} itself; do not pass them")
    entry.update(fields or {})
    return entry


def _check_originals(extras: list[dict], items: list[dict]) -> None:
    """A redacted copy must point at a video that is really in this package."""
    videos = [it["file"] for it in items]
    for e in extras:
        original = e.get("original")
        if original is not None and original not in videos:
            raise PackageError(f"extra file {e['file']}: its original {original!r} is not in the package "
                               f"(the videos are: {', '.join(videos)})")


# --- manifest, signature, checksums, README ---------------------------------------------
def _finish(part: Path, name: str, items: list[dict], extras: list[dict], request: dict, exported_by: dict,
            instance: dict, key: InstanceKey, tz) -> dict:
    """Write the key and README, then the manifest that hashes them, its signature and sums."""
    fingerprint = key.fingerprint()
    created = now_us()
    (part / PUBLIC_KEY).write_bytes(key.public_pem())
    (part / README).write_text(readme_text(name, fingerprint, format_time(created, tz), instance),
                               encoding="utf-8")
    support = [_describe(part, PUBLIC_KEY), _describe(part, README)]
    content = items + extras
    manifest = {
        "format": FORMAT,
        "package": name,
        "created": format_time(created, tz),
        "created_utc": format_time(created),
        "time_zone": str(getattr(tz, "key", tz)),
        "instance": instance,
        "exported_by": exported_by,
        "request": request,
        "signing": {
            "algorithm": "Ed25519",
            "public_key": PUBLIC_KEY,
            "fingerprint_sha256": fingerprint,
            "signature": SIGNATURE,
            "signed_data": f"the exact bytes of {MANIFEST}",
        },
        "items": items,
        "extra_files": extras,
        "package_files": support,
        "totals": {"files": len(content), "bytes": sum(e["bytes"] for e in content)},
    }
    data = manifest_bytes(manifest)
    (part / MANIFEST).write_bytes(data)
    (part / SIGNATURE).write_bytes(key.sign(data))
    # Every file was hashed as it was made (the videos as ffmpeg finished them): no second pass.
    sums = {e["file"]: e["sha256"] for e in content + support}
    sums[MANIFEST] = hashlib.sha256(data).hexdigest()
    (part / SUMS).write_text(sums_text(sums), encoding="utf-8")
    return manifest


def manifest_bytes(manifest: dict) -> bytes:
    """The one serialisation: UTF-8, Cyrillic as is, indent 2, keys in insertion order."""
    return (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def sums_text(sums: dict[str, str]) -> str:
    """GNU ``sha256sum`` text format (hash, two spaces, path), sorted by path."""
    return "".join(f"{digest}  {rel}\n" for rel, digest in sorted(sums.items()))


def _describe(part: Path, rel: str) -> dict:
    digest, size = _hash_file(part / rel)
    return {"file": rel, "bytes": size, "sha256": digest}


def _list_files(part: Path, manifest: dict) -> list[dict]:
    """Every file of the finished package with its role, hash and size (for the caller's records)."""
    roles = {e["file"]: "video" for e in manifest["items"]}
    roles.update({e["file"]: "extra" for e in manifest["extra_files"]})
    roles.update({PUBLIC_KEY: "key", README: "readme", MANIFEST: "manifest", SIGNATURE: "signature",
                  SUMS: "checksums"})
    known = {e["file"]: e for e in manifest["items"] + manifest["extra_files"] + manifest["package_files"]}
    out = []
    for rel, role in roles.items():
        if rel in known:
            out.append({"file": rel, "bytes": known[rel]["bytes"], "sha256": known[rel]["sha256"], "role": role})
        else:
            digest, size = _hash_file(part / rel)
            out.append({"file": rel, "bytes": size, "sha256": digest, "role": role})
    return out


def readme_text(name: str, fingerprint: str, created: str, instance: dict) -> str:
    """What the package is and how to check it with standard tools, Ukrainian then English."""
    inst = instance.get("name") or instance.get("id") or "Varta"
    return f"""\
ПАКЕТ ДОКАЗІВ {name}
Створено: {created}, система відеоспостереження «Варта» ({inst}).

Що це. Відеозаписи з архіву міських камер, скопійовані без перекодування (кадри ті самі,
що записала камера), і опис manifest.json: які камери, за який час, хто і на підставі якого
запиту вивантажив, а також SHA-256 кожного файлу. manifest.json підписано ключем Ed25519
цієї системи (manifest.json.sig); відкритий ключ - instance-public-key.pem.

Як перевірити (Linux, macOS, WSL; потрібен OpenSSL 3.0 або новіший), у цій теці:

  1. Файли не змінено:
       sha256sum -c SHA256SUMS
     кожен рядок має закінчуватися на «OK» (macOS: shasum -a 256 -c SHA256SUMS).

  2. Опис підписано і не змінено після підпису:
       openssl pkeyutl -verify -pubin -inkey instance-public-key.pem -rawin -in manifest.json -sigfile manifest.json.sig
     має вивести «Signature Verified Successfully».

  3. Ключ справді належить місту:
       openssl pkey -pubin -in instance-public-key.pem -outform DER | sha256sum
     має дати {fingerprint}
     Цей відбиток сам по собі нічого не доводить (ключ лежить у тому самому пакеті):
     порівняйте його з відбитком, який місто оприлюднило окремо (офіційний сайт, лист).

  4. Геші у SHA256SUMS мають збігатися з полями «sha256» у manifest.json
     (або все разом: varta verify <тека-або-zip> --fingerprint <оприлюднений відбиток>).

Якщо хоч одна перевірка не проходить - пакет змінено після створення або він неповний.

------------------------------------------------------------------------------------------

EVIDENCE PACKAGE {name}
Created: {created} by the Varta video surveillance system ({inst}).

What this is. Video from the city's camera archive, copied without re-encoding (the same
frames the camera recorded), and manifest.json describing it: which cameras, which time,
who exported it on which request, and the SHA-256 of every file. manifest.json is signed
with this system's Ed25519 key (manifest.json.sig); the public key is
instance-public-key.pem.

How to check it (Linux, macOS, WSL; needs OpenSSL 3.0 or newer), in this folder:

  1. The files are unchanged:
       sha256sum -c SHA256SUMS
     every line must end in "OK" (macOS: shasum -a 256 -c SHA256SUMS).

  2. The manifest is signed and unchanged since signing:
       openssl pkeyutl -verify -pubin -inkey instance-public-key.pem -rawin -in manifest.json -sigfile manifest.json.sig
     must print "Signature Verified Successfully".

  3. The key really is the city's:
       openssl pkey -pubin -in instance-public-key.pem -outform DER | sha256sum
     must print {fingerprint}
     This fingerprint proves nothing by itself (the key travels in this same package):
     compare it with the fingerprint the city published separately (official site, letter).

  4. The hashes in SHA256SUMS must equal the "sha256" fields in manifest.json
     (or all at once: varta verify <folder-or-zip> --fingerprint <published fingerprint>).

If any check fails, the package was changed after it was made, or it is incomplete.
"""


# --- zip --------------------------------------------------------------------------------
def zip_package(package_dir: Path, zip_path: Path | None = None) -> Path:
    """ZIP the package (stored, zip64) under its own name as the top folder.

    Stored, not deflated: MP4 does not compress, and stored members stream straight out.
    Written to ``.part`` and renamed, so an interrupted zip is never taken for a package.
    """
    package_dir = Path(package_dir)
    if not (package_dir / MANIFEST).is_file():
        raise PackageError(f"{package_dir} is not an evidence package (no {MANIFEST})")
    zip_path = Path(zip_path) if zip_path else package_dir.with_name(package_dir.name + ".zip")
    tmp = zip_path.with_name(zip_path.name + ".part")
    top = package_dir.name
    files = sorted(p for p in package_dir.rglob("*") if p.is_file())
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for path in sorted(files, key=_zip_order):
                zf.write(path, f"{top}/{path.relative_to(package_dir).as_posix()}")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, zip_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(zip_path.parent)
    return zip_path


def _zip_order(path: Path) -> tuple[int, str]:
    """README first, so that someone opening the zip sees it before the videos."""
    return (0 if path.name == README else 1, path.as_posix())


# --- small helpers ----------------------------------------------------------------------
def _hash_file(path: Path) -> tuple[str, int]:
    """(SHA-256, size) of a finished file."""
    return sha256_file(path), path.stat().st_size


def _fsync_tree(root: Path) -> None:
    """The package is on disk before it gets its final name (evidence outlives a power cut)."""
    for p in root.rglob("*"):
        if p.is_file():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
    for d in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
        fsync_dir(d)


