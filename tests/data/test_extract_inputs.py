"""What `momu-data extract` takes and how it behaves around it: silent videos paired with
their music by `--audio DIR`, the reason of an unpaired one, the pose model's native log
lines kept off the terminal, and one run at a time per output folder."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from media import ROOT, make_coco_item, write_av
from typer.testing import CliRunner

from momu_data.cli.data import app
from momu_data.extract import NO_AUDIO
from momu_data.lock import FolderLocked, folder_lock
from momu_data.native_logs import NATIVE_LINE

runner = CliRunner()
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
# The lines mediapipe 0.10 prints on every run (one per tracker and model).
NATIVE = (
    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n",
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    b"W0000 00:00:1796008611.350703   27131 inference_feedback_manager.cc:114] Feedback manager requires a model"
    b" with a single signature inference. Disabling support for feedback tensors.\n",
    b"W0000 00:00:1796008611.521782   27131 landmark_projection_calculator.cc:186] Using NORM_RECT without"
    b" IMAGE_DIMENSIONS is only supported for the square ROI. Provide IMAGE_DIMENSIONS or use PROJECTION_MATRIX.\n",
)


def strip_audio(src, dst):
    """dst: src's video stream alone (remuxed, not re-encoded)."""
    import av

    with av.open(str(src)) as i, av.open(str(dst), "w") as o:
        vs = o.add_stream_from_template(i.streams.video[0])
        for pkt in i.demux(i.streams.video[0]):
            if pkt.dts is not None:
                pkt.stream = vs
                o.mux(pkt)
    return dst


@pytest.fixture(scope="module")
def silent_run(tmp_path_factory):
    """A synthetic dance without its sound track, its music in music/ under the same stem,
    and a silent video without music; extracted by the command in a subprocess."""
    from momu_data.media import load_audio
    from momu_data.synth import synthesize_one

    root = tmp_path_factory.mktemp("silent")
    full = synthesize_one(0, 2.5, root / "synth")
    videos, music = root / "videos", root / "music"
    videos.mkdir()
    music.mkdir()
    strip_audio(full, videos / "take1.mp4")
    y, _ = load_audio(full)
    sf.write(music / "take1.wav", y, 16000)
    write_av(videos / "lonely.mp4", seconds=1.0, audio=False)
    data = root / "data"
    cmd = [sys.executable, "-m", "momu_data.cli.data", "extract", str(videos), "--audio", str(music)]
    p = subprocess.run(
        [*cmd, "--out", str(data), "--clip-seconds", "1", "-j", "1"], capture_output=True, env=ENV, timeout=600
    )
    return data, music, p


@pytest.mark.slow  # shares one extraction with mediapipe in a subprocess: ~30 s on a busy 2-core machine
def test_silent_video_takes_its_music_from_the_audio_folder(silent_run):
    data, music, p = silent_run
    assert p.returncode == 0, p.stderr.decode()
    rows = {r["id"]: r for r in pq.read_table(data / "videos.parquet").to_pylist()}
    assert rows["take1"]["status"] == "ok" and rows["take1"]["clips_ok"] == 3  # 1 + 1 + 0.5 s
    rec = (data / "items" / "take1.json").read_text()
    assert str(music / "take1.wav") in rec
    y, _ = sf.read(data / "items" / "take1.flac")
    assert y.size > 2 * 16000 and np.abs(y).max() > 0.01  # the music, not silence


@pytest.mark.slow  # shares one extraction with mediapipe in a subprocess: ~30 s on a busy 2-core machine
def test_silent_video_without_music_says_how_to_pair_one(silent_run):
    data, _, p = silent_run
    rows = {r["id"]: r for r in pq.read_table(data / "videos.parquet").to_pylist()}
    assert rows["lonely"]["status"] == "failed" and rows["lonely"]["reason"] == NO_AUDIO
    assert "--audio DIR" in NO_AUDIO and NO_AUDIO in p.stderr.decode()


@pytest.mark.slow  # shares one extraction with mediapipe in a subprocess: ~30 s on a busy 2-core machine
def test_pose_model_log_lines_stay_off_the_terminal(silent_run):
    _, _, p = silent_run
    err = p.stderr.decode()
    for word in ("inference_feedback_manager", "landmark_projection_calculator", "absl::InitializeLog", "XNNPACK"):
        assert word not in err, err
    assert "videos ok / failed" in p.stdout.decode() + err  # the run's own output is there


