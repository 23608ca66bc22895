"""Settings: environment variables ``VARTA_*`` override a TOML config file.

The config file is ``$VARTA_CONFIG`` or ``$VARTA_HOME/varta.toml`` when present; its keys
are the same names without the prefix, in lower case (``database_url = "..."``).
"""

from __future__ import annotations

import os
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

MIN_RETENTION_DAYS = 10  # A4.6 / R2: at least 10 days, never configurable below.

# A list setting: a TOML array, or in the environment a comma-separated string.
AddressList = Annotated[list[str], NoDecode]


def _config_file_values() -> dict:
    path = os.environ.get("VARTA_CONFIG")
    if not path:
        home = os.environ.get("VARTA_HOME", "./varta-data")
        path = str(Path(home) / "varta.toml")
    p = Path(path)
    if not p.is_file():
        return {}
    with p.open("rb") as fh:
        try:
            return tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise SystemExit(f"config file {p} is not valid TOML: {exc}") from None


class _TomlSource(PydanticBaseSettingsSource):
    def get_field_value(self, field, field_name):  # pragma: no cover - unused by pydantic here
        return None, field_name, False

    def __call__(self) -> dict:
        return _config_file_values()


class Settings(BaseSettings):
    # Errors name the setting and why, never its value (secrets are settings too).
    model_config = SettingsConfigDict(env_prefix="VARTA_", extra="ignore", hide_input_in_errors=True)

    home: Path = Field(default=Path("./varta-data"), description="Data folder")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; SQLite in home when empty")
    timezone: str = Field(default="Europe/Kyiv", description="The city's time zone")
    # The cluster (docs/cluster.md). A node's identity is the id kept in its data folder;
    # its name is only a label (the host name by default).
    node_name: str = Field(default_factory=lambda: os.uname().nodename, description="this node's label")
    node_address: str = Field(default="", description="base URL other nodes reach this node at "
                                                      "(default: from --listen / node_listen)")
    node_listen: str = Field(default="127.0.0.1:0", description="HOST:PORT of a recorder's node API (0: any port)")
    node_capacity: int = Field(default=0, ge=0, description="cameras this recorder may record; 0 = no limit")
    node_groups: AddressList = Field(default=[], description="camera groups (districts) this node records; "
                                                             "empty = any")
    # Cameras pinned to no node are recorded by nodes where this is true (set false on a
    # node that should record only the cameras pinned to it with --recorder).
    record_unassigned: bool = Field(default=True)
    cluster_lease_s: float = Field(default=5.0, ge=2.0, le=120.0,
                                   description="a node that stops heartbeating loses its work after this long")
    cluster_tick_s: float = Field(default=1.0, ge=0.2, le=10.0, description="heartbeat and lease check interval")
    cluster_max_moves: int = Field(default=8, ge=1, le=256, description="planned camera moves a node runs at once")
    shutdown_handover_s: float = Field(default=20.0, ge=0.0, le=600.0,
                                       description="on a clean stop, time to hand cameras to other nodes")
    # Before the cluster, a node was known by this name in the index; a node adopts the
    # footage, jobs and alarms recorded under it the first time it starts.
    recorder_name: str = Field(default="", description="(legacy) the name this node's footage was recorded under")
    # How cameras are stream-copied: "pyav" (libav in the recorder process, ~3-4 MB per
    # camera) or "ffmpeg" (a supervised ffmpeg process per camera, ~14 MB per camera).
    recorder_backend: Literal["pyav", "ffmpeg"] = Field(default="pyav")
    ffmpeg: str | None = Field(default=None, description="ffmpeg binary; system ffmpeg or imageio-ffmpeg's when empty")
    segment_seconds: int = Field(default=10, ge=2, le=300)
    default_retention_days: int = Field(default=MIN_RETENTION_DAYS)
    # Storage safety margins (R4): below this free space the janitor frees space.
    min_free_percent: float = Field(default=5.0, ge=0.0, le=90.0)
    min_free_mb: int = Field(default=1024, ge=0)
    janitor_interval_s: float = Field(default=60.0, gt=0)
    reconnect_max_backoff_s: float = Field(default=30.0, gt=0)
    rtsp_timeout_s: float = Field(default=10.0, gt=0)
    # Access (A4.3, A4.5; docs/access.md). A session from an on-site network is direct
    # access, from anywhere else remote; archive playback only from restricted-zone
    # workstations, a subset of the on-site networks. The defaults admit only the server's
    # own console as on site: a city lists its dispatch room's network and workstations.
    onsite_networks: AddressList = Field(default=["127.0.0.0/8", "::1/128"])
    restricted_workstations: AddressList = Field(default=["127.0.0.0/8", "::1/128"])
    # Reverse proxies whose X-Forwarded-For is believed; nobody else's is.
    trusted_proxies: AddressList = Field(default=[])
    # This server's own addresses (the interface a VPN or a port forward brings outside
    # users to) whose connections are remote access whatever the client's address says.
    # It can only make access stricter: `varta serve --remote-listen` adds one.
    remote_entrances: AddressList = Field(default=[])
    session_idle_s: float = Field(default=1800.0, gt=0, description="sign out after this long without a request")
    # ONVIF cameras (varta/onvif): how often each device is checked (clock, streams, firmware,
    # reachability), the clock drift that raises an alarm, the city's minimum firmware
    # ("MAKER MODEL=VERSION; MAKER=VERSION; *=VERSION"), one PTZ operator's hold on a camera.
    onvif_check_interval_s: float = Field(default=300.0, ge=1.0)
    onvif_clock_drift_s: float = Field(default=10.0, ge=0.5)
    onvif_min_firmware: str = Field(default="")
    onvif_timeout_s: float = Field(default=8.0, ge=0.5, le=120.0)
    ptz_hold_s: float = Field(default=30.0, ge=1.0, le=3600.0)
    # --- monitoring (issue 19; /metrics) ---
    # /metrics (Prometheus) needs a token with system.view; this optional HOST:PORT serves the
    # same metrics without authentication, for a monitoring network only ("" = off).
    metrics_listen: str = Field(default="", description="HOST:PORT serving /metrics without sign-in "
                                                        "(monitoring network only); empty = off")
    metrics_journal_verify_s: float = Field(default=3600.0, ge=0.0,
                                            description="how often /metrics re-verifies the whole access "
                                                        "journal's chain (0 = never)")

    @field_validator("metrics_listen")
    @classmethod
    def _metrics_address(cls, v: str) -> str:
        v = v.strip()
        if v:
            host, sep, port = v.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"metrics_listen {v!r}: give HOST:PORT, e.g. 127.0.0.1:9464 (empty = off)")
        return v
    # --- end monitoring ---
    # --- single sign-on (issue 19; OpenID Connect) ---
    # The city's identity provider (Keycloak, Azure AD / Entra ID, the state's): its issuer
    # URL (discovery at ISSUER/.well-known/openid-configuration); empty = no single sign-on.
    # Local accounts always remain (break-glass). docs/access.md, "Single sign-on".
    oidc_issuer: str = Field(default="", description="OpenID provider's issuer URL; empty = single sign-on off")
    oidc_client_id: str = Field(default="")
    oidc_client_secret: str = Field(default="", repr=False, description="empty = a public client (PKCE only)")
    oidc_scopes: str = Field(default="openid profile email", description="scopes asked (space-separated)")
    # The claim holding the user's groups or roles ("groups", "roles", Keycloak's
    # "realm_access.roles"), and how they map: "provider group=varta role; …" (one role per
    # account: groups mapping to two roles are refused), "provider group=camera group[,…]; …".
    oidc_role_claim: str = Field(default="groups")
    oidc_role_map: str = Field(default="")
    oidc_group_map: str = Field(default="")
    # The claim a new account's login is made from, and the ID token's amr/acr values that
    # count as a second factor (otherwise Varta's TOTP applies to remote sessions).
    oidc_login_claim: str = Field(default="preferred_username")
    oidc_mfa_amr: str = Field(default="mfa mca otp hwk sc", description="amr values that mean a second factor")
    oidc_mfa_acr: str = Field(default="", description="acr values that mean a second factor")
    oidc_button_label: str = Field(default="", description="the provider's name on the sign-in button")
    # Where the provider sends the browser back; empty = this server's own address as the
    # browser reached it + /api/auth/oidc/callback (set it behind a reverse proxy).
    oidc_redirect_url: str = Field(default="")
    oidc_timeout_s: float = Field(default=10.0, gt=0, le=120.0)

    @field_validator("oidc_role_map", "oidc_group_map")
    @classmethod
    def _oidc_maps(cls, v: str, info) -> str:
        from varta.access import sso  # a wrong map stops Varta at start, saying which entry

        (sso.parse_role_map if info.field_name == "oidc_role_map" else sso.parse_group_map)(v)
        return v
    # --- end single sign-on ---
    # --- lockdown and secrets (issue 19) ---
    # --- end lockdown and secrets ---
    token_rate_per_min: float = Field(default=120.0, ge=0.0, description="calls a minute per API token and web "
                                                                        "node (0: no limit)")
    archive_view_idle_s: float = Field(default=30.0, ge=1.0, le=3600.0,
                                       description="a paused archive playback is journaled as ended after this long")
    session_max_s: float = Field(default=12 * 3600.0, gt=0, description="sign out this long after signing in")
    # Send the session cookie only over HTTPS (browsers treat http://localhost as secure).
    cookie_secure: bool = Field(default=True)
    instance_name: str = Field(default="Varta", description="shown in authenticator apps and reports")
    # The console's map: a tile server URL template, e.g. "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    # or the city's own; empty = no tiles (the map still shows the cameras by coordinates).
    map_tile_url: str = Field(default="")
    map_attribution: str = Field(default="")
    # Video analytics (docs/design/analytics.md). `varta serve` runs an analytics worker
    # process beside the recorder for the cameras this node records.
    analytics: bool = Field(default=True, description="run the analytics worker with serve/recorder")
    detector_model: str = Field(default="", description="ONNX model; $VARTA_HOME/models/yolox_nano.onnx when empty")
    detector_providers: AddressList = Field(default=["CPUExecutionProvider"],
                                            description="ONNX Runtime execution providers, in order of preference")
    detector_threads: int = Field(default=1, ge=0, le=64, description="threads per inference (0 = all cores)")
    # fp32: the official weights (on the cropped canvas); int8: made from them on this
    # machine, ~25 % less CPU per inference for up to 2 points less recall (bench/RESULTS.md §12).
    detector_variant: Literal["fp32", "int8"] = Field(default="fp32")
    # Inferences run at once by the analytics worker (one core each); 0 = as many as
    # analytics_cpu_cores allows (rounded up), at most the machine's cores.
    detector_pool: int = Field(default=0, ge=0, le=64)
    # CPU the analytics worker may use, in cores; above it the lowest-priority cameras are
    # analysed less often (the worker runs niced, so recording always comes first).
    analytics_cpu_cores: float = Field(default=1.0, gt=0)
    analytics_nice: int = Field(default=10, ge=0, le=19)
    # Outside systems (police dispatch, MVS-3) get alarms by HTTP POST, signed with HMAC-SHA256.
    alarm_webhook_url: str = Field(default="")
    alarm_webhook_secret: str = Field(default="", repr=False)

    # Evidence (docs/evidence.md). Deadlines count Ukrainian working days (A4.10) under the
    # holiday rules in force: "martial_law" (public holidays are working days) or "peacetime".
    holiday_rules: Literal["martial_law", "peacetime"] = Field(default="martial_law")
    extra_days_off: AddressList = Field(default=[], description="YYYY-MM-DD days off by local decision")
    extra_working_days: AddressList = Field(default=[], description="YYYY-MM-DD working Saturdays")
    request_due_soon_days: int = Field(default=1, ge=0, le=5, description="working days left that count as near")
    daily_report_hour: int = Field(default=8, ge=0, le=23, description="city time of the daily deadline report")
    # Where packages go (A4.11): an S3-compatible bucket (AWS S3, MinIO, Ceph RGW…), or a
    # folder (an offline site's removable disk or a share). S3 wins when both are set.
    s3_endpoint_url: str = Field(default="", description="empty = AWS S3")
    s3_region: str = Field(default="us-east-1")
    s3_bucket: str = Field(default="")
    s3_prefix: str = Field(default="varta/")
    s3_access_key: str = Field(default="", repr=False)
    s3_secret_key: str = Field(default="", repr=False)
    s3_sse: Literal["auto", "AES256", "aws:kms", "none"] = Field(default="auto")
    s3_part_size_mb: int = Field(default=16, ge=5, le=5120)
    # The archive (docs/design/storage.md): "local" keeps each segment on the disk of the
    # node that recorded it; "s3" ships every finished segment to one S3-compatible bucket
    # (AWS S3, Ceph RGW, MinIO…), which any node reads, keeping local copies as a cache.
    archive_storage: Literal["local", "s3"] = Field(default="local")
    archive_s3_endpoint_url: str = Field(default="", description="empty = AWS S3")
    archive_s3_bucket: str = Field(default="")
    archive_s3_prefix: str = Field(default="varta/")
    archive_s3_region: str = Field(default="us-east-1")
    archive_s3_access_key: str = Field(default="", repr=False)
    archive_s3_secret_key: str = Field(default="", repr=False)
    archive_s3_sse: Literal["auto", "AES256", "aws:kms", "none"] = Field(default="auto")
    archive_s3_path_style: bool = Field(default=False, description="path-style addressing (MinIO, Ceph RGW)")
    archive_local_cache_hours: float = Field(default=24.0, ge=0.0, le=24 * 365,
                                             description="shipped segments stay on the recorder's disk this long")
    archive_backlog_alarm_s: float = Field(default=300.0, gt=0,
                                           description="alarm when shipping is this far behind")
    transfer_link_days: float = Field(default=7.0, gt=0, le=7.0, description="presigned link lifetime (≤ 7 days)")
    transfer_folder: str = Field(default="", description="a local/share folder target for offline sites")

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):
        return (init_settings, env_settings, _TomlSource(settings_cls))

    @model_validator(mode="after")
    def _open_sealed_secrets(self):
        """Secrets in varta.toml or the environment may be sealed with the secrets key
        (``varta secrets seal-setting NAME``): opened here, so a copied settings file alone
        reveals no storage, webhook or identity-provider secret either."""
        sealed = [n for n in SEALED_SETTINGS if str(getattr(self, n, "")).startswith("vs1:")]
        if sealed:
            from varta.secrets.vault import open_setting

            for name in sealed:
                object.__setattr__(self, name, open_setting(self.keys_dir, getattr(self, name), name))
        return self

    @field_validator("default_retention_days")
    @classmethod
    def _retention_floor(cls, v: int) -> int:
        if v < MIN_RETENTION_DAYS:
            raise ValueError(f"retention must be at least {MIN_RETENTION_DAYS} days (order clause A4.6)")
        return v

    @field_validator("onsite_networks", "restricted_workstations", "trusted_proxies", "remote_entrances",
                     "detector_providers",
                     "extra_days_off", "extra_working_days", "node_groups", mode="before")
    @classmethod
    def _address_list(cls, v):
        if isinstance(v, str):
            return [x.strip() for x in v.split(",") if x.strip()]
        return v

    @field_validator("archive_s3_prefix")
    @classmethod
    def _prefix_folder(cls, v: str) -> str:
        v = v.strip().lstrip("/")
        return v if not v or v.endswith("/") else v + "/"

    @field_validator("timezone")
    @classmethod
    def _valid_tz(cls, v: str) -> str:
        ZoneInfo(v)
        return v

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def recordings_dir(self) -> Path:
        return self.home / "recordings"

    @property
    def exports_dir(self) -> Path:
        return self.home / "exports"

    @property
    def events_dir(self) -> Path:
        return self.home / "events"

    @property
    def evidence_dir(self) -> Path:
        return self.home / "evidence"

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "quarantine"

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'varta.db').resolve()}"


# Environment variables with the prefix that are not settings (test harness, process roles).
# Settings that may be given sealed (varta/secrets: ``varta secrets seal-setting NAME``).
SEALED_SETTINGS = ("s3_access_key", "s3_secret_key", "archive_s3_access_key", "archive_s3_secret_key",
                   "alarm_webhook_secret", "oidc_client_secret")

_NOT_SETTINGS = {"config", "secrets_key", "node_child", "test_data", "test_postgres_url", "test_media_cache"}


def unknown_setting_keys() -> list[str]:
    """Keys in varta.toml or VARTA_* variables that this version does not know: a setting
    of a newer (or older) version, or a typo. They are ignored, with a warning, so nodes of
    different versions can share one configuration during a rolling upgrade."""
    known = set(Settings.model_fields)
    out = [f"{k} (in varta.toml)" for k in _config_file_values() if k not in known]
    for name in os.environ:
        if name.startswith("VARTA_"):
            key = name[len("VARTA_"):].lower()
            if key not in known and key not in _NOT_SETTINGS and not key.startswith("test_"):
                out.append(f"{key} (VARTA_{key.upper()})")
    return out


def load_settings(**overrides) -> Settings:
    return Settings(**overrides)
