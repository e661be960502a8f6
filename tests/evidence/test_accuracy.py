"""Every parser over its accuracy corpus (tests/samples/accuracy/): no attack line missed,
no event on a benign line (precision and recall both 100 % on this corpus)."""

from __future__ import annotations

import pytest

from tests.evidence.accuracy import CORPUS, load, parsers, score


def test_the_corpus_covers_every_daemon_of_issue_13() -> None:
    """sshd/PAM, Dovecot, Postfix (smtpd, postscreen) and Exim each have a corpus file."""
    assert {"sshd", "dovecot", "postfix", "exim"} <= set(parsers())
    for name in parsers():
        _, cases = load(CORPUS / f"{name}.log")
        assert sum(c.attack for c in cases) >= 10 and sum(not c.attack for c in cases) >= 8, name


@pytest.mark.parametrize("parser", parsers())
def test_parser_finds_every_attack_line_and_no_event_on_benign_lines(parser: str) -> None:
    """Recall and benign precision are 1.0; a miss is listed with its corpus line."""
    result = score(parser)
    print(
        f"{parser}: recall {result.recall:.3f} ({result.attacks_right}/{result.attacks}),"
        f" benign precision {result.precision:.3f} ({result.benign_right}/{result.benign})"
    )
    assert not result.misses, "\n".join(result.misses)
