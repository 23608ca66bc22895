"""Lockdown: the remote and outward-facing views of sensitive (or all) cameras shut in one
move, in wartime (docs/design/lockdown.md)."""
