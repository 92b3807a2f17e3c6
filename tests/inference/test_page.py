"""The web page at GET / in headless Chromium (Debian's chromium, driven by Playwright).

Without chromium the test fails under CI and elsewhere skips, listed in the run's summary
(tests/support/missing.py), so the page test never stops running unnoticed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from forest_mlops import schema
from tests.conftest import CHROMIUM
from tests.inference.conftest import InferenceService
from tests.inference.test_api import EXAMPLE
from tests.support import missing

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing.file(CHROMIUM, hint="apt-get install -y chromium chromium-driver")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, champion_service: InferenceService) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True, base_url=champion_service.url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def test_the_form_predicts_the_prefilled_example(
    page: Any, champion_service: InferenceService
) -> None:
    expected = httpx.post(f"{champion_service.url}/predict", json=EXAMPLE, timeout=30).json()
    page.goto("/")
    for column in schema.FEATURE_COLUMNS:
        assert page.input_value(f"#field-{column}") == str(EXAMPLE[column])
    assert page.locator("#field-Soil_Type option").count() == len(schema.SOIL_TYPES)
    page.wait_for_function("document.getElementById('model').textContent.includes('version 1')")

    page.click("#predict-submit")
    page.wait_for_selector("#result:not([hidden])")
    assert page.text_content("#result-name") == expected["cover_type_name"]
    assert page.text_content("#result-id") == str(expected["cover_type"])
    assert page.text_content("#result-version") == "1"
    rows = page.locator("#probabilities tbody tr")
    assert rows.count() == len(schema.COVER_TYPE_NAMES)
    best = max(expected["probabilities"], key=expected["probabilities"].get)
    assert rows.first.locator("td").first.text_content() == best

    # Another location: the answer follows the form.
    page.fill("#field-Elevation", "3400")
    page.select_option("#field-Wilderness_Area", "Neota")
    changed = {**EXAMPLE, "Elevation": 3400, "Wilderness_Area": "Neota"}
    expected = httpx.post(f"{champion_service.url}/predict", json=changed, timeout=30).json()
    page.click("#predict-submit")
    page.wait_for_function(
        "name => document.getElementById('result-name').textContent === name",
        arg=expected["cover_type_name"],
    )


def test_a_csv_upload_gives_a_downloadable_result(
    page: Any, champion_service: InferenceService, holdout_frame: pd.DataFrame, tmp_path: Path
) -> None:
    upload = tmp_path / "locations.csv"
    holdout_frame.iloc[:25].to_csv(upload, index=False)
    expected = httpx.post(
        f"{champion_service.url}/predict/csv",
        content=upload.read_text(),
        headers={"Content-Type": "text/csv"},
        timeout=30,
    ).text

    page.goto("/")
    page.set_input_files("#csv-file", str(upload))
    page.click("#csv-submit")
    page.wait_for_selector("#csv-result:not([hidden])")
    assert page.text_content("#csv-summary") == "25 rows predicted."
    assert page.locator("#csv-preview tr").count() == 11  # header + the first 10 rows
    with page.expect_download() as download_info:
        page.click("#csv-download")
    download = download_info.value
    assert download.suggested_filename == "predictions.csv"
    result = Path(download.path()).read_text()
    assert result == expected
    rows = list(csv.DictReader(io.StringIO(result)))
    assert len(rows) == 25
    assert {r["cover_type_name"] for r in rows} <= set(schema.COVER_TYPE_NAMES)


def test_a_bad_csv_shows_the_servers_message(
    page: Any, holdout_frame: pd.DataFrame, tmp_path: Path
) -> None:
    bad = holdout_frame.iloc[:3].copy()
    bad.loc[bad.index[1], "Soil_Type"] = "C0000"
    upload = tmp_path / "bad.csv"
    bad.to_csv(upload, index=False)
    page.goto("/")
    page.set_input_files("#csv-file", str(upload))
    page.click("#csv-submit")
    page.wait_for_selector("#csv-error:not([hidden])")
    assert page.text_content("#csv-error") == (
        "line 3: Soil_Type: unknown soil code 'C0000' (expected one of the 40 ELU codes "
        "C2702..C8776)"
    )
    assert page.is_hidden("#csv-result")
