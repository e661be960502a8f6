"""What an admin should do about each cause, in the operator-to-admin voice (pure text)."""

from __future__ import annotations

from typing import Final

from reputable.core.cause import Cause

REMEDIATION: Final[dict[Cause, tuple[str, ...]]] = {
    Cause.SPAM: (
        "Find what sent the mail: a compromised account, a form or script on a web site, or an"
        " infected machine behind this address; stop it and change the affected passwords.",
        "Check the outgoing queue and logs for mail you did not mean to send.",
        "Publish SPF, sign with DKIM and publish DMARC so receivers can tell your mail from forgeries.",
    ),
    Cause.HARVEST: (
        "Verify and clean your recipient lists: remove addresses that bounce with 'user unknown'"
        " and stop mailing purchased or scraped lists.",
        "Use confirmed opt-in for new subscribers; never guess addresses.",
    ),
    Cause.COMPROMISED: (
        "Treat the host as infected: scan and clean it (or reinstall), patch it, and change every"
        " password it held.",
        "Block the traffic we saw (brute-force logins, scans, floods, botnet C2 contacts) at your"
        " firewall until it is clean.",
    ),
    Cause.OPEN_RELAY: (
        "Restrict relaying to authenticated users and your own networks (Postfix:"
        " smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination).",
        "Test again from outside after the change.",
    ),
    Cause.OPEN_PROXY: (
        "Close the proxy to the internet: require authentication or bind it to internal addresses"
        " only (HTTP CONNECT, SOCKS4/5).",
    ),
    Cause.MALWARE_HOST: (
        "Remove the malware or phishing content, find how it got there (outdated CMS, plugin,"
        " stolen FTP/SSH credentials) and close that hole.",
        "On shared hosting, tell your provider which site was affected.",
    ),
    Cause.RDNS: (
        "Set a PTR record for this address that names your mail server, make that name resolve"
        " back to the same address (forward-confirmed), and use it as the HELO/EHLO name.",
        "Avoid generic names that contain the address's digits or words like dyn, dsl, pool.",
    ),
    Cause.NETWORK: (
        "Many addresses in this network are listed: the network's operator should find and"
        " clean the abusing hosts.",
        "If your address is clean, ask for it to be carved out: clean mail history is taken into account.",
    ),
    Cause.MANUAL: (
        "An operator listed this subject by hand or from a third-party feed: contact the list's"
        " operator with what you changed.",
    ),
}

REMOVAL_PATH: Final = (
    "Fix the cause first. Listings expire by themselves once the evidence stops; to ask for an"
    " earlier removal run `reputable delist request SUBJECT --contact EMAIL --note WHAT_YOU_FIXED`"
    " (or use the lookup page). Requests are granted at once when nothing new has been seen for"
    " the quiet period, otherwise an operator reviews them."
)


def remediation(causes: list[Cause]) -> list[str]:
    """Return the advice for *causes*, in order, without repeats, then the removal path."""
    advice: list[str] = []
    for cause in causes:
        for line in REMEDIATION.get(cause, ()):
            if line not in advice:
                advice.append(line)
    if causes:
        advice.append(REMOVAL_PATH)
    return advice
