"""A missing machine dependency fails the test unless the run asked to leave it out."""

from __future__ import annotations

import pytest

from tests.support.requires import need


def test_a_missing_dependency_fails_and_names_the_command(monkeypatch):
    monkeypatch.delenv("CANGYUN_SKIP", raising=False)
    with pytest.raises(pytest.fail.Exception, match=r"make install.*CANGYUN_SKIP=browser"):
        need("browser", False)


@pytest.mark.parametrize("asked", ["browser", "fonts,browser", "all"])
def test_a_partial_run_skips_what_it_named(monkeypatch, asked):
    monkeypatch.setenv("CANGYUN_SKIP", asked)
    with pytest.raises(pytest.skip.Exception, match="CANGYUN_SKIP="):
        need("browser", False)


def test_a_partial_run_of_something_else_still_fails(monkeypatch):
    monkeypatch.setenv("CANGYUN_SKIP", "fonts")
    with pytest.raises(pytest.fail.Exception):
        need("browser", False)


def test_a_present_dependency_does_nothing(monkeypatch):
    monkeypatch.delenv("CANGYUN_SKIP", raising=False)
    need("mosquitto", True)
