#!/usr/bin/env python3
"""Access journal: append throughput with concurrent writers, and verify time for 1 M lines.

Targets (issue 3): append >= 2,000 lines/s with concurrent writers; verify 1 M lines <= 10 s.

Append: W writer threads in each of P processes call ``Journal.append`` (one line per
call, each call durable on return, like a web request journaling a view) for a fixed
time. The floor is the same writers doing a plain ``INSERT`` of the same row, one
transaction per line, into a table with no chain and no head lock: what the database
gives before Varta adds anything.

Verify: a journal of 1 M lines (written by ``Journal`` itself in batches, so the chain is
real) is verified by ``Journal.verify()``; the floor is reading the same rows with a bare
DB-API cursor, which any verification has to do.

Usage::

    .venv/bin/python bench/journal_bench.py                       # SQLite, 1 M lines
    .venv/bin/python bench/journal_bench.py --quick               # 200 k lines, shorter windows
    .venv/bin/python bench/journal_bench.py --postgres postgresql://u:p@127.0.0.1/varta_bench
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from varta.access.journal import Entry, Journal, _Pending  # noqa: E402
from varta.db.engine import make_engine, open_database  # noqa: E402

OUT = BENCH / "out" / "journal"


def entry(i: int, who: str) -> Entry:
    return Entry(account=who, full_name="Шевченко Олена Петрівна", role="department", source="10.20.0.10",
                 access="direct", action="archive.play", object=f"camera:mel-{i % 500:04d}",
                 detail="2026-03-03T14:05:00.000+02:00 – 2026-03-03T14:40:00.000+02:00")


def _writer_process(url: str, threads: int, seconds: float, mode: str, q) -> None:
    import sqlalchemy as sa

    engine = make_engine(url)
    j = Journal(engine)
    counts = [0] * threads
    stop = time.monotonic() + seconds
    plain = sa.text("INSERT INTO plain_lines (time_us, account, full_name, role, source, access, action, object, "
                    "result, detail) VALUES (:time_us, :account, :full_name, :role, :source, :access, :action, "
                    ":object, :result, :detail)")

    def run(k: int) -> None:
        i = 0
        while time.monotonic() < stop:
            e = entry(i, f"user{os.getpid()}-{k}")
            if mode == "varta":
                j.append(e)
            else:
                with engine.begin() as conn:
                    conn.execute(plain, e.__dict__)
            i += 1
        counts[k] = i

    ts = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    q.put(sum(counts))


def append_rate(url: str, processes: int, threads: int, seconds: float, mode: str) -> float:
    q = mp.get_context("spawn").Queue()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer_process, args=(url, threads, seconds, mode, q)) for _ in range(processes)]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    total = sum(q.get() for _ in procs)
    for p in procs:
        p.join()
    # Process start-up (imports) is not writing time: rate over the writers' window.
    del t0
    return total / seconds


def fresh_database(args, name: str) -> str:
    if args.postgres:
        import sqlalchemy as sa

        admin = make_engine(args.postgres).execution_options(isolation_level="AUTOCOMMIT")
        db = f"varta_journal_bench_{name}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{db}"'))
        admin.dispose()
        return args.postgres.rsplit("/", 1)[0] + "/" + db
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return f"sqlite:///{path}"


def build(url: str, lines: int) -> Journal:
    engine = open_database(url)
    j = Journal(engine)
    batch = 20000
    for start in range(0, lines, batch):
        j._write([_Pending(entry(i, f"user{i % 37}")) for i in range(start, min(lines, start + batch))])
    return j


def bare_read_seconds(engine) -> float:
    t = time.perf_counter()
    with engine.connect().execution_options(stream_results=True, yield_per=20000) as conn:
        res = conn.exec_driver_sql("SELECT seq, time_us, account, full_name, role, source, access, action, object, "
                                   "result, detail, prev_hash, hash FROM journal ORDER BY seq")
        n = 0
        while chunk := res.fetchmany(20000):
            n += len(chunk)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--postgres", help="admin URL of a PostgreSQL server (a scratch database is made)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--lines", type=int, default=None)
    ap.add_argument("--results", help="append the Markdown block to this file")
    args = ap.parse_args()
    lines = args.lines or (200_000 if args.quick else 1_000_000)
    seconds = 5.0 if args.quick else 15.0
    db = "PostgreSQL" if args.postgres else "SQLite (WAL, synchronous=NORMAL)"
    rows = []

    print(f"journal bench on {db}: append windows of {seconds:.0f} s, verify over {lines:,} lines", flush=True)
    for processes, threads in ((1, 1), (1, 8), (1, 32), (4, 8)):
        url = fresh_database(args, "append")
        engine = open_database(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE plain_lines (id INTEGER PRIMARY KEY, time_us BIGINT, account TEXT, "
                                 "full_name TEXT, role TEXT, source TEXT, access TEXT, action TEXT, object TEXT, "
                                 "result TEXT, detail TEXT)" if not args.postgres else
                                 "CREATE TABLE plain_lines (id BIGSERIAL PRIMARY KEY, time_us BIGINT, account TEXT, "
                                 "full_name TEXT, role TEXT, source TEXT, access TEXT, action TEXT, object TEXT, "
                                 "result TEXT, detail TEXT)")
        engine.dispose()
        floor = append_rate(url, processes, threads, seconds, "plain")
        varta = append_rate(url, processes, threads, seconds, "varta")
        check = Journal(open_database(url)).verify()
        writers = processes * threads
        print(f"  {processes} process(es) x {threads} threads = {writers:>3} writers: Varta {varta:8.0f} lines/s "
              f"(target >= 2000) | floor plain INSERT {floor:8.0f} lines/s | chain after: "
              f"{'intact' if check.ok else 'BROKEN'} ({check.lines} lines)", flush=True)
        rows.append(f"| {processes} × {threads} = {writers} | {varta:,.0f} | {floor:,.0f} | "
                    f"{'intact' if check.ok else 'BROKEN'}, {check.lines:,} lines |")

    url = fresh_database(args, "verify")
    t = time.perf_counter()
    j = build(url, lines)
    built = time.perf_counter() - t
    read = bare_read_seconds(j.engine)
    t = time.perf_counter()
    v = j.verify()
    took = time.perf_counter() - t
    print(f"  verify {v.lines:,} lines: {took:.2f} s (target <= 10 s for 1 M) | floor bare read of the rows "
          f"{read:.2f} s | {'intact' if v.ok else 'BROKEN'} | built in {built:.1f} s", flush=True)

    block = "\n".join([
        f"### {db}", "",
        f"Append: {seconds:.0f} s window per row; each line its own durable `append` call.", "",
        "| writers (processes × threads) | Varta lines/s (≥ 2,000) | floor: plain INSERT, txn per line | chain |",
        "|---|---|---|---|", *rows, "",
        f"Verify: {v.lines:,} lines in **{took:.2f} s** (≤ 10 s); floor (reading the rows, no hashing) {read:.2f} s; "
        f"{'intact' if v.ok else 'BROKEN'}.", "",
    ])
    OUT.mkdir(parents=True, exist_ok=True)
    with open(args.results or (BENCH / "out" / "journal.md"), "a") as fh:
        fh.write(block + "\n")


if __name__ == "__main__":
    main()
