"""The pure half of backup and restore (varta/operations/backup_manifest.py): the row
encoding keeps every value's type, the manifest checks name what is wrong."""

from __future__ import annotations

import json

import pytest

from varta.operations.backup_manifest import (
    BackupError, Member, check_members, check_revision, decode_row, encode_row, make_manifest, parse_manifest,
    safe_member_name, target_is_empty,
)


def test_rows_round_trip_with_bytes_json_objects_and_odd_text():
    row = [1, 2**62, "Площа Перемоги \u2028 \"q\"", None, True, 0.1, b"\x00\xffkey",
           {"$bytes": "looks like bytes but is a JSON object"}, [1, {"a": None}], float("inf")]
    assert decode_row(encode_row(row)) == row
    assert "\n" not in encode_row(row)  # one line a row


def _manifest(**kw):
    args = dict(version="0.1.0", created="2026-12-04T21:00:00+00:00", created_us=1, host="h", node_id=None,
                db_kind="sqlite", dump="sqlite-file", revision="0016", tables={"journal": 3},
                journal=(3, "ab" * 32), members=[Member("keys/a.pem", 10, "1" * 64), Member("node.json", 5, "2" * 64)])
    args.update(kw)
    return make_manifest(**args)


def test_members_are_checked_by_size_and_hash_and_nothing_extra_passes():
    m = parse_manifest(json.dumps(_manifest()).encode())
    good = {"keys/a.pem": (10, "1" * 64), "node.json": (5, "2" * 64), "manifest.json": (1, "x")}
    assert check_members(m, good) == []
    bad = {"keys/a.pem": (10, "3" * 64), "extra.sh": (1, "4" * 64)}
    problems = check_members(m, bad)
    assert any(p.startswith("keys/a.pem: SHA-256") for p in problems)
    assert "node.json: missing from the archive" in problems
    assert "extra.sh: in the archive but not in the manifest" in problems


def test_a_manifest_that_is_not_ours_or_escapes_the_folder_is_refused():
    with pytest.raises(BackupError, match="not a Varta backup"):
        parse_manifest(json.dumps({"format": "something-else/1"}).encode())
    with pytest.raises(BackupError, match="not valid JSON"):
        parse_manifest(b"{")
    m = _manifest(members=[Member("../../etc/passwd", 1, "0" * 64)])
    with pytest.raises(BackupError, match="outside"):
        parse_manifest(json.dumps(m).encode())
    assert not safe_member_name("/etc/passwd") and safe_member_name("keys/secrets.json")


def test_a_newer_schema_is_refused_and_an_empty_target_is_recognised():
    check_revision("0015", ["0016", "0015"], "0016")
    with pytest.raises(BackupError, match="newer than this version"):
        check_revision("0099", ["0016", "0015"], "0016")
    assert target_is_empty({}, [])
    assert target_is_empty({"journal_head": 1, "alembic_version": 1, "accounts": 0}, [])
    assert not target_is_empty({"accounts": 1}, [])
    assert not target_is_empty({}, ["instance_ed25519.pem"])
