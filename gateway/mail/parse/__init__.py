"""Raw message bytes to a `ParsedEmail`: the one place that reads what a sender sent.

mail-parser is the parser of record, used for the pieces Wicket reads: the bytes are
parsed once into the stdlib message tree exactly as `mailparser.parse_from_bytes` builds
it (`email.message_from_bytes`), the MIME structure defects are those it reports (each
part's stdlib defects, in `walk()` order), and its address and date parsers read
From/To/Cc/Reply-To and Date. `MailParser.parse()` itself is not run: its second pass
decodes every body and base64-encodes every attachment into dicts nothing here reads, at
four times the cost of the tree, and it raises on trees that are fine (an unterminated
epilogue, a NUL in a charset label). Everything else is read from the stdlib `email`
objects directly: body text and header words are decoded through `gateway.mail.charsets`,
attachment names are decoded from their RFC 2231/2047 parameters, attached
`message/rfc822` parts stay whole (forwards) instead of being merged into the body, and
`message/delivery-status` parts become a `DeliveryReport`. Quoted history and inline
forwards are found by `gateway.mail.quotes` and `gateway.mail.forwards`. `parse_email`
never raises, and charset labels whose codecs decode in quadratic time (punycode, idna)
are renamed before the bytes are parsed. The package is laid out as: `core` (`parse_email`
and the `ParsedEmail` it returns), `headers` (`Headers`, addresses, dates, message ids),
`bodies` (walking the parts, body text, attachments and their file names) and `reports`
(delivery reports and bounces); the public names are re-exported here.
"""

from __future__ import annotations

from gateway.mail.parse.bodies import ParsedAttachment
from gateway.mail.parse.core import ParsedEmail, parse_email
from gateway.mail.parse.headers import Headers, normalize_message_id, shown_headers
from gateway.mail.parse.reports import (
    DeliveryReport,
    has_empty_return_path,
    is_bounce_subject,
    is_mailer_daemon,
)
from gateway.mail.addresses import Address
from gateway.mail.forwards import ForwardedOriginal

__all__ = [
    "Address",
    "DeliveryReport",
    "ForwardedOriginal",
    "Headers",
    "ParsedAttachment",
    "ParsedEmail",
    "has_empty_return_path",
    "is_bounce_subject",
    "is_mailer_daemon",
    "normalize_message_id",
    "parse_email",
    "shown_headers",
]
