"""Raw message bytes to a `ParsedEmail`: the one place that reads what a sender sent.

mail-parser (`mailparser.parse_from_bytes`) is the parser of record: it parses the bytes
once into the stdlib message tree that everything here walks, reports the MIME structure
defects, and its address and date parsers read From/To/Cc/Reply-To and Date. Where it
loses information the stdlib `email` objects it built are read directly: body text and
header words are decoded through `gateway.charsets` (mail-parser drops what the declared
charset cannot decode), attachment names are decoded from their RFC 2231/2047 parameters,
attached `message/rfc822` parts stay whole (forwards) instead of being merged into the
body, and `message/delivery-status` parts become a `DeliveryReport`. Quoted history and
inline forwards are found by `gateway.quotes`. `parse_email` never raises, and charset
labels whose codecs decode in quadratic time (punycode, idna) are renamed before
mail-parser sees the bytes.
The package is laid out as: `core` (`parse_email` and the `ParsedEmail` it returns),
`headers` (`Headers`, addresses, dates, message ids), `bodies` (walking the parts, body
text, attachments and their file names) and `reports` (delivery reports and bounces);
the public names are re-exported here.
"""

from __future__ import annotations

from gateway.parse.bodies import ParsedAttachment
from gateway.parse.core import ParsedEmail, parse_email
from gateway.parse.headers import Headers, normalize_message_id
from gateway.parse.reports import (
    DeliveryReport,
    has_empty_return_path,
    is_bounce_subject,
    is_mailer_daemon,
)
from gateway.quotes import Address, ForwardedOriginal

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
]
