"""Evidence packages end to end: a real fMP4 archive (ffmpeg), a real SQLite index, the
package built by stream copy, and the checks a court clerk would run: ``varta verify``,
``sha256sum -c``, ``openssl pkeyutl``; tampering with any byte must be caught and named."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conftest import have_ffmpeg
from varta.cameras.model import Camera
from varta.cameras.registry import CameraRegistry
from varta.clock import US, format_time, parse_time
from varta.db.engine import open_database
from varta.evidence.package import PackageError, PackageItem, build_package, video_name, zip_package
from varta.evidence.signing import InstanceKey, KeyFileError, verify_signature
from varta.evidence.verify import verify_against_archive, verify_package
from varta.recording.ffmpeg import FMP4_FLAGS, relative_segment_path
from varta.recording.index import ArchiveIndex

pytestmark = pytest.mark.skipif(not have_ffmpeg(), reason="ffmpeg/ffprobe not installed")

TZ = ZoneInfo("Europe/Kyiv")
T0 = parse_time("2026-03-03T12:00:00", TZ)  # the archive starts here (10:00 UTC)
SEG_S = 2
CAMERAS = {"mel-0012": ("testsrc2", None), "mel-0031": ("smptebars", 3)}  # pattern, index of a lost segment
REQUEST = {"number": "2026/17", "kind": "police", "document": "Запит № 17 від 03.03.2026",
           "basis": "ст. 93 КПК", "resolution": "погоджено, Шевченко О. П."}
EXPORTED_BY = {"login": "shevchenko.o", "full_name": "Шевченко Олена Петрівна", "role": "department",
               "source": "direct"}
INSTANCE = {"name": "Melitopol city", "id": "mel", "version": "0.1.0"}


# --- the archive --------------------------------------------------------------------------
def _record(cam_dir: Path, pattern: str, seconds: int) -> list[tuple[str, float, float]]:
    """Encode a test pattern into fMP4 segments exactly as the recorder writes them."""
    tmp = cam_dir / "tmp"
    tmp.mkdir(parents=True)
    subprocess.run([
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
        "-f", "lavfi", "-i", f"{pattern}=size=320x240:rate=25", "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-bf", "0",
        "-g", "25", "-keyint_min", "25", "-sc_threshold", "0",
        "-f", "segment", "-segment_time", str(SEG_S), "-segment_format", "mp4",
        "-segment_format_options", f"movflags={FMP4_FLAGS}", "-reset_timestamps", "1",
        "-segment_list", str(tmp / "list.csv"), "-segment_list_type", "csv", str(tmp / "%03d.mp4"),
    ], check=True, capture_output=True, timeout=120)
    with open(tmp / "list.csv", newline="") as fh:
        rows = [(name, float(a), float(b)) for name, a, b in csv.reader(fh)]
    return rows


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Two cameras, 12 s each in 2-s segments; camera mel-0031 lost one segment (a gap)."""
    root = tmp_path_factory.mktemp("archive")
    recordings = root / "recordings"
    engine = open_database(f"sqlite:///{root / 'varta.db'}")
    index = ArchiveIndex(engine)
    for cam, (pattern, lost) in CAMERAS.items():
        CameraRegistry(engine).add(Camera(id=cam, main_url=f"rtsp://10.1.0.{cam[-2:]}/101"))
        cam_dir = recordings / cam
        rows = _record(cam_dir, pattern, 12)
        for k, (name, a, b) in enumerate(rows):
            start, end = T0 + int(round(a * US)), T0 + int(round(b * US))
            if k == lost:
                continue
            basename = format_time(start).replace("-", "").replace(":", "")[:15] + f"Z-run{cam[-2:]}.mp4"
            rel = relative_segment_path(basename)
            (cam_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(cam_dir / "tmp" / name, cam_dir / rel)
            index.add_segment(camera_id=cam, start_us=start, end_us=end, path=rel,
                              bytes=(cam_dir / rel).stat().st_size, init_bytes=0, codec="h264", width=320,
                              height=240, fps=25.0, run_id=f"run{cam[-2:]}", recorder="n1")
        shutil.rmtree(cam_dir / "tmp")
    yield {"root": root, "recordings": recordings, "index": index, "engine": engine}
    engine.dispose()


def _items() -> list[PackageItem]:
    return [
        PackageItem("mel-0012", T0 + int(3.5 * US), T0 + int(9.2 * US), "Площа Перемоги", "пл. Перемоги, 1"),
        PackageItem("mel-0031", T0 + 2 * US, T0 + 10 * US, "Автостанція", "вул. Кізіярська, 8"),
    ]


def _build(archive, out_dir: Path, name: str = "EV-2026-0017", **kw):
    key = InstanceKey.load_or_create(archive["root"] / "keys")
    args = dict(index=archive["index"], segments_from=archive["recordings"], ffmpeg="ffmpeg", out_dir=out_dir,
                name=name, items=_items(), request=REQUEST, exported_by=EXPORTED_BY, instance=INSTANCE,
                key=key, tz=TZ)
    args.update(kw)
    return build_package(**args)


@pytest.fixture(scope="module")
def built(archive, tmp_path_factory):
    """One package for the read-only checks; tamper tests work on copies of it."""
    redacted = archive["root"] / "redacted.mp4"
    shutil.copyfile(next((archive["recordings"] / "mel-0012").rglob("*.mp4")), redacted)
    steps: list[float] = []
    original = f"video/{video_name(_items()[0], TZ)}"
    pkg = _build(archive, tmp_path_factory.mktemp("out"), progress=steps.append,
                 extra_files=[(redacted, "video/redacted/mel-0012_faces-blurred.mp4",
                               {"redacted": True, "original": original, "method": "test copy"})])
    return pkg, steps


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _varta_verify(*args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``varta verify`` as a clerk runs it: a fresh process with no VARTA_HOME and no database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VARTA_")}
    env["HOME"] = str(cwd or Path.cwd())
    return subprocess.run([sys.executable, "-m", "varta.cli", "verify", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def _copy(pkg_path: Path, dest: Path) -> Path:
    target = dest / pkg_path.name
    shutil.copytree(pkg_path, target)
    return target


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


# --- the package as built ---------------------------------------------------------------
def test_layout_manifest_and_source_segments(archive, built):
    pkg, steps = built
    m = pkg.manifest
    root = pkg.path
    assert root.is_dir() and not root.with_name(root.name + ".part").exists()
    names = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    videos = [it["file"] for it in m["items"]]
    assert names == set(videos) | {"video/redacted/mel-0012_faces-blurred.mp4", "manifest.json",
                                   "manifest.json.sig", "instance-public-key.pem", "SHA256SUMS", "README.txt"}
    # Names: camera + asked start and end in city time.
    for item, it in zip(_items(), m["items"]):
        start = format_time(item.start_us, TZ)[:19].replace("-", "").replace(":", "")
        end = format_time(item.end_us, TZ)[:19].replace("-", "").replace(":", "")
        assert it["file"] == f"video/{item.camera_id}_{start}_{end}.mp4"
        assert it["asked_from"] == format_time(item.start_us, TZ) and it["asked_to"] == format_time(item.end_us, TZ)
        assert it["camera_name"] == item.camera_name and it["address"] == item.address
        assert it["redacted"] is False and it["codec"] == "h264" and (it["width"], it["height"]) == (320, 240)
        assert it["bytes"] == (root / it["file"]).stat().st_size and it["sha256"] == _sha256(root / it["file"])
        # Every archive segment the file came from, hashed as read from the archive.
        rows = archive["index"].segments_between(item.camera_id, item.start_us, item.end_us)
        assert [s["path"] for s in it["source_segments"]] == [r.path for r in rows]
        for s, r in zip(it["source_segments"], rows):
            f = archive["recordings"] / item.camera_id / r.path
            assert s["sha256"] == _sha256(f) and s["bytes"] == f.stat().st_size
            assert s["start"] == format_time(r.start_us, TZ) and s["end"] == format_time(r.end_us, TZ)
        assert it["first_frame"] <= it["asked_from"] and it["frames"] > 0
    # The lost segment of mel-0031 is reported as a gap inside its interval.
    assert m["items"][0]["gaps"] == []
    assert len(m["items"][1]["gaps"]) == 1
    assert m["items"][1]["gaps"][0]["start"] == format_time(T0 + 6 * US, TZ)
    assert m["format"] == "varta-evidence/1" and m["package"] == "EV-2026-0017"
    assert m["created"].endswith("+02:00") and m["created_utc"].endswith("+00:00")
    assert parse_time(m["created"], TZ) == parse_time(m["created_utc"], TZ)
    assert m["request"] == REQUEST and m["exported_by"] == EXPORTED_BY and m["instance"] == INSTANCE
    extra = m["extra_files"][0]
    assert extra["redacted"] is True and extra["method"] == "test copy" and extra["original"] == videos[0]
    assert extra["sha256"] == _sha256(root / extra["file"])
    contents = m["items"] + m["extra_files"]
    assert m["totals"] == {"files": len(contents), "bytes": sum(e["bytes"] for e in contents)}
    # The file on disk is exactly the manifest returned; Cyrillic is stored as UTF-8 text.
    text = (root / "manifest.json").read_text(encoding="utf-8")
    assert json.loads(text) == m and "Шевченко Олена Петрівна" in text
    assert pkg.bytes == sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert {f["file"] for f in pkg.files} == names
    assert steps and steps == sorted(steps) and steps[-1] == 1.0


def test_the_video_is_a_stream_copy_of_the_archive(archive, built):
    """The same coded pictures as in the archive, bit for bit: nothing was re-encoded.

    ffmpeg's concat demuxer repeats the parameter sets (SPS/PPS) in front of each keyframe
    (its h264_mp4toannexb step); every other NAL unit must be byte-identical and in order,
    and the decoded frames must be identical too.
    """
    pkg, _ = built
    for it in pkg.manifest["items"]:
        cam_dir = archive["recordings"] / it["camera_id"]
        sources = [cam_dir / s["path"] for s in it["source_segments"]]
        exported = _coded_pictures(pkg.path / it["file"])
        source = [p for f in sources for p in _coded_pictures(f)]
        assert len(exported) == it["frames"] > 25
        assert _is_sublist(exported, source), f"{it['file']}: coded pictures differ from the archive"
        assert exported[0][0] >> 8 == 5, f"{it['file']} does not start with a keyframe"
        decoded = _decoded_hashes(pkg.path / it["file"])
        assert _is_sublist(decoded, [h for f in sources for h in _decoded_hashes(f)])
        assert _probe(pkg.path / it["file"]) == _probe(sources[0])


def _coded_pictures(path: Path) -> list[tuple[int, ...]]:
    """Per packet: the H.264 NAL units except parameter sets, as (type << 8 | …, hash) pairs."""
    import av

    out = []
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        extradata = video.codec_context.extradata
        length_size = (extradata[4] & 3) + 1  # avcC lengthSizeMinusOne
        for packet in container.demux(video):
            if not packet.size:
                continue
            data, units, i = bytes(packet), [], 0
            while i < len(data):
                n = int.from_bytes(data[i:i + length_size], "big")
                nal = data[i + length_size:i + length_size + n]
                i += length_size + n
                if nal[0] & 0x1F not in (7, 8, 9):  # SPS, PPS, access unit delimiter
                    units.append(((nal[0] & 0x1F) << 8, hashlib.sha256(nal).hexdigest()))
            out.append(tuple(x for u in units for x in u))
    return out


def _decoded_hashes(path: Path) -> list[str]:
    out = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(path), "-map", "0:v:0",
                          "-f", "framemd5", "-"], check=True, capture_output=True, text=True).stdout
    return [line.rsplit(",", 1)[1].strip() for line in out.splitlines() if line and not line.startswith("#")]


def _is_sublist(small: list, big: list) -> bool:
    return any(big[i:i + len(small)] == small for i in range(len(big) - len(small) + 1))


def _probe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=codec_name,profile,level,width,height,pix_fmt,r_frame_rate", "-of", "json",
                          str(path)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)["streams"][0]


def test_key_file_is_private_stable_and_never_replaced(tmp_path):
    keys = tmp_path / "keys"
    key = InstanceKey.load_or_create(keys)
    path = keys / "instance_ed25519.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert b"BEGIN PRIVATE KEY" in path.read_bytes()
    again = InstanceKey.load_or_create(keys)
    assert again.fingerprint() == key.fingerprint()
    sig = key.sign(b"data")
    assert len(sig) == 64 and verify_signature(again.public_pem(), b"data", sig)
    assert not verify_signature(again.public_pem(), b"datA", sig)
    # A damaged key is an error that says what to do; the file stays as it was.
    path.write_bytes(path.read_bytes()[:40])
    damaged = path.read_bytes()
    with pytest.raises(KeyFileError, match="never replaced automatically"):
        InstanceKey.load_or_create(keys)
    assert path.read_bytes() == damaged


def test_processes_starting_together_share_one_key(tmp_path):
    code = ("import sys; from pathlib import Path; from varta.evidence.signing import InstanceKey; "
            "print(InstanceKey.load_or_create(Path(sys.argv[1])).fingerprint())")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "keys")], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    prints = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(prints) == 1 and len(prints.pop()) == 64
    assert [p.name for p in (tmp_path / "keys").iterdir()] == ["instance_ed25519.pem"]


