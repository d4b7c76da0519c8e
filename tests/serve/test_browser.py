"""The page in a real browser: headless Chromium (Debian's `chromium` package, driven by
Playwright) against `effvid serve` on 127.0.0.1. An uploaded demo video gets its label, its
timeline and its token-attention animation on the page (a file that is not a video, the
server's one-line refusal); the camera view, with Chromium's fake camera playing a demo clip,
shows the streamed label of the clip's class.

The model is trained in seconds to tell two demo videos apart (`trained_checkpoint`), so that
a label on the page is the video's class, not a random model's constant guess. Skipped where
Chromium is missing, except under EFFVID_REQUIRE_BROWSER=1 (CI, whose `.ci/run` installs it).
"""

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import pytest

from effvid.serve import ServeLimits, open_served_model
from effvid.serve.app import create_app

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
REQUIRED = os.environ.get("EFFVID_REQUIRE_BROWSER") == "1"
if REQUIRED:
    import playwright.sync_api as playwright
else:
    playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path(os.environ.get("EFFVID_CHROMIUM", "/usr/bin/chromium"))
# Chromium started as root in a closed network: no sandbox, no GPU, nothing fetched on its own.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOT = os.environ.get("EFFVID_SERVE_SCREENSHOT")  # where to keep the page's picture


@pytest.fixture(scope="module", autouse=True)
def _chromium_present():
    if not CHROMIUM.exists():
        message = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if REQUIRED:
            pytest.fail(message + "; EFFVID_REQUIRE_BROWSER=1 forbids skipping")
        pytest.skip(message)


@pytest.fixture(scope="module")
def server_url(trained_checkpoint) -> Iterator[str]:
    """`effvid serve`'s application under uvicorn on a free port of 127.0.0.1."""
    import uvicorn

    app = create_app(open_served_model(trained_checkpoint[0]), ServeLimits())
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def y4m_of(video: Path, out: Path) -> Path:
    """The video as YUV4MPEG2, the format of Chromium's fake camera file."""
    with av.open(str(video)) as source, av.open(str(out), "w", format="yuv4mpegpipe") as target:
        stream = source.streams.video[0]
        raw = target.add_stream("rawvideo", rate=stream.average_rate)
        raw.width, raw.height = stream.codec_context.width, stream.codec_context.height
        raw.pix_fmt = "yuv420p"
        for frame in source.decode(stream):
            frame.pts = None
            target.mux(raw.encode(frame))
        target.mux(raw.encode())
    return out


@contextmanager
def chromium_page(camera_clip: Path):
    """A page of a headless Chromium whose camera plays `camera_clip` (.y4m) in a loop. Each
    launch gets a new empty profile (--user-data-dir) from Playwright."""
    flags = [
        *CHROMIUM_FLAGS,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={camera_clip}",
    ]
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=flags)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 760})
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-state=ready]")


def _start_camera(page) -> None:
    page.click("#camera-start")
    # 8 frames (4 model steps: the verdict's full window), then 8 more.
    page.wait_for_function("Number(document.body.dataset.streamFrames || 0) >= 16")


def test_an_uploaded_video_gets_its_label_on_the_page(server_url, trained_checkpoint, tmp_path):
    import httpx

    video, label = next(iter(trained_checkpoint[1].items()))
    not_a_video = tmp_path / "notes.mp4"
    not_a_video.write_text("not a video\n")
    with chromium_page(y4m_of(video, tmp_path / "clip.y4m")) as page:
        _open(page, server_url)
        page.set_input_files("#file", str(not_a_video))
        page.wait_for_selector("body[data-state=error]")
        refusal = page.text_content("#status")
        page.set_input_files("#file", str(video))
        page.wait_for_selector("body[data-state=done]")
        shown = page.text_content("#top-label")
        timeline_rows = page.locator("#timeline li").count()
        animation_width = page.eval_on_selector("#explain", "image => image.naturalWidth")
        _start_camera(page)  # for the picture: both halves of the page at work
        picture = page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    with video.open("rb") as handle:
        files = {"video": (video.name, handle.read())}
    api = httpx.post(f"{server_url}/v1/predict", files=files).json()
    timeline = httpx.post(f"{server_url}/v1/predict?timeline=true", files=files).json()
    assert refusal.startswith("cannot decode 'notes.mp4'")
    assert shown == api["top"][0]["label"] == label
    assert timeline_rows == len(timeline["timeline"])
    assert animation_width > 0
    if SCREENSHOT:
        Path(SCREENSHOT).write_bytes(picture)


@pytest.mark.parametrize("which", [0, 1])
def test_the_camera_view_shows_the_streamed_label_of_the_clip(
    server_url, trained_checkpoint, tmp_path, which
):
    video, label = list(trained_checkpoint[1].items())[which]
    with chromium_page(y4m_of(video, tmp_path / "clip.y4m")) as page:
        _open(page, server_url)
        _start_camera(page)
        shown = page.text_content("#stream-label")
        score = float(page.text_content("#stream-score"))
        bar = page.eval_on_selector("#stream-bar", "bar => parseFloat(bar.style.width)")
        note = page.text_content("#camera-note")
    assert shown == label, note
    assert note == ""
    assert 0.0 < score <= 1.0 and bar == pytest.approx(100 * score, abs=1)
