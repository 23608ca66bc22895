"""`varta check`: the installer's checks (settings, storage, database, ffmpeg, model, clock)."""


def register(app) -> None:
    """Add the command to the ``varta`` Typer app."""
