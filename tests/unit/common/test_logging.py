import json
import logging

import pytest

from services.common.logging import REDACTED, scrub, setup_logging


def test_scrub_by_key_and_by_value() -> None:
    event = {
        "password": "hunter2hunter2",
        "refresh_token": "flr_abc",
        "nested": {"api_key": "flk_1234_secret", "note": "ok"},
        "message": "called with Bearer eyJhbGciOi.eyJzdWIi.c2lnbmF0dXJl and flk_deadbeef_s3cr3t",
        "url": "/callback?code=abc123&state=xyz&next=/home",
    }
    clean = scrub(event)
    assert clean["password"] == REDACTED
    assert clean["refresh_token"] == REDACTED
    assert clean["nested"] == {"api_key": REDACTED, "note": "ok"}
    assert "eyJ" not in clean["message"] and "s3cr3t" not in clean["message"]
    assert clean["url"] == f"/callback?code={REDACTED}&state={REDACTED}&next=/home"


def test_standard_library_records_come_out_as_redacted_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging("unit", "INFO")
    logging.getLogger("third.party").info("token is flr_supersecretvalue")
    line = capsys.readouterr().out.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["service"] == "unit"
    assert "supersecret" not in line
    assert record["level"] == "info"
