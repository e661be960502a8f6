"""The Postfix policy service: SMTP sessions judged from the snapshot DNS answers from.

Postfix's ``check_policy_service`` sends ``name=value`` lines ending with an empty line
and reads back ``action=...`` and an empty line (Postfix SMTPD_POLICY_README). ``protocol``
reads and writes that, ``decide`` turns one request and the lookups of its client address,
client name, HELO name and sender domain into an action, ``server`` runs the TCP service
inside ``serve`` and turns hits on trap recipients into spam evidence at once.
"""
