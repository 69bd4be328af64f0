"""The daily dashboard, opened from disk in headless Debian Chromium with the network unused: the
charts must be drawn (plotly's SVG in the rendered DOM), and a screenshot is kept in test-artifacts/."""

from __future__ import annotations

import re
import shutil
import subprocess

from lepton_pipelines_tests.analytics.conftest import ARTIFACTS, SAMPLE_DAYS, materialization

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHARTS = (
    "kpi-trend",
    "kpi-channels",
    "risk-scores",
    "customer-segments",
    "market-risk",
    "device-health",
    "source-quality",
)


def _chromium(url: str, profile, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--window-size=1400,2300",
            "--virtual-time-budget=20000",
            *extra,
            url,
        ],
        capture_output=True,
        timeout=180,
    )


def test_dashboard_is_self_contained_and_linked_from_metadata(sample_lake):
    day = SAMPLE_DAYS[-1]
    meta = materialization(sample_lake["results"][day], "analytics/dashboard").metadata
    path = sample_lake["lake"].path("marts", "dashboard", f"date={day}", "dashboard.html")
    assert meta["path"].value == str(path) and meta["open"].value == path.as_uri()
    assert meta["charts"].value == len(CHARTS)
    page = path.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=\"?https?:", page), "the page loads something from elsewhere"
    assert "cdn.plot.ly" not in page.split("</script>", 1)[1]  # only plotly.js's own comments may name its CDN


def test_dashboard_renders_its_charts_in_headless_chromium(sample_lake, tmp_path):
    day = SAMPLE_DAYS[-1]
    path = sample_lake["lake"].path("marts", "dashboard", f"date={day}", "dashboard.html")
    url = path.as_uri()
    dom = _chromium(url, tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr.decode()[-2000:]
    html = dom.stdout.decode("utf-8", "replace")
    # plotly replaces each empty div by its SVG only when the inline bundle ran: count what it drew.
    for chart in CHARTS:
        block = html.split(f'id="{chart}"', 1)
        assert len(block) == 2, f"chart {chart} is not on the page"
        assert 'class="main-svg"' in block[1][:20_000], f"chart {chart} was not drawn"
    assert html.count('class="main-svg"') >= len(CHARTS)
    assert len(re.findall(r'class="point"', html)) >= 20  # bars and markers were drawn, not only axes
    assert "Decision support — " + day in html and "Transactions" in html

    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "analytics-dashboard.png"
    screenshot.unlink(missing_ok=True)
    shot = _chromium(url, tmp_path / "profile", f"--screenshot={screenshot}")
    assert shot.returncode == 0, shot.stderr.decode()[-2000:]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 80_000  # charts in colour, not a blank page
