"""The Date field: RFC 9110's format, computed once per second."""

from __future__ import annotations

from email.utils import formatdate

from hyperpy._core.fields import http_date

NOW = 1_700_000_000.25


def test_http_date_format_and_cache() -> None:
    assert http_date(NOW) == formatdate(NOW, usegmt=True).encode()
    assert http_date(NOW + 0.5) == http_date(NOW)  # same second
    assert http_date(NOW + 1) != http_date(NOW)
    assert http_date().endswith(b" GMT")
