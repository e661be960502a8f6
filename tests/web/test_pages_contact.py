"""The public page tells a listed party how to reach the operator (``policy.contact``)."""

from __future__ import annotations

from reputable.listings.explain import Explanation
from reputable.web.pages.public import advice_section


def _explained(listed: bool, remediation: list[str]) -> Explanation:
    return Explanation(
        subject="192.0.2.7", listed=listed, listings=[], score=10, bucket="bad", evidence={},
        network=None, collateral=[], remediation=remediation,
    )  # fmt: skip


def test_contact_is_shown_with_what_to_do() -> None:
    """With remediation steps, the contact follows them, as a mailto link, escaped."""
    html = advice_section(_explained(True, ["Set a PTR record"]), "abuse@example.net")
    assert "<h2>What to do</h2>" in html and "Set a PTR record" in html
    assert "id=operator-contact" in html
    assert '<a href="mailto:abuse@example.net">abuse@example.net</a>' in html
    tricky = advice_section(_explained(True, ["x"]), 'a"<b>@example.net')
    assert "<b>" not in tricky and "&lt;b&gt;" in tricky


def test_contact_alone_for_a_listing_without_steps() -> None:
    """A listing with no remediation still says whom to write to; none configured: nothing."""
    assert "operator-contact" in advice_section(_explained(True, []), "abuse@example.net")
    assert "operator-contact" not in advice_section(_explained(True, ["x"]), "")
    assert advice_section(_explained(False, []), "abuse@example.net") == ""
