"""Playback and export: ranges and gaps, HLS VOD playlists, stream-copy exports."""
