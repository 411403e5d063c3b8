"""Camera status lines during a run: the pipeline sets `FrameSource.on_status` before the
source opens, so a live source's disconnect / retry / recovery lines reach
RunConfig.on_status (the CLI prints them on stderr), are counted, and the run goes on."""

from __future__ import annotations

import json
import logging

import pytest
from runtime_fakes import make_frame

from edgefuse.cameras import EndOfStream, FrameSource, LiveCapture, SourceDisconnected
from edgefuse.cli.main import main
from edgefuse.runtime.pipeline import Pipeline, RunConfig


class FlakyLiveSource(FrameSource):
    """A live source (capture thread, like RealSense) that delivers frames 0 and 1, is
    unplugged (one failed reconnect attempt), comes back, and delivers frames 2 and 3."""

    is_live = True

    def __init__(self) -> None:
        super().__init__("flaky-cam")
        self.script = [make_frame(0), make_frame(1), SourceDisconnected("USB reset"),
                       SourceDisconnected("no device"), make_frame(2), make_frame(3)]
        self.status_when_opened = "unset"
        self._capture = None

    def _grab(self):
        if not self.script:
            raise EndOfStream
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    def _open(self) -> None:
        self.status_when_opened = self.on_status
        self._capture = LiveCapture(self._grab, name=self.name, queue_size=16, backoff=(0.01, 0.02),
                                    on_status=self.on_status).start()

    def _close(self) -> None:
        if self._capture is not None:
            self._capture.stop()
            self._capture = None

    @property
    def dropped(self) -> int:
        return self._capture.dropped if self._capture is not None else 0

    def _frames(self):
        yield from self._capture


def test_live_disconnect_and_recovery_reach_the_callback_and_the_run_goes_on(bundle_dir, tmp_path):
    messages: list[str] = []
    src = FlakyLiveSource()
    cfg = RunConfig(bundle=str(bundle_dir), log=str(tmp_path / "log.jsonl"), on_status=messages.append)
    p = Pipeline(cfg, source=src)
    summary = p.run()
    assert src.status_when_opened is not None            # set before the source was opened
    assert summary.frames == 4 and not summary.interrupted
    frames = [json.loads(line)["frame"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert frames == [0, 1, 2, 3]                          # frames after the recovery were processed
    assert len(messages) == 3 and p.status_events == 3
    assert "flaky-cam: disconnected (USB reset)" in messages[0]
    assert "reconnect attempt 1 failed (no device)" in messages[1]
    assert "flaky-cam: reconnected" in messages[2] and "2 attempts" in messages[2]


def test_a_callback_already_on_the_source_is_kept(bundle_dir):
    mine: list[str] = []
    src = FlakyLiveSource()
    src.on_status = mine.append
    seen: list[str] = []
    Pipeline(RunConfig(bundle=str(bundle_dir), on_status=seen.append), source=src).run()
    assert mine == seen and len(seen) == 3


def test_cli_prints_camera_status_on_stderr(bundle_dir, monkeypatch, capsys):
    import edgefuse.runtime.pipeline as pipeline

    monkeypatch.setattr(pipeline, "open_camera", lambda *a, **k: FlakyLiveSource())
    rc = main(["run", "--bundle", str(bundle_dir), "--json"])
    assert rc == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["frames"] == 4                  # stdout stays one JSON object
    assert "flaky-cam: disconnected (USB reset)" in err and "flaky-cam: reconnected" in err


def test_pipeline_retries_are_status_lines_too(bundle_dir, tmp_path, list_source, caplog):
    items = [make_frame(0), OSError("USB reset"), OSError("USB reset"), make_frame(1)]
    messages: list[str] = []
    cfg = RunConfig(bundle=str(bundle_dir), retry_backoff_s=0.0, on_status=messages.append)
    p = Pipeline(cfg, source=list_source(items))
    summary = p.run()
    assert summary.frames == 2 and summary.source_errors == 2
    assert messages == ["camera 'list' failed (USB reset); retrying in 0.0 s (attempt 1 of 9)",
                        "camera 'list' failed (USB reset); retrying in 0.0 s (attempt 2 of 9)",
                        "camera 'list' recovered after 2 failed attempts"]
    assert p.status_events == 3
    # without a callback the same lines go to the log
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="edgefuse.runtime.pipeline"):
        Pipeline(RunConfig(bundle=str(bundle_dir), retry_backoff_s=0.0),
                 source=list_source(items)).run()
    assert "retrying in 0.0 s (attempt 1 of 9)" in caplog.text and "recovered after 2" in caplog.text


def test_a_broken_status_printer_does_not_stop_the_run(bundle_dir, list_source):
    def broken(message):
        raise RuntimeError("printer on fire")

    items = [make_frame(0), OSError("glitch"), make_frame(1)]
    cfg = RunConfig(bundle=str(bundle_dir), retry_backoff_s=0.0, on_status=broken)
    assert Pipeline(cfg, source=list_source(items)).run().frames == 2


@pytest.fixture(autouse=True)
def _no_leftover_capture_threads():
    yield
    import threading

    assert not [t for t in threading.enumerate() if t.name.startswith("edgefuse-capture-flaky")]
