"""Recording: supervised ffmpeg ingest into an indexed archive of fMP4 segments."""
