"""Demo and test helpers: synthetic/prepared camera footage and a local RTSP camera simulator."""