def test_fingerprint_matches_openssl(archive, built):
    pkg, _ = built
    out = subprocess.run("openssl pkey -pubin -in instance-public-key.pem -outform DER | sha256sum", shell=True,
                         cwd=pkg.path, check=True, capture_output=True, text=True).stdout
    fp = out.split()[0]
    assert fp == pkg.manifest["signing"]["fingerprint_sha256"]
    assert fp == InstanceKey.load_or_create(archive["root"] / "keys").fingerprint()
    assert fp in (pkg.path / "README.txt").read_text(encoding="utf-8")


def test_standard_tools_check_the_package(built, tmp_path):
    pkg, _ = built
    readme = (pkg.path / "README.txt").read_text(encoding="utf-8")
    openssl_cmd = ("openssl pkeyutl -verify -pubin -inkey instance-public-key.pem -rawin "
                   "-in manifest.json -sigfile manifest.json.sig")
    for cmd in ("sha256sum -c SHA256SUMS", openssl_cmd,
                "openssl pkey -pubin -in instance-public-key.pem -outform DER | sha256sum"):
        assert cmd in readme, f"README.txt lacks {cmd}"
    assert readme.index("ПАКЕТ ДОКАЗІВ") < readme.index("EVIDENCE PACKAGE")
    sums = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=pkg.path, capture_output=True, text=True)
    assert sums.returncode == 0, sums.stdout + sums.stderr
    listed = {line.rsplit(": ", 1)[0] for line in sums.stdout.splitlines()}
    present = {p.relative_to(pkg.path).as_posix() for p in pkg.path.rglob("*") if p.is_file()}
    assert listed == present - {"SHA256SUMS", "manifest.json.sig"}
    good = subprocess.run(openssl_cmd.split(), cwd=pkg.path, capture_output=True, text=True)
    assert good.returncode == 0 and "Signature Verified Successfully" in good.stdout
    # After tampering both standard tools object.
    copy = _copy(pkg.path, tmp_path)
    manifest = copy / "manifest.json"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(text.replace("Шевченко Олена", "Шевченко Ольга", 1), encoding="utf-8")
    bad = subprocess.run(openssl_cmd.split(), cwd=copy, capture_output=True, text=True)
    assert bad.returncode != 0 and "Signature Verification Failure" in bad.stdout + bad.stderr
    assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=copy, capture_output=True,
                          text=True).stdout.strip() == "manifest.json: FAILED"


