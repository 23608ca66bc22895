"""Search across every camera's tracks (issue 16, MVS-2): what the analytics saw, by class,
time, place, direction, speed, dwell and colour (docs/design/search.md)."""
