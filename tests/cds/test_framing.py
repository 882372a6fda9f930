"""The clinician form may open inside an EHR's window, but only inside the EHR origins configured
(EHR_FRAME_ORIGINS, read in service/config.py only); every other page stays unframeable."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

FORM = "/rulesets/cds-fixture/try"


def test_without_configured_origins_no_page_may_be_framed(app: Flask) -> None:
    resp = app.test_client().get(FORM)
    assert resp.status_code == 200
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]


def test_the_clinician_pages_may_be_framed_by_the_configured_ehr_origins_only(make_app: Callable[..., Flask]) -> None:
    app = make_app(EHR_FRAME_ORIGINS="https://ehr.example.org, http://localhost:8080/")
    try:
        client = app.test_client()
        policy = client.get(FORM).headers["Content-Security-Policy"]
        assert "frame-ancestors https://ehr.example.org http://localhost:8080;" in policy + ";"
        assert "'none'" not in policy.split("frame-ancestors")[1]
        # The auditors' pages (decisions, patient data of everyone) are never framed.
        audit = client.get("/decisions", headers={"Accept": "text/html"})
        assert "frame-ancestors 'none'" in audit.headers["Content-Security-Policy"]
    finally:
        app.extensions["decision_log"].close()


@pytest.mark.parametrize(
    "bad", ["*", "https://*.example.org", "http://ehr.example.org", "https://ehr.example.org/app", "ehr"]
)
def test_a_frame_origin_that_is_not_one_exact_origin_stops_the_service(
    make_app: Callable[..., Flask], bad: str
) -> None:
    with pytest.raises(SystemExit, match="EHR_FRAME_ORIGINS"):
        make_app(EHR_FRAME_ORIGINS=bad)