def test_native_log_filter_passes_everything_else_and_verbose_shows_all(tmp_path):
    """Lines written to file descriptor 2 from below Python, as mediapipe's threads do."""
    code = (
        "import os, sys\n"
        "from momu_data.native_logs import quiet_native_logs\n"
        "with quiet_native_logs():\n"
        f"    for line in {NATIVE!r}:\n"
        "        os.write(2, b'progress 50%\\r')\n"
        "        os.write(2, line)\n"
        "    print('a python warning', file=sys.stderr)\n"
        "print('after', file=sys.stderr)\n"
    )
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, env=ENV, timeout=60)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == b"progress 50%\r" * 4 + b"a python warning\nafter\n"
    loud = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, env={**ENV, "MOMU_NATIVE_LOGS": "1"}, timeout=60
    )
    assert all(line in loud.stderr for line in NATIVE)
    assert all(NATIVE_LINE.match(line) for line in NATIVE)


def test_second_run_on_the_same_out_is_refused(tmp_path):
    src = tmp_path / "src"
    make_coco_item(src, "d0", seconds=2.0)
    args = ["extract", str(src), "--pose-source", "coco", "--audio", str(src), "--out", str(tmp_path / "data")]
    with folder_lock(tmp_path / "data"):
        r = runner.invoke(app, [*args, "--clip-seconds", "1", "-j", "1"])
    assert r.exit_code == 2
    line = r.output.strip()
    assert "\n" not in line and f"in use by process {os.getpid()}" in line and "another --out" in line
    assert not (tmp_path / "data" / "items").exists()  # refused before touching anything
    r = runner.invoke(app, [*args, "--clip-seconds", "1", "-j", "1"])  # free again: runs
    assert r.exit_code == 0, r.output


def test_a_killed_run_leaves_no_lock(tmp_path):
    code = (
        "import sys, time\n"
        "from momu_data.lock import folder_lock\n"
        f"with folder_lock({str(tmp_path)!r}):\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(60)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=ENV)
    try:
        assert p.stdout.readline() == b"locked\n"
        with pytest.raises(FolderLocked, match=f"process {p.pid}"):
            with folder_lock(tmp_path):
                pass
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
    t = time.time()
    with folder_lock(tmp_path) as path:  # the kernel released it with the process
        assert path.read_text() == f"{os.getpid()}\n"
    assert time.time() - t < 1


def test_a_folder_of_links_to_videos_names_items_by_the_links(tmp_path):
    """Videos linked into a folder from elsewhere (a common way to gather a dataset) get the
    links' names as ids, each file once; the link's target outside the folder is no error."""
    from momu_data.media import find_videos, item_id

    store, folder = tmp_path / "store", tmp_path / "videos"
    (store / "sub").mkdir(parents=True)
    (folder / "b").mkdir(parents=True)
    (store / "sub" / "take 1.mp4").write_bytes(b"x")
    (store / "other.mp4").write_bytes(b"y")
    (folder / "group.mp4").symlink_to(store / "sub" / "take 1.mp4")
    (folder / "b" / "again.mp4").symlink_to(store / "sub" / "take 1.mp4")  # the same file twice
    (folder / "solo.MP4").symlink_to(store / "other.mp4")
    found = find_videos([folder])
    assert [item_id(v, root) for v, root in found] == ["b__again", "solo"]
    assert all(v.parent.is_relative_to(folder) for v, _ in found)
    # a file argument that is a link: its id is the link's name, its root the link's folder
    ((v, root),) = find_videos([folder / "group.mp4"])
    assert (item_id(v, root), root) == ("group", folder)


def test_summary_counts_items_of_a_group_video_as_items():
    """One group video extracted into three dancers (one failed): the summary says items and
    the one input they came from; one item per video stays "videos"."""
    from momu_data.inspect import items_row

    group = [{"id": f"g__dancer{k}", "job": "g", "status": "ok" if k else "failed"} for k in range(3)]
    assert items_row(group) == ("items ok / failed", "2 / 1 (from 1 input: a dancer or a view each)")
    solo = [{"id": "a", "job": "a", "status": "ok"}, {"id": "b", "job": "b", "status": "failed"}]
    assert items_row(solo) == ("videos ok / failed", "1 / 1")
