"""Whether an address may become a contact: email-validator's syntax check, never DNS.

Special-use domains such as `.local`, `.invalid` and `localhost` and single-label domains
are refused (mail cannot be answered there); `.test` is accepted because test and staging
set-ups use it. Internationalized addresses are accepted as SMTPUTF8 mail carries them.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email


def is_valid_address(address: str) -> bool:
    """Whether `address` is a syntactically valid mailbox a reply could be sent to."""
    if not address or len(address) > 320:
        return False
    try:
        validate_email(address, check_deliverability=False, test_environment=True, allow_smtputf8=True)
    except EmailNotValidError:
        return False
    return True
