"""``varta analyze``: the cameras' pipeline on a file, from the command line."""

from __future__ import annotations

import json

from conftest import MEDIA_CACHE
from scenes import Walk, scene


def test_analyze_prints_events_and_writes_mot_tracks(varta, test_data, tmp_path):
    model = test_data / "models" / "yolox_nano.onnx"
    clip, truth, _, _ = scene(test_data, MEDIA_CACHE, "cli-walk", [Walk((0.15, 0.7), (0.85, 0.7), 3, 2),
                                                                   Walk((0.3, 0.95), (0.3, 0.45), 3, 2)], suffix=".mp4")
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [{"name": "plaza", "type": "zone", "polygon": [[0, 0.3], [1, 0.3], [1, 1], [0, 1]],
                                            "classes": ["person"]}]}))
    v = varta()
    mot = tmp_path / "tracks.txt"
    out = v.json("analyze", str(clip), "--rules", str(rules), "--json", "--model", str(model),
                 "--mot", str(mot), "--mot-class", "person")
    events = out["events"]
    assert [e["heading"] for e in events] == ["right", "up"]
    for e, (t0, t1, _, _) in zip(events, truth):
        assert abs(e["start_s"] - t0) < 1.0 and abs(e["end_s"] - t1) < 1.0, (e, t0, t1)
    assert out["detections_run"] < out["frames_analysed"], "the motion gate spared the detector on the empty plaza"
    lines = [ln.split(",") for ln in mot.read_text().splitlines()]
    assert lines and all(len(f) == 10 and f[7:] == ["-1", "-1", "-1"] for f in lines)
    frames = [int(f[0]) for f in lines]
    assert min(frames) >= 1 and frames == sorted(frames)  # MOTChallenge frames count from 1
    # A broken file gets a clear message and exit 2.
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    r = v.run("analyze", str(bad), "--model", str(model), check=False)
    assert r.returncode == 2 and "broken.mp4" in r.stderr
