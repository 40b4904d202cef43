"""The labeling progress bar: images/s and ETA on a terminal, nothing otherwise."""

from __future__ import annotations

import io
import sys

from vfm.engine.progress import Progress


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_silent_when_not_a_terminal(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    p = Progress(10)
    p.advance(3)
    p.close()
    assert err.getvalue() == ""


def test_progress_shows_count_rate_and_eta_on_a_terminal(monkeypatch):
    err = FakeTTY()
    monkeypatch.setattr(sys, "stderr", err)
    p = Progress(4, done=1)
    for _ in range(3):
        p.advance()
    p.close()
    text = err.getvalue()
    assert "4/4" in text and "img/s" in text and "labeling" in text


def test_quiet_overrides_a_terminal(monkeypatch):
    err = FakeTTY()
    monkeypatch.setattr(sys, "stderr", err)
    p = Progress(4, enabled=False)
    p.advance()
    p.close()
    assert err.getvalue() == ""
