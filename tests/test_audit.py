"""`make audit` never reports "no known vulnerabilities" when nothing could be checked."""

from __future__ import annotations

from bot.audit import verdict


def test_every_package_not_found_is_a_plain_failure_not_a_clean_bill() -> None:
    report = {"dependencies": [
        {"name": "aiohttp", "skip_reason": "Dependency not found on PyPI and could not be audited: aiohttp (3.9.5)"},
        {"name": "rasa", "skip_reason": "Dependency not found on PyPI and could not be audited: rasa (3.6.21)"},
    ]}
    code, lines = verdict(report)
    assert code == 2
    assert "could not check anything" in lines[0] and "SECURITY.md" in lines[0]


def test_known_vulnerabilities_are_listed_with_their_fixes() -> None:
    report = {"dependencies": [
        {"name": "aiohttp", "version": "3.9.5", "vulns": [
            {"id": "GHSA-8495-4g3g-x7pr", "fix_versions": ["3.10.11"], "aliases": ["CVE-2024-52304"]}]},
        {"name": "rasa", "version": "3.6.21", "vulns": []},
    ]}
    code, lines = verdict(report)
    assert code == 1
    assert "aiohttp 3.9.5: GHSA-8495-4g3g-x7pr (fixed in 3.10.11)" in lines


def test_clean_only_when_every_package_was_audited() -> None:
    audited = {"name": "rasa", "version": "3.6.21", "vulns": []}
    assert verdict({"dependencies": [audited]})[0] == 0
    partly = {"dependencies": [audited, {"name": "x", "skip_reason": "not found"}]}
    assert verdict(partly)[0] == 2
