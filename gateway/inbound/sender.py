"""Who a message is from: the sender step of delivery, and the contact it may become.

The headers name the sender (From, else Sender, else Reply-To: `gateway.mail.parse` takes
the first whose address passes `gateway.mail.addresses.is_valid_address`, email-validator's
syntax check without DNS); without one, a valid envelope sender (MAIL FROM) is used. Only
such an address becomes a contact. Mail that names none has no contact at all: its ticket
gets no requester and is flagged for the team, with the From header kept escaped so they
can see what came in (docs/architecture.md, "Mail with no usable sender").
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from gateway.directory.contacts import contact_for
from gateway.mail.addresses import escaped_header, is_valid_address
from gateway.mail.parse import ParsedEmail
from gateway.mail.verdicts import SenderVerdicts
from gateway.models import Contact

@dataclass(frozen=True, slots=True)
class Sender:
    """Who the message is from: the address and name as stored on it, their contact, and the checks.

    `contact` is None (and `email` "") when no header and no envelope sender gave a usable
    address; `unclear_from` is then the From header, escaped. `trusted` is False when the
    mail failed DMARC for its From domain: then nothing that rests on the sender being who
    From says (a marker, a subject tag, bringing people in by Cc) applies, and a ticket it
    opens is flagged.
    """

    email: str
    name: str
    contact: Contact | None
    verdicts: SenderVerdicts | None = None
    unclear_from: str = ""

    @property
    def trusted(self) -> bool:
        return self.verdicts is None or not self.verdicts.dmarc_failed

    @property
    def contact_id(self) -> int | None:
        return self.contact.id if self.contact is not None else None

    @property
    def known(self) -> bool:
        """A usable address named the sender, so it has a contact (who may choose people in Cc)."""
        return self.contact is not None


def find_sender(session: Session, mail_from: str, mail: ParsedEmail, verdicts: SenderVerdicts | None) -> Sender:
    """The sender the headers name, else a valid envelope sender `mail_from`, and its
    contact, created on first sight; no contact when neither gives a usable address."""
    envelope = mail_from if is_valid_address(mail_from) else ""
    # Column sizes bound what junk headers can put here (PostgreSQL refuses longer values).
    email = ((mail.sender.email if mail.sender else "") or envelope)[:320]
    name = (mail.sender.name if mail.sender else "")[:200]
    if not email:
        return Sender("", name, None, verdicts, unclear_from=escaped_header(mail.headers.get("From", "")))
    return Sender(email, name, contact_for(session, email, name), verdicts)
