"""The access journal is one hash chain; any edit, insertion, deletion, reordering or cut
tail is found and the first bad line named — on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
import sqlalchemy as sa

from varta.access.journal import Entry, Journal, load_heads, publish_head

ROOT_ENV = {"PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[1])}


def _entry(i: int, who: str = "shevchenko") -> Entry:
    return Entry(account=who, full_name="Шевченко Олена Петрівна", role="department", source="10.20.0.10",
                 access="direct", action="archive.play", object=f"camera:mel-{i % 7:04d}",
                 detail=f"2026-03-03T14:{i % 60:02d}:00+02:00 – 2026-03-03T14:40:00+02:00")


def _unlock(engine) -> None:
    """What an attacker with the database's owner rights does first: drop the append-only guard."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER journal_append_only_update")
            conn.exec_driver_sql("DROP TRIGGER journal_append_only_delete")
        else:
            conn.exec_driver_sql("ALTER TABLE journal DISABLE TRIGGER journal_append_only")


def _fill(engine, n: int = 20) -> Journal:
    j = Journal(engine)
    for i in range(n):
        j.append(_entry(i))
    return j


def test_concurrent_writers_in_threads_and_processes_make_one_intact_chain(engine, db_url):
    j = Journal(engine)
    code = ("import sys; from varta.db.engine import open_database; from varta.access.journal import Journal, Entry\n"
            "j = Journal(open_database(sys.argv[1]))\n"
            "for i in range(60): j.append(Entry('proc', 'Процес Другий', 'police', '203.0.113.9', 'remote', "
            "'live.view', f'camera:mel-{i:04d}'))\n")
    other = subprocess.Popen([sys.executable, "-c", code, db_url], env={**ROOT_ENV, "PATH": "/usr/bin:/bin"})
    threads = [threading.Thread(target=lambda k=k: [j.append(_entry(i, f"user{k}")) for i in range(40)])
               for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert other.wait(timeout=120) == 0
    v = j.verify()
    assert v.ok, v.problems
    assert v.lines == 4 * 40 + 60 and v.last_seq == v.lines  # numbered 1..N without holes
    assert {ln["account"] for ln in j.lines()} == {"user0", "user1", "user2", "user3", "proc"}


def test_the_database_refuses_to_change_or_delete_journal_lines(engine):
    _fill(engine, 3)
    for stmt in ("UPDATE journal SET result = 'ok' WHERE seq = 2", "DELETE FROM journal WHERE seq = 3"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with engine.begin() as conn:
                conn.exec_driver_sql(stmt)
    assert Journal(engine).verify().ok


@pytest.mark.parametrize("tamper, first_bad", [
    ("edit", 7),
    ("delete", 7),
    ("reorder", 7),
    ("insert", 9),  # a well-forged line 8 is consistent; line 9 no longer follows it
])
def test_tampering_is_found_and_the_first_bad_line_named(engine, db_url, tmp_path, tamper, first_bad):
    j = _fill(engine)
    assert j.verify().ok
    _unlock(engine)
    with engine.begin() as conn:
        if tamper == "edit":  # someone hides who watched: one field of line 7
            conn.exec_driver_sql("UPDATE journal SET account = 'nobody' WHERE seq = 7")
        elif tamper == "delete":
            conn.exec_driver_sql("DELETE FROM journal WHERE seq = 7")
        elif tamper == "reorder":  # lines 7 and 8 swap places (their numbers are swapped)
            conn.exec_driver_sql("UPDATE journal SET seq = -1 WHERE seq = 7")
            conn.exec_driver_sql("UPDATE journal SET seq = 7 WHERE seq = 8")
            conn.exec_driver_sql("UPDATE journal SET seq = 8 WHERE seq = -1")
        else:  # a forged line slipped in after line 7, the rest renumbered, with a valid-looking hash
            conn.exec_driver_sql("UPDATE journal SET seq = seq + 1000 WHERE seq > 7")
            conn.exec_driver_sql("UPDATE journal SET seq = seq - 999 WHERE seq > 1000")
            prev = conn.exec_driver_sql("SELECT hash FROM journal WHERE seq = 7").scalar()
            from varta.access.journal import canonical, chain_hash

            e = _entry(99, "ghost")
            h = chain_hash(prev, canonical(8, e))
            conn.execute(sa.text("INSERT INTO journal VALUES (8, :t, :a, :f, :r, :s, :x, :act, :o, 'ok', :d, :p, :h)"),
                         {"t": e.time_us, "a": e.account, "f": e.full_name, "r": e.role, "s": e.source, "x": e.access,
                          "act": e.action, "o": e.object, "d": e.detail, "p": prev, "h": h})
    v = j.verify()
    assert not v.ok
    assert v.problems[0].seq == first_bad, [str(p) for p in v.problems]
    # The same from the command line: exit 1, the first bad line named.
    res = subprocess.run([sys.executable, "-m", "varta.cli", "journal", "verify"], capture_output=True, text=True,
                         env={**ROOT_ENV, "PATH": "/usr/bin:/bin", "VARTA_HOME": str(tmp_path),
                              "VARTA_DATABASE_URL": db_url}, timeout=120)
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"first bad line {first_bad}" in res.stderr and f"line {first_bad}:" in res.stdout


def test_a_rewritten_or_cut_chain_is_caught_by_the_published_head(engine, tmp_path):
    from zoneinfo import ZoneInfo

    j = _fill(engine, 10)
    head = publish_head(j, tmp_path, ZoneInfo("Europe/Kyiv"), "test")
    assert head["seq"] == 10 and (tmp_path / f"{head['date']}.json").exists()
    assert j.verify(load_heads(tmp_path)).ok
    _unlock(engine)
    with engine.begin() as conn:  # cut the last three lines and fix up the head row
        conn.exec_driver_sql("DELETE FROM journal WHERE seq > 7")
        conn.exec_driver_sql("UPDATE journal_head SET seq = 7, hash = (SELECT hash FROM journal WHERE seq = 7)")
    assert j.verify().ok  # the chain alone cannot tell …
    v = j.verify(load_heads(tmp_path))  # … the head published earlier can
    assert not v.ok and v.problems[0].seq == 10 and "cut off" in str(v.problems[0])


def test_a_printed_register_does_not_flood_the_log(caplog):
    """fpdf2's font subsetting (fontTools) logged hundreds of INFO lines per PDF into a node's
    log; a register still prints, with Cyrillic, and the log stays quiet."""
    import logging

    from varta.pdftable import table_pdf

    caplog.set_level(logging.INFO)
    pdf = table_pdf("Журнал доступу", "з 01.12.2026 по 03.12.2026", ("час", "хто", "дія"), (40, 60, 80),
                    [("03.12.2026 10:00", "Коваленко М. І.", "перегляд архіву")] * 30)
    assert pdf.startswith(b"%PDF") and len(pdf) > 1000
    noisy = [r for r in caplog.records if r.name.startswith("fontTools") and r.levelno < logging.WARNING]
    assert not noisy, f"{len(noisy)} fontTools lines, e.g. {noisy[0].getMessage()}"


def test_the_journal_reads_in_ukrainian_without_changing_what_is_stored():
    from varta.access import wording

    samples = {
        "restricted-zone workstation; stage full": "робоче місце обмеженої зони; етап: повний доступ",
        "remote; second factor; stage full": "віддалений доступ; другий фактор; етап: повний доступ",
        "wrong password (failure 2; locked until 2026-12-04T16:00:00.000+02:00)":
            "невірний пароль (спроба 2; заблоковано до 2026-12-04T16:00:00.000+02:00)",
        "live sub stream stopped after 12 s": "додатковий потік: перегляд завершено за 12 с",
        "viewed 2026-12-04T16:00:00.000+02:00 – 2026-12-04T16:00:30.000+02:00 (3 segments)":
            "переглянуто 2026-12-04T16:00:00.000+02:00 – 2026-12-04T16:00:30.000+02:00 (3 фрагменти)",
        "viewed a – b (11 segments)": "переглянуто a – b (11 фрагментів)",
        "json … – … {} (21 lines)": "перегляд … – … (21 рядок)",
        "node 1f2e started: analytics, recorder, web at http://127.0.0.1:8080":
            "вузол 1f2e запущено: аналітика, запис, веб, адреса http://127.0.0.1:8080",
        "play recorded video: only from a restricted-zone workstation (A4.4, A4.5)":
            "перегляд записів: лише з робочого місця обмеженої зони (A4.4, A4.5)",
        "live video: not permitted to role admin (A4.3, R1, R11)":
            "відео наживо: не дозволено ролі «Адміністратор системи» (A4.3, R1, R11)",
        '{"person": "Коваль А. І.", "organisation": "", "purpose": "заміна диска", "let_in_by": "Коваленко М. І.", '
        '"entered": "2026-11-21T09:10:00.000+02:00", "left": null}':
            "хто: Коваль А. І.; мета: заміна диска; допустив(-ла): Коваленко М. І.; увійшов(-ла): 2026-11-21T09:10:00.000+02:00",
    }
    for stored, shown in samples.items():
        assert wording.detail(stored, "uk") == shown
        assert wording.detail(stored, "en") == stored  # English: as written
    assert wording.detail("something no pattern knows", "uk") == "something no pattern knows"
    ln = {"account": "os:root", "full_name": "operating-system user root", "role": "console", "source": "console:root",
          "access": "direct", "action": "camera.manage", "object": "camera:mel-0012", "result": "refused", "detail": ""}
    uk = wording.line(ln, "uk")
    assert (uk["account"], uk["role"], uk["source"], uk["action"], uk["object"], uk["result"], uk["access"]) == (
        "ОС:root", "консоль сервера", "консоль:root", "керування камерами", "камера mel-0012", "відмовлено", "безпосередній")
    assert wording.line(ln, "en")["object"] == "camera mel-0012" and wording.line(ln, "en")["account"] == "os:root"
    assert set(wording.ACTIONS) >= set(__import__("varta.access.policy", fromlist=["MATRIX"]).MATRIX)


def test_a_track_search_reads_in_ukrainian_in_the_journal():
    from varta.access import wording

    stored = "01.12.2026 00:00:00 – 04.12.2026 23:00:00 {'class': ['person'], 'heading': ['w'], 'colour': ['red']}: 4 tracks"
    assert wording.detail(stored, "uk") == ("01.12.2026 00:00:00 – 04.12.2026 23:00:00 (клас: людина; напрямок: на захід; "
                                            "колір: червоний): знайдено 4")
    assert wording.object_text("tracks", "uk") == "треки камер"
    assert wording.object_text("subscription:7", "uk") == "підписка 7"
