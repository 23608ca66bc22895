"""`varta backup --out FILE` and `varta restore FILE`."""


def register(app) -> None:
    """Add the commands to the ``varta`` Typer app."""
