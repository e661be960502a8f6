"""Recall and benign precision of every log parser on the annotated corpus (issue 13).

    python bench/parser_accuracy.py [-v]

Reads tests/samples/accuracy/<parser>.log (one line per message variant of sshd/PAM,
Dovecot, Postfix smtpd and postscreen, Exim main/reject logs and Exim via syslog, in the
syslog envelopes of issue 13; format in tests/evidence/accuracy.py) and prints, per parser,
the attack lines understood with the right event and address (recall) and the benign lines
given exactly their non-attack event or none (precision). ``-v`` lists every miss.
The targets of issue 13 are >= 95 % recall and >= 99 % precision; the test suite
(tests/evidence/test_accuracy.py) requires 100 % on this corpus.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.evidence.accuracy import parsers, score  # noqa: E402


def main() -> int:
    """Print the figures; exit 1 when a parser misses the targets of issue 13."""
    verbose = "-v" in sys.argv[1:]
    total_a = total_ar = total_b = total_br = 0
    failed = False
    print(
        f"{'parser':<10} {'attack lines':>12} {'recall':>8} {'benign lines':>13} {'precision':>10}"
    )
    for name in parsers():
        s = score(name)
        total_a, total_ar = total_a + s.attacks, total_ar + s.attacks_right
        total_b, total_br = total_b + s.benign, total_br + s.benign_right
        print(f"{name:<10} {s.attacks:>12} {s.recall:>8.1%} {s.benign:>13} {s.precision:>10.1%}")
        failed |= s.recall < 0.95 or s.precision < 0.99
        if verbose:
            for miss in s.misses:
                print("   ", miss)
    print(
        f"{'all':<10} {total_a:>12} {total_ar / total_a:>8.1%} {total_b:>13}"
        f" {total_br / total_b:>10.1%}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