# --- varta verify -----------------------------------------------------------------------
def test_varta_verify_passes_offline_and_reports_the_key_source(built, tmp_path):
    pkg, _ = built
    fp = pkg.manifest["signing"]["fingerprint_sha256"]
    res = _varta_verify(pkg.path, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "INTACT" in res.stdout and fp in res.stdout
    assert "taken from the package itself" in res.stdout
    for it in pkg.manifest["items"]:
        assert it["file"] in res.stdout
    # With the published fingerprint (as people copy it: upper case, colons) it is trusted.
    published = ":".join(fp[i:i + 2] for i in range(0, 64, 2)).upper()
    res = _varta_verify(pkg.path, "--fingerprint", published, "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    rep = json.loads(res.stdout)
    assert rep["ok"] is True and rep["problems"] == [] and rep["fingerprint"] == fp
    assert rep["manifest"]["package"] == pkg.manifest["package"]
    # Another key's fingerprint: not the city's signature.
    other = InstanceKey.load_or_create(tmp_path / "other-keys")
    res = _varta_verify(pkg.path, "--fingerprint", other.fingerprint(), cwd=tmp_path)
    assert res.returncode == 1 and "not the trusted" in res.stdout and "NOT INTACT" in res.stdout
    # Checking with a key file the city handed over.
    (tmp_path / "city.pem").write_bytes((pkg.path / "instance-public-key.pem").read_bytes())
    (tmp_path / "other.pem").write_bytes(other.public_pem())
    assert _varta_verify(pkg.path, "--key", tmp_path / "city.pem", cwd=tmp_path).returncode == 0
    res = _varta_verify(pkg.path, "--key", tmp_path / "other.pem", cwd=tmp_path)
    assert res.returncode == 1 and "manifest.json: signature does not match" in res.stdout


def test_varta_verify_exit_2_for_what_is_not_a_package(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    for target in (tmp_path / "missing", tmp_path / "notes.txt", tmp_path / "empty"):
        res = _varta_verify(target, cwd=tmp_path)
        assert res.returncode == 2, (target, res.stdout, res.stderr)
        assert "not an evidence package" in res.stderr


def test_one_flipped_byte_in_a_video_is_caught_and_named(built, tmp_path):
    pkg, _ = built
    copy = _copy(pkg.path, tmp_path)
    victim = pkg.manifest["items"][1]["file"]
    _flip(copy / victim, (copy / victim).stat().st_size // 2)
    res = _varta_verify(copy, cwd=tmp_path)
    assert res.returncode == 1
    assert f"{victim}: SHA-256 differs from the manifest (file changed after signing)" in res.stdout
    rep = verify_package(copy)
    assert not rep.ok and rep.problems == [f"{victim}: SHA-256 differs from the manifest (file changed after signing)"]
    other = pkg.manifest["items"][0]["file"]
    assert any(other in c and "matches" in c for c in rep.checked)


def test_one_flipped_byte_in_the_manifest_breaks_the_signature(built, tmp_path):
    pkg, _ = built
    copy = _copy(pkg.path, tmp_path)
    manifest = copy / "manifest.json"
    data = manifest.read_bytes()
    # A digit of a byte count: still valid JSON, only the signature can tell.
    pos = data.index(b'"bytes": ') + len(b'"bytes": ')
    _flip(manifest, pos)
    json.loads(manifest.read_bytes())
    res = _varta_verify(copy, cwd=tmp_path)
    assert res.returncode == 1
    assert ("manifest.json: signature does not match (manifest changed after signing, or signed by another key)"
            in res.stdout)
    # A flipped byte that breaks the JSON is named too.
    manifest.write_bytes(data)
    _flip(manifest, 0)
    rep = verify_package(copy)
    assert not rep.ok and any(p.startswith("manifest.json: cannot be read") for p in rep.problems)
    assert any(p.startswith("manifest.json: signature does not match") for p in rep.problems)


def test_added_missing_and_truncated_files_are_named(built, tmp_path):
    pkg, _ = built
    copy = _copy(pkg.path, tmp_path)
    first, second = (it["file"] for it in pkg.manifest["items"])
    shutil.copyfile(copy / first, copy / "video" / "mel-0099_extra.mp4")
    (copy / second).unlink()
    extra = pkg.manifest["extra_files"][0]["file"]
    with open(copy / extra, "r+b") as fh:
        fh.truncate(100)
    rep = verify_package(copy)
    assert not rep.ok
    assert "video/mel-0099_extra.mp4: not listed in the signed manifest (added after signing)" in rep.problems
    assert f"{second}: missing from the package" in rep.problems
    assert any(p.startswith(f"{extra}: 100 bytes, the manifest says") for p in rep.problems)
    assert not any(first in p for p in rep.problems)


def test_zip_form_verifies_the_same(built, tmp_path):
    pkg, _ = built
    z = zip_package(pkg.path, tmp_path / "EV-2026-0017.zip")
    assert z.is_file() and not (tmp_path / "EV-2026-0017.zip.part").exists()
    with zipfile.ZipFile(z) as zf:
        infos = zf.infolist()
        assert all(i.filename.startswith("EV-2026-0017/") for i in infos)
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        assert {i.filename[len("EV-2026-0017/"):] for i in infos} == {f["file"] for f in pkg.files}
    res = _varta_verify(z, "--fingerprint", pkg.manifest["signing"]["fingerprint_sha256"], cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    rep_zip, rep_dir = verify_package(z), verify_package(pkg.path)
    assert rep_zip.ok and rep_zip.checked == rep_dir.checked and rep_zip.manifest == rep_dir.manifest
    # The same flipped byte inside the zip is caught and named.
    victim = pkg.manifest["items"][0]["file"]
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(z) as src, zipfile.ZipFile(bad, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = bytearray(src.read(info))
            if info.filename.endswith(victim):
                data[len(data) // 2] ^= 0x01
            dst.writestr(info, bytes(data))
    res = _varta_verify(bad, cwd=tmp_path)
    assert res.returncode == 1 and f"{victim}: SHA-256 differs from the manifest" in res.stdout
    # A byte flipped in the ZIP file itself (the member's CRC no longer matches) is named too.
    raw = tmp_path / "raw.zip"
    shutil.copyfile(z, raw)
    with zipfile.ZipFile(raw) as zf:
        info = zf.getinfo(f"EV-2026-0017/{victim}")
    with open(raw, "rb") as fh:
        fh.seek(info.header_offset)
        header = fh.read(30)
    name_len, extra_len = int.from_bytes(header[26:28], "little"), int.from_bytes(header[28:30], "little")
    data_at = info.header_offset + 30 + name_len + extra_len  # the local header, then the data
    _flip(raw, data_at + info.file_size // 2)
    rep = verify_package(raw)
    assert not rep.ok and len(rep.problems) == 1 and rep.problems[0].startswith(f"{victim}: cannot be read")


def test_the_archive_still_holds_what_was_packaged(archive, built, tmp_path):
    pkg, _ = built
    assert verify_against_archive(pkg.path, archive["index"], archive["recordings"]) == []
    # A copy of the archive where one source segment changed and one is gone.
    recordings = tmp_path / "recordings"
    shutil.copytree(archive["recordings"], recordings)
    it = pkg.manifest["items"][0]
    changed, gone = it["source_segments"][0]["path"], it["source_segments"][1]["path"]
    cam_dir = recordings / it["camera_id"]
    _flip(cam_dir / changed, 1000)
    (cam_dir / gone).unlink()
    problems = verify_against_archive(pkg.path, archive["index"], recordings)
    assert problems == [
        f"camera {it['camera_id']}: archive segment {changed}: SHA-256 differs from the package "
        "(the archive file changed after packaging)",
        f"camera {it['camera_id']}: archive segment {gone}: the file is gone from the archive",
    ]


# --- failures leave nothing behind ------------------------------------------------------
def test_no_recording_in_the_interval_is_a_clear_error(archive, tmp_path):
    late = PackageItem("mel-0012", T0 + 3600 * US, T0 + 3700 * US)
    with pytest.raises(PackageError) as exc:
        _build(archive, tmp_path, items=[_items()[0], late])
    msg = str(exc.value)
    assert "mel-0012" in msg and "no recording" in msg and format_time(late.start_us, TZ) in msg
    assert list(tmp_path.iterdir()) == []


def test_a_file_missing_from_the_archive_is_a_clear_error(archive, tmp_path):
    recordings = tmp_path / "recordings"
    shutil.copytree(archive["recordings"], recordings)
    item = _items()[1]
    lost = archive["index"].segments_between(item.camera_id, item.start_us, item.end_us)[1].path
    (recordings / item.camera_id / lost).unlink()
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(PackageError) as exc:
        _build(archive, out, segments_from=recordings)
    assert f"camera {item.camera_id}" in str(exc.value) and lost in str(exc.value) and "missing" in str(exc.value)
    assert list(out.iterdir()) == []


def test_a_finished_package_is_never_overwritten(archive, built):
    pkg, _ = built
    before = _sha256(pkg.path / "manifest.json")
    with pytest.raises(PackageError, match="already exists"):
        _build(archive, pkg.path.parent)
    assert _sha256(pkg.path / "manifest.json") == before


def test_extra_files_are_checked_before_anything_is_kept(archive, tmp_path):
    src = tmp_path / "copy.mp4"
    src.write_bytes(b"not really a video")
    out = tmp_path / "out"
    out.mkdir()
    cases = [
        ("../escape.mp4", {}, "not a usable name"),
        ("manifest.json", {}, "not a usable name"),
        ("video/a.mp4", {"sha256": "0" * 64}, "sets sha256 itself"),
        ("video/a.mp4", {"redacted": True, "original": "video/not-in-package.mp4"}, "is not in the package"),
    ]
    for rel, fields, message in cases:
        with pytest.raises(PackageError, match=message):
            _build(archive, out, items=[_items()[0]], extra_files=[(src, rel, fields)])
        assert list(out.iterdir()) == []
    with pytest.raises(PackageError, match="does not exist"):
        _build(archive, out, items=[_items()[0]], extra_files=[(tmp_path / "gone.mp4", "video/b.mp4", {})])
    assert list(out.iterdir()) == []
