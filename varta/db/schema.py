"""The database schema (SQLAlchemy Core).

All instants are ``BigInteger`` µs UTC (see ``varta.clock``). The migrations in
``migrations/versions`` create exactly these tables; a test compares the two.
See docs/design/recording.md for why the segment index looks like this.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
)

metadata = MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer, "sqlite")

cameras = Table(
    "cameras",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("address", String(300), nullable=False, default=""),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("group_name", String(100), nullable=False, default=""),
    Column("main_url", Text, nullable=False),  # stream addresses: sealed (varta/secrets)
    Column("sub_url", Text),
    Column("retention_days", Integer, nullable=False),
    Column("schedule", JSON, nullable=False),
    Column("recorder", String(100)),  # node that records it; NULL = any/default node
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("view_direction", Float),  # field of view: degrees from north, clockwise
    Column("view_angle", Float),  # its width, degrees
    Column("view_range_m", Float),  # how far it makes out a person, metres
    Column("sensitivity", String(16), nullable=False, default="normal", server_default="normal"),  # lockdown scope
    # Removing a camera hides it and stops recording; its footage stays under retention
    # (and holds) like any other, so a removal never destroys evidence.
    Column("removed_us", BigInteger),
)

segments = Table(
    "segments",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("camera_id", String(64), ForeignKey("cameras.id", ondelete="CASCADE"), nullable=False),
    Column("start_us", BigInteger, nullable=False),
    Column("end_us", BigInteger, nullable=False),
    Column("path", Text, nullable=False),  # relative to the recordings folder
    Column("bytes", BigInteger, nullable=False),
    Column("init_bytes", Integer, nullable=False),  # size of ftyp+moov: the HLS init section
    Column("codec", String(32), nullable=False, default=""),
    Column("width", Integer),
    Column("height", Integer),
    Column("fps", Float),
    Column("run_id", String(32), nullable=False),  # one ffmpeg run: contiguous segments
    Column("recorder", String(100), nullable=False),  # the id of the node whose disk holds the file
    # ok | repaired (truncated tail cut off after a crash) | missing (file vanished)
    Column("status", String(16), nullable=False, default="ok"),
    # Where the bytes are (storage/layout.py): local (the recorder's disk only) | both
    # (shipped to the bucket, a cache copy kept) | s3 (the bucket only).
    Column("stored", String(8), nullable=False, default="local", server_default="local"),
    Column("sha256", String(64)),  # of the file, computed once while shipping it
    # Its object carries an S3 Object Lock legal hold (a Varta hold covers it: storage/holds.py).
    Column("locked", Boolean, nullable=False, default=False, server_default=false()),
)
Index("ix_segments_camera_start", segments.c.camera_id, segments.c.start_us)
Index("ix_segments_start", segments.c.start_us)
# A node's own footage, oldest first: retention, free space and the per-node forecast read it.
Index("ix_segments_recorder_start", segments.c.recorder, segments.c.start_us)
# What a node has still to ship (a handful of rows), and its cache copies to release.
Index("ix_segments_locked", segments.c.id,
      postgresql_where=segments.c.locked.is_(True), sqlite_where=segments.c.locked.is_(True))
Index("ix_segments_unshipped", segments.c.recorder, segments.c.id,
      postgresql_where=segments.c.stored != "s3", sqlite_where=segments.c.stored != "s3")

# Continuous recorded stretches per camera, kept in step with `segments` by ArchiveIndex.
# Derived data, stored because "what is recorded over this day/month" must not read every
# segment (8,640 a day per camera): appending a segment extends the last span in place.
spans = Table(
    "spans",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("camera_id", String(64), ForeignKey("cameras.id", ondelete="CASCADE"), nullable=False),
    Column("start_us", BigInteger, nullable=False),
    Column("end_us", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False, default=0),  # of the segments in the span
)
Index("ix_spans_camera_end", spans.c.camera_id, spans.c.end_us)

outages = Table(
    "outages",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("camera_id", String(64), ForeignKey("cameras.id", ondelete="CASCADE"), nullable=False),
    Column("start_us", BigInteger, nullable=False),
    Column("end_us", BigInteger),  # NULL while the outage goes on
    Column("reason", String(32), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("recorder", String(100), nullable=False),
)
Index("ix_outages_camera_start", outages.c.camera_id, outages.c.start_us)

camera_status = Table(
    "camera_status",
    metadata,
    Column("camera_id", String(64), ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True),
    Column("recorder", String(100), nullable=False),
    Column("state", String(16), nullable=False),  # recording | reconnecting | failed | off | stopped
    Column("reason", String(32), nullable=False, default=""),
    Column("detail", Text, nullable=False, default=""),
    Column("since_us", BigInteger, nullable=False),
    Column("last_segment_end_us", BigInteger),
    Column("bitrate_bps", Float),
    Column("fps", Float),
    Column("lag_s", Float),
    Column("updated_us", BigInteger, nullable=False),
)

holds = Table(
    "holds",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("camera_id", String(64), ForeignKey("cameras.id", ondelete="CASCADE"), nullable=False),
    Column("start_us", BigInteger, nullable=False),
    Column("end_us", BigInteger, nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("created_us", BigInteger, nullable=False),
    Column("released_us", BigInteger),  # set by a destruction instruction (A4.6)
    # The order (instruction or request) the interval belongs to; NULL only for rows made
    # before issue 6. No FK: retention reads this table alone, and an order is never deleted.
    Column("order_id", BigInteger),
)
Index("ix_holds_camera", holds.c.camera_id, holds.c.start_us)
Index("ix_holds_order", holds.c.order_id)

# Superseded by ``jobs`` like ``evidence_jobs`` (kept for a rolling upgrade).
exports = Table(
    "exports",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("cameras", JSON, nullable=False),
    Column("start_us", BigInteger, nullable=False),
    Column("end_us", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # queued | running | done | failed
    Column("progress", Float, nullable=False, default=0.0),
    Column("out_path", Text, nullable=False),
    Column("files", JSON, nullable=False),
    Column("error", Text, nullable=False, default=""),
    Column("node", String(100), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("finished_us", BigInteger),
)

system_alarms = Table(
    "system_alarms",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(48), nullable=False),
    Column("severity", String(16), nullable=False),  # info | warning | critical
    Column("camera_id", String(64)),
    Column("message", Text, nullable=False),
    Column("node", String(100), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("cleared_us", BigInteger),
)
Index("ix_system_alarms_created", system_alarms.c.created_us)

# --- access (docs/design/access.md) ------------------------------------------------------
# Named accounts (A4.3). Passwords are argon2id hashes; the TOTP secret is the second factor
# that remote sessions must present.
users = Table(
    "users",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("login", String(64), nullable=False, unique=True),
    Column("full_name", String(300), nullable=False),  # surname, name, patronymic
    Column("position", String(200), nullable=False, default=""),
    Column("organisation", String(200), nullable=False, default=""),
    Column("role", String(32), nullable=False),
    Column("camera_groups", JSON, nullable=False),  # [] = every camera, except for police: none
    Column("active", Boolean, nullable=False, default=True),
    Column("password_hash", Text, nullable=False),
    Column("must_change_password", Boolean, nullable=False, default=True),
    Column("totp_secret", Text),  # sealed with the secrets key (varta/secrets), never in clear
    Column("totp_last_step", BigInteger),  # a code is accepted once (no replay)
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until_us", BigInteger),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    # Single sign-on (issue 19): an account provisioned by an OpenID provider is found by the
    # provider's issuer and subject; it has no usable local password (docs/access.md).
    Column("sso_issuer", String(300)),
    Column("sso_subject", String(255)),
)
Index("ux_users_sso", users.c.sso_issuer, users.c.sso_subject, unique=True)

# Browser sessions. The cookie carries a random token; only its SHA-256 is stored, so a
# copy of the database does not let anyone log in.
sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # sha256(token)
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("stage", String(16), nullable=False),  # full | password (must change) | totp_enrol
    Column("access", String(8), nullable=False),  # direct | remote (A4.3)
    Column("restricted", Boolean, nullable=False),  # from a restricted-zone workstation (A4.5)
    Column("source", String(64), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("last_seen_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),  # absolute expiry
)
Index("ix_sessions_user", sessions.c.user_id)

# Scoped, expiring, revocable tokens for outside systems such as police dispatch (R11, MVS-3).
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(24), primary_key=True),  # public part of the token
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("scopes", JSON, nullable=False),  # actions the token may perform
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("revoked_us", BigInteger),
    Column("last_used_us", BigInteger),
)

# Archive viewings not yet journaled: one row per viewer and camera while a recording is
# played, one journal line when it ends (varta/access/viewings.py).
archive_views = Table(
    "archive_views",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("viewer", String(80), nullable=False),  # session id (a hash) or "token:<id>"
    Column("camera_id", String(64), nullable=False),
    Column("account", String(64), nullable=False),
    Column("full_name", String(200), nullable=False),
    Column("role", String(32), nullable=False),
    Column("source", String(64), nullable=False),
    Column("access", String(8), nullable=False),
    Column("from_us", BigInteger, nullable=False),
    Column("to_us", BigInteger, nullable=False),
    Column("segments", Integer, nullable=False),
    Column("opened_us", BigInteger, nullable=False),
    Column("touched_us", BigInteger, nullable=False),
)
Index("ix_archive_views_viewer", archive_views.c.viewer, archive_views.c.camera_id)
Index("ix_archive_views_touched", archive_views.c.touched_us)

# A city may tighten the order's permission matrix, never loosen it: a row here removes
# one action from one role (varta.access.policy).
policy_restrictions = Table(
    "policy_restrictions",
    metadata,
    Column("role", String(32), primary_key=True),
    Column("action", String(48), primary_key=True),
    Column("created_us", BigInteger, nullable=False),
    Column("created_by", String(64), nullable=False),
)

# The city's limits beside its restrictions (varta/access/bulkview.py LIMITS: bulk viewing).
policy_limits = Table(
    "policy_limits",
    metadata,
    Column("name", String(48), primary_key=True),
    Column("value", Float, nullable=False),
    Column("set_us", BigInteger, nullable=False),
    Column("set_by", String(64), nullable=False),
)

# The access journal: append-only and hash-chained (varta.access.journal). `seq` is given
# under the head row's lock, so lines form one chain even with many writers and nodes.
journal = Table(
    "journal",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("time_us", BigInteger, nullable=False),
    Column("account", String(64), nullable=False),
    Column("full_name", String(300), nullable=False),
    Column("role", String(32), nullable=False),
    Column("source", String(64), nullable=False),
    Column("access", String(8), nullable=False),  # direct | remote
    Column("action", String(48), nullable=False),
    Column("object", String(200), nullable=False),
    Column("result", String(16), nullable=False),  # ok | refused | failed
    Column("detail", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
Index("ix_journal_time", journal.c.time_us)
Index("ix_journal_object", journal.c.object, journal.c.time_us)

journal_head = Table(
    "journal_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

# --- analytics and events (docs/design/analytics.md) -------------------------------------
# A camera's analytics settings: analysis rate, stream, priority, masks and rules (JSON,
# validated by varta.analytics.config). Kept apart from ``cameras`` because it changes
# often and is read only by analytics workers and the console.
analytics_config = Table(
    "analytics_config",
    metadata,
    Column("camera_id", String(64), ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True),
    Column("config", JSON, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)

# What each camera's analysis is doing now, written by the worker that owns it.
analytics_status = Table(
    "analytics_status",
    metadata,
    Column("camera_id", String(64), ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True),
    Column("worker", String(100), nullable=False),
    Column("state", String(16), nullable=False),  # analysing | degraded | motion_only | no_video | off
    Column("detail", Text, nullable=False, default=""),
    Column("target_fps", Float, nullable=False),
    Column("actual_fps", Float, nullable=False, default=0.0),
    Column("detect_fps", Float, nullable=False, default=0.0),
    Column("allowed_fps", Float, nullable=True),  # the governor's rate now (< target_fps: overloaded)
    Column("lag_s", Float, nullable=True),  # longest frame-taken → analysed delay over the last report
    # Analysis has run without a break from since_us to updated_us: the motion/events
    # recording modes drop footage only inside that window (recording/activity.py).
    Column("since_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)

# One row per rule hit (R3, R6): opened when the rule fires, closed (end_us) when it stops.
# Geometry is normalised 0..1 so it draws on any stream size.
events = Table(
    "events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("camera_id", String(64), ForeignKey("cameras.id", ondelete="CASCADE"), nullable=False),
    Column("rule", String(100), nullable=False),
    Column("kind", String(16), nullable=False),  # zone | line | loiter | crowd | stopped | tamper | motion
    Column("severity", String(16), nullable=False),  # info | warning | alarm
    Column("zone", String(100)),
    Column("label", String(32)),  # person, car, ... (none for tampering)
    Column("track_id", Integer),
    Column("score", Float, nullable=False, default=0.0),
    Column("start_us", BigInteger, nullable=False),
    Column("end_us", BigInteger),  # NULL while it goes on
    Column("box", JSON),  # [x1, y1, x2, y2] normalised, at the snapshot
    Column("path", JSON),  # [[t_offset_s, x, y], ...] normalised anchor points
    Column("heading", String(16)),  # picture compass point (varta.analytics.direction)
    Column("speed_px_s", Float),
    Column("detail", JSON, nullable=False),
    Column("snapshot", Text),  # relative to the events folder
    Column("worker", String(100), nullable=False),
    Column("state", String(16), nullable=False, default="new"),  # new | acknowledged
    Column("verdict", String(8)),  # true | false (the operator's judgement)
    Column("handled_by", String(64)),
    Column("handled_us", BigInteger),
    Column("updated_us", BigInteger, nullable=False),
    # The alarm feed's position, set by a trigger on every insert and update (migration 0005):
    # on PostgreSQL the writing transaction's id, on SQLite a counter taken under the write
    # lock. The feed reads what is below the oldest transaction still running, so a late
    # commit is never skipped (varta/events/feed.py), whatever the nodes' clocks say.
    Column("feed_pos", BigInteger),
)
Index("ix_events_camera_start", events.c.camera_id, events.c.start_us)
Index("ix_events_start", events.c.start_us)
Index("ix_events_updated", events.c.updated_us)
Index("ix_events_feed", events.c.feed_pos)

# The operator's actions on an event (acknowledge, true/false, note); also journaled.
event_actions = Table(
    "event_actions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_id", BigInteger, ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    Column("action", String(16), nullable=False),  # ack | true | false | note
    Column("account", String(64), nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("created_us", BigInteger, nullable=False),
)
Index("ix_event_actions_event", event_actions.c.event_id)

# Spans with motion, for the "motion" recording mode: the janitor keeps the footage
# around them (pre/post roll) and drops the rest of a motion-mode period.
motion_spans = Table(
    "motion_spans",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("camera_id", String(64), ForeignKey("cameras.id", ondelete="CASCADE"), nullable=False),
    Column("start_us", BigInteger, nullable=False),
    Column("end_us", BigInteger),  # NULL while motion goes on
)
Index("ix_motion_spans_camera", motion_spans.c.camera_id, motion_spans.c.start_us)


# --- evidence (docs/design/evidence.md) ------------------------------------------------
# A hold order: one instruction (A4.6) or one request's automatic hold, over one or more
# camera intervals (rows of ``holds``). Released only by a destruction instruction, or by
# its request closing. Never deleted: the register is a record.
hold_orders = Table(
    "hold_orders",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("number", String(32), nullable=False, unique=True),  # H-2026-0001
    Column("kind", String(16), nullable=False),  # instruction | request
    Column("reason", Text, nullable=False, default=""),
    Column("instruction_no", String(64), nullable=False, default=""),
    Column("instruction_date", String(10)),  # YYYY-MM-DD (a document date, no time)
    Column("author", String(300), nullable=False, default=""),
    Column("author_office", String(32), nullable=False, default=""),  # mayor | first_deputy | deputy_mayor
    Column("request_id", BigInteger),
    Column("incident_id", BigInteger),
    Column("created_by", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("released_us", BigInteger),
    Column("released_by", String(64)),
    Column("release_no", String(64)),
    Column("release_date", String(10)),
    Column("release_author", String(300)),
    Column("release_office", String(32)),
    Column("release_note", Text),
)

# Requests for recordings (A4.7–A4.11) and their answer.
evidence_requests = Table(
    "evidence_requests",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("number", String(32), nullable=False, unique=True),  # REQ-2026-0001
    Column("kind", String(16), nullable=False),  # police | court | third_party | council_unit
    Column("state", String(16), nullable=False),
    Column("incoming_no", String(100), nullable=False),
    Column("incoming_date", String(10), nullable=False),
    Column("requester", Text, nullable=False),  # the requesting body
    Column("contact", Text, nullable=False, default=""),
    Column("basis", Text, nullable=False),  # legal basis, or the reasons (third parties)
    Column("purpose", Text, nullable=False, default=""),
    Column("items", JSON, nullable=False),  # [{camera_id, start_us, end_us}]
    Column("redaction", JSON),  # options for a redacted copy (third parties, A4.8)
    Column("incident_id", BigInteger),
    Column("hold_order_id", BigInteger),
    Column("registered_by", String(64), nullable=False),
    Column("registered_us", BigInteger, nullable=False),
    Column("resolution", String(16)),  # approved | refused
    Column("resolution_text", Text),
    Column("resolution_date", String(10)),
    Column("resolved_by", String(64)),
    Column("resolver_name", String(300)),
    Column("resolver_office", String(32)),
    Column("resolved_us", BigInteger),
    Column("due_date", String(10)),  # 5 working days after the resolution (A4.10)
    Column("package", JSON),  # the built package: name, zip, bytes, sha256, fingerprint, built
    Column("transfer", JSON),  # the last transfer: target, location, url, expiry, sse
    Column("closed_us", BigInteger),
    Column("updated_us", BigInteger, nullable=False),
    # Filed on line by an outside system (R11, docs/police-exchange.md): the filing account,
    # which alone of the police sees it; null when the department typed it in.
    Column("filed_by", String(64)),
)
Index("ix_evidence_requests_state", evidence_requests.c.state, evidence_requests.c.due_date)
Index("ix_evidence_requests_filed_by", evidence_requests.c.filed_by)

# Documents that came with a request (the scanned letter), kept with their SHA-256 and
# listed in the package's manifest. In the database: every node reads them, a backup has them.
request_attachments = Table(
    "request_attachments",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("request_id", BigInteger, nullable=False),
    Column("name", String(200), nullable=False),
    Column("media_type", String(100), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("added_by", String(64), nullable=False),
    Column("added_us", BigInteger, nullable=False),
)
Index("ix_request_attachments_request", request_attachments.c.request_id)

# One record per track the analytics followed (varta/analytics/trackrecords.py), for search
# across cameras (varta/search): found by time first, then camera, class, heading, colour.
track_records = Table(
    "track_records",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("camera_id", String(64), nullable=False),
    Column("label", String(32), nullable=False),
    Column("start_us", BigInteger, nullable=False),
    Column("end_us", BigInteger, nullable=False),
    Column("path", JSON, nullable=False),  # [[t_s, x, y]] normalised, simplified
    Column("entry", String(8), nullable=False),
    Column("exit", String(8), nullable=False),
    Column("heading", String(12)),  # the picture's: up, up-right, ...
    Column("compass", String(2)),  # n, ne, ... (the camera's view direction known)
    Column("speed", Float, nullable=False),  # picture widths a second
    Column("dwell_s", Float, nullable=False),
    Column("colours", String(100), nullable=False),  # ",red,black,"
    Column("score", Float, nullable=False),
    Column("thumbnail", LargeBinary),  # JPEG, the best sighting, ≤ 96 px
    Column("worker", String(100), nullable=False, default=""),
)
Index("ix_track_records_start", track_records.c.start_us)
Index("ix_track_records_camera", track_records.c.camera_id, track_records.c.start_us)
Index("ix_track_records_label", track_records.c.label, track_records.c.start_us)

# The city's address list (imported: no outside geocoding service), for "cameras that
# see this address" (cameras/geo.py).
addresses = Table(
    "addresses",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("text", String(300), nullable=False),  # as the city writes it: "вул. Соборна, 12"
    Column("key", String(300), nullable=False),  # normalised for search (cameras/geo.normalise)
    Column("latitude", Float, nullable=False),
    Column("longitude", Float, nullable=False),
)
Index("ix_addresses_key", addresses.c.key)

# A retried call never registers twice: (account, Idempotency-Key) -> what it made.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("account", String(64), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("body_sha256", String(64), nullable=False),
    Column("request_id", BigInteger, nullable=False),
    Column("created_us", BigInteger, nullable=False),
)

# Outside systems told of what happens (varta/exchange): a subscription per receiver, and
# its deliveries in order (the outbox), written in the same transaction as the change.
subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("owner", String(64), nullable=False),  # the account whose rights apply at delivery
    Column("kind", String(16), nullable=False),  # requests | alarms
    Column("url", Text, nullable=False),
    Column("secret_nonce", String(64), nullable=False),  # the HMAC secret is derived, never stored
    Column("filters", JSON, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
)
Index("ix_subscriptions_owner", subscriptions.c.owner)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("subscription_id", BigInteger, nullable=False),
    Column("event_type", String(40), nullable=False),
    Column("event_id", String(80), nullable=False),  # the receiver's idempotency key
    Column("payload", JSON, nullable=False),
    Column("state", String(12), nullable=False),  # pending | delivered | dead
    Column("attempts", Integer, nullable=False),
    Column("next_us", BigInteger, nullable=False),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("created_us", BigInteger, nullable=False),
    Column("delivered_us", BigInteger),
)
Index("ix_deliveries_queue", deliveries.c.subscription_id, deliveries.c.state, deliveries.c.id)

# The incident register (R7).
incidents = Table(
    "incidents",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("number", String(32), nullable=False, unique=True),  # INC-2026-0001
    Column("type", String(32), nullable=False),
    Column("title", String(300), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("place", Text, nullable=False, default=""),
    Column("cameras", JSON, nullable=False),
    Column("start_us", BigInteger, nullable=False),
    Column("end_us", BigInteger),
    Column("status", String(16), nullable=False),  # open | investigating | closed
    Column("events", JSON, nullable=False),  # linked analytics event ids
    Column("created_by", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)
Index("ix_incidents_start", incidents.c.start_us)

# What happened to a request, hold or incident, step by step (also journaled).
evidence_history = Table(
    "evidence_history",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("subject", String(16), nullable=False),  # request | hold | incident
    Column("subject_id", BigInteger, nullable=False),
    Column("time_us", BigInteger, nullable=False),
    Column("account", String(64), nullable=False),
    Column("full_name", String(300), nullable=False, default=""),
    Column("action", String(32), nullable=False),
    Column("detail", JSON, nullable=False),
)
Index("ix_evidence_history_subject", evidence_history.c.subject, evidence_history.c.subject_id)

# Superseded by ``jobs`` (migration 0005 copies its rows there); kept, unused, so that a
# node of the previous version still starts during a rolling upgrade.
evidence_jobs = Table(
    "evidence_jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("request_id", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),  # package | transfer
    Column("status", String(16), nullable=False),  # queued | running | done | failed
    Column("progress", Float, nullable=False, default=0.0),
    Column("params", JSON, nullable=False),
    Column("resume", JSON),  # multipart upload state (transfer)
    Column("result", JSON),
    Column("error", Text, nullable=False, default=""),
    Column("node", String(100), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("finished_us", BigInteger),
)
Index("ix_evidence_jobs_request", evidence_jobs.c.request_id)


# --- the cluster (docs/design/cluster.md) ----------------------------------------------
# Every running node (recorder, web, analytics, or all three in ``varta serve``). ``id``
# is stable (kept in the node's data folder); ``name`` is only a label. Times marked "DB"
# come from the database's clock, never a node's: a node's session lapses when
# ``expires_us`` passes, and with it every lease it holds.
cluster_nodes = Table(
    "cluster_nodes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("hostname", String(255), nullable=False, default=""),
    Column("roles", JSON, nullable=False),  # ["recorder", "web", "analytics"]
    Column("address", Text, nullable=False, default=""),  # base URL other nodes reach it at
    Column("version", String(32), nullable=False, default=""),
    Column("capacity", Integer, nullable=False, default=0),  # cameras it may record; 0 = no limit
    Column("groups", JSON, nullable=False),  # camera groups (districts) it records; [] = any
    Column("takes_unpinned", Boolean, nullable=False, default=True),
    Column("state", String(16), nullable=False),  # active | draining | stopped
    Column("public_key", Text, nullable=False, default=""),  # Ed25519 PEM: signs its requests to nodes
    Column("wrap_key", Text, nullable=False, default=""),  # X25519 PEM: instance key shares for it
    Column("pid", Integer),
    Column("started_us", BigInteger, nullable=False),  # DB
    Column("heartbeat_us", BigInteger, nullable=False),  # DB
    Column("expires_us", BigInteger, nullable=False),  # DB: the session lapses after this
    Column("load", JSON, nullable=False),  # what the Nodes page shows: cameras, lag, disk, cpu
)

# Leases: who records a camera (``record:<id>``), who analyses it (``analyse:<id>``), who
# runs a job (``job:<id>``), who does a cluster-wide duty (``duty:<name>``). A lease is held
# while its holder's session lives; ``epoch`` is the fencing token, raised at every change
# of holder, and every write made under a lease checks it.
leases = Table(
    "leases",
    metadata,
    Column("name", String(160), primary_key=True),
    Column("kind", String(16), nullable=False),  # record | analyse | job | duty
    Column("holder", String(36)),  # node id; NULL = free
    Column("epoch", BigInteger, nullable=False, default=0),
    Column("acquired_us", BigInteger),  # DB
    # Where the holder's footage starts (a planned move: the previous holder's last
    # segment ends exactly here), or NULL after a claim from a dead or absent holder.
    Column("start_at_us", BigInteger),
    # A planned move in progress: the node taking over, and (once its own stream runs)
    # the instant of its first keyframe, where the current holder stops.
    Column("handoff_to", String(36)),
    Column("handoff_at_us", BigInteger),
    Column("handoff_since_us", BigInteger),  # DB
)
Index("ix_leases_holder", leases.c.holder)

# Background work of web nodes: exports, evidence package builds and transfers. The row is
# the shared state; the lease ``job:<id>`` says which node runs it now (``node``: where its
# output files are). A job whose node dies is resumed elsewhere or failed with the reason.
jobs = Table(
    "jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),  # export | package | transfer
    Column("subject", BigInteger),  # the evidence request, for package and transfer
    Column("status", String(16), nullable=False),  # queued | running | done | failed
    Column("progress", Float, nullable=False, default=0.0),
    Column("params", JSON, nullable=False),
    Column("resume", JSON),  # resumable state (a transfer's multipart parts)
    Column("result", JSON),
    Column("error", Text, nullable=False, default=""),
    Column("node", String(36), nullable=False, default=""),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_by", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("started_us", BigInteger),
    Column("finished_us", BigInteger),
)
Index("ix_jobs_subject", jobs.c.subject)
Index("ix_jobs_status", jobs.c.status)

# The instance signing key, shared by every node without ever lying in clear in the
# database: each node's copy is sealed to that node's X25519 key (varta/cluster/keyshare.py).
key_shares = Table(
    "key_shares",
    metadata,
    Column("node_id", String(36), primary_key=True),
    Column("key_name", String(32), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("sealed", Text, nullable=False),
    Column("sealed_by", String(36), nullable=False),
    Column("created_us", BigInteger, nullable=False),
)

# Camera placement analysis (varta/placement, issue 17; MVS-3, MVS-4): the incident records
# the city imports (the register and alarms are read where they are), its candidate sites,
# the zones no site may stand in, and the proposals sent to the police for agreement.
placement_incidents = Table(
    "placement_incidents",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("batch", String(120), nullable=False),  # the file it came from, and when
    Column("time_us", BigInteger),
    Column("category", String(64), nullable=False),
    Column("severity", Float, nullable=False),
    Column("latitude", Float, nullable=False),
    Column("longitude", Float, nullable=False),
    Column("ref", String(64), nullable=False, default=""),
    Column("imported_by", String(64), nullable=False),
    Column("imported_us", BigInteger, nullable=False),
)
Index("ix_placement_incidents_time", placement_incidents.c.time_us)

placement_sites = Table(
    "placement_sites",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, default=""),
    Column("kind", String(32), nullable=False, default=""),
    Column("ref", String(64), nullable=False, default=""),
    Column("latitude", Float, nullable=False),
    Column("longitude", Float, nullable=False),
    Column("imported_us", BigInteger, nullable=False),
)

placement_zones = Table(
    "placement_zones",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("polygon", JSON, nullable=False),  # [[lat, lon], ...]
    Column("imported_us", BigInteger, nullable=False),
)

placement_proposals = Table(
    "placement_proposals",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("title", String(200), nullable=False),
    Column("status", String(16), nullable=False),  # draft | sent | agreed | commented | approved
    Column("params", JSON, nullable=False),  # period, categories, k, radius, constraints
    Column("result", JSON, nullable=False),  # the analysis as shown (varta/placement/analysis.py)
    Column("sent_to", String(64)),  # the police unit's account (MVS-4)
    Column("created_by", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)
Index("ix_placement_proposals_sent_to", placement_proposals.c.sent_to)

# What happened to a proposal: sent, agreed or commented by the police, approved.
placement_notes = Table(
    "placement_notes",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("proposal_id", BigInteger, nullable=False),
    Column("account", String(64), nullable=False),
    Column("full_name", String(300), nullable=False, default=""),
    Column("step", String(16), nullable=False),  # sent | agreed | commented | approved | draft
    Column("text", Text, nullable=False, default=""),
    Column("time_us", BigInteger, nullable=False),
)
Index("ix_placement_notes_proposal", placement_notes.c.proposal_id)

# ONVIF cameras (varta/onvif, issue 18): the device behind a camera, as it described itself
# when added and at its last check, so streams can be re-resolved when it changes them.
onvif_devices = Table(
    "onvif_devices",
    metadata,
    Column("camera_id", String(64), primary_key=True),
    Column("xaddr", Text, nullable=False),  # http://HOST:PORT/onvif/device_service
    Column("username", String(200), nullable=False, default=""),
    Column("password", Text, nullable=False, default=""),  # never shown nor logged
    Column("manufacturer", String(200), nullable=False, default=""),
    Column("model", String(200), nullable=False, default=""),
    Column("firmware", String(100), nullable=False, default=""),
    Column("serial", String(200), nullable=False, default=""),
    Column("hardware_id", String(200), nullable=False, default=""),
    Column("main_profile", String(100), nullable=False),
    Column("sub_profile", String(100)),
    Column("main_uri", Text, nullable=False),  # as the device gave it (no credentials)
    Column("sub_uri", Text),
    Column("snapshot_uri", Text),
    Column("profiles", JSON, nullable=False),
    Column("ptz", Boolean, nullable=False, default=False),
    Column("events", Boolean, nullable=False, default=False),  # the device offers an event service
    Column("events_since_us", BigInteger),  # the current PullPoint subscription since
    Column("events_seen_us", BigInteger),  # its last pull
    Column("home_after_s", Integer),  # PTZ: back to the home position after this idle time
    Column("clock_offset_s", Float),
    Column("checked_us", BigInteger),
    Column("state", String(200), nullable=False, default="ok"),  # ok | the last problem, in words
    Column("added_us", BigInteger, nullable=False),
)

# Who steers a PTZ camera now (varta/onvif/ptzlock.py), and when it last moved.
ptz_control = Table(
    "ptz_control",
    metadata,
    Column("camera_id", String(64), primary_key=True),
    Column("holder", String(64)),
    Column("full_name", String(300), nullable=False, default=""),
    Column("role", String(32), nullable=False, default=""),
    Column("expires_us", BigInteger, nullable=False, default=0),
    Column("last_command_us", BigInteger, nullable=False, default=0),
    Column("away", Boolean, nullable=False, default=False),  # moved off home since
)

# Lockdown (varta/lockdown, issue 19): the remote and outward-facing views of sensitive (or
# all) cameras shut in one move. One row per lockdown; the one without ``ended_us`` is in
# force. A move from the console takes a second named person's confirmation: a request.
lockdowns = Table(
    "lockdowns",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("scope", String(16), nullable=False),  # sensitive | all
    Column("reason", Text, nullable=False),
    Column("source", String(16), nullable=False),  # console (server shell) | web | alert (alert feed)
    Column("started_us", BigInteger, nullable=False),
    Column("started_by", String(64), nullable=False),
    Column("confirmed_by", String(64)),
    Column("ended_us", BigInteger),
    Column("ended_by", String(64)),
    Column("end_reason", Text),
    Column("end_confirmed_by", String(64)),
    Column("active_key", Integer, unique=True),  # 1 while in force (one lockdown at a time), else NULL
)

lockdown_requests = Table(
    "lockdown_requests",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("move", String(8), nullable=False),  # on | off
    Column("scope", String(16)),
    Column("target_id", BigInteger),  # off: the lockdown it lifts (a newer one is not lifted by it)
    Column("reason", Text, nullable=False),
    Column("requested_by", String(64), nullable=False),
    Column("requested_name", String(300), nullable=False, default=""),
    Column("requested_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),  # pending | done | refused | expired | withdrawn
    Column("decided_by", String(64)),
    Column("decided_us", BigInteger),
)
Index("ix_lockdown_requests_state", lockdown_requests.c.state)
