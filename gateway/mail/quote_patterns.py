"""The words mail clients write around quoted history, in the languages Wicket reads.

This module owns the vocabulary the quote and forward readers (`gateway.mail.quotes`,
`quote_lines`, `forwards`) match against: the verbs of attribution lines ("On <date>,
<name> wrote:" in English, German, French, Spanish, Italian, Portuguese, Dutch, Danish,
Norwegian, Swedish, Polish, Russian, Czech, Finnish, Hungarian, Turkish, Vietnamese,
Japanese, Chinese and Korean), the field names of the From/Sent/To/Subject header blocks
Outlook, Hotmail, Windows Mail and others print above a quote in the same languages, and
the fenced separator lines ("-----Original Message-----", "---- Name wrote ----"). Nothing
here decides where a quote starts; the patterns are data, so a new language is one line.
"""

from __future__ import annotations

import re

MAX_LINE = 500  # longer lines are prose or data, never an attribution or header

# Attribution verbs ("wrote"), lower-case; an attribution line ends with one and a colon.
_VERBS = (
    "wrote|sent|writes|schrieb|a écrit|escribió|escribio|ha scritto|scrisse|escreveu|schreef"
    "|het volgende geschreven|geschreven|skrev|skrev følgende|napisał|napisała|napisal|пишет"
    "|написал|написала|написал\\(а\\)|napsal|napsala|kirjoitti|írta|yazdı|đã viết|viết"
    "|님이 작성|작성|写道|寫道|のメッセージ|wrote on|sendte"
)
# "On <date>, <name> wrote:" (possibly wrapped), fenced by dashes, or cut by a line end.
ATTRIBUTION = re.compile(rf"(?:^|\s|-)(?:{_VERBS})\s*(?:-{{2,}}|:)\s*$", re.I)
# A word an attribution line starts with, for joining one wrapped over several lines.
ATTRIBUTION_START = re.compile(
    r"(?:On|Am|Le|El|Op|Il|Em|Den|På|Dne|W dniu|Vào|Ngày|Sent from|\d{1,4}[-/.年])", re.I
)
# "Op <date> schreef <name> <address>:": the verb before the name, still ending with ":".
VERB_FIRST = re.compile(rf"\b(?:{_VERBS})\b.*:\s*$", re.I)
# An attribution that shares a line with the end of the reply ("reply On ... wrote:").
INLINE_ATTRIBUTION = re.compile(rf"(?:-{{2,}}\s*)?\bOn\s(?=[^\n]*\d)[^\n]*\b(?:{_VERBS}):\s*$", re.I)
# A line with a date-like number and an address, ending with ":" (or ">" above a quote):
# Yandex, mail.ru and Gmail's "2014-10-17 11:28 GMT+03:00 Name <a@b>:".
DATED_ADDRESS = re.compile(r"(?=.*\d).*@[^\s]*?>?\s*:?\s*$")
# "---- Name wrote ----" (Android) and "-----On <date>, <name> wrote-----".
FENCED = re.compile(rf"-{{3,10}}\s*[^\s-].{{0,100}}?\b(?:{_VERBS})\s*-{{3,10}}", re.I)
FORWARD_MARKER = re.compile(
    r"-{2,}\s*(?:Forwarded message|Weitergeleitete Nachricht|Message transféré"
    r"|Mensaje reenviado|Messaggio inoltrato|Doorgestuurd bericht|Videresendt meddelelse"
    r"|Vidarebefordrat meddelande|Пересылаемое сообщение|Wiadomość przekazana)\s*-*"
    r"|(?:Begin forwarded message|Anfang der weitergeleiteten Nachricht"
    r"|Début du message réexpédié)\s*:",
    re.I,
)
ORIGINAL_MESSAGE = re.compile(
    r"-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine|Mensaje original"
    r"|Messaggio originale|Oorspronkelijk bericht|Oprindelig meddelelse|Opprinnelig melding"
    r"|Ursprungligt meddelande|Исходное сообщение|Wiadomość oryginalna|Reply Message"
    r"|Antwort Nachricht)\s*-{2,}",
    re.I,
)
SEPARATOR = re.compile(r"_{10,}")
FIELD = re.compile(r"\*?([^\W\d_]+(?: [^\W\d_]+){0,2})\s*\*?\s*[:：]\s*\*?\s*(.*)")
FIELD_KINDS = {
    **dict.fromkeys(
        "from|von|de|da|van|fra|från|od|от|lähettäjä|feladó|kimden|từ|差出人|发件人|寄件者|보낸 사람".split("|"),
        "from",
    ),
    **dict.fromkeys(
        "sent|date|gesendet|datum|envoyé|enviado|fecha|inviato|verzonden|data|sendt|skickat|wysłano"
        "|wysłane|отправлено|дата|odesláno|lähetetty|küldve|gönderildi|tarih|đã gửi|ngày|送信日時"
        "|日付|发送时间|日期|보낸 날짜|날짜|enviada|enviado em|envoyé le".split("|"),
        "date",
    ),
    **dict.fromkeys(
        "to|an|à|para|a|aan|til|till|do|кому|komu|vastaanottaja|címzett|kime|đến|宛先|收件人"
        "|받는 사람".split("|"),
        "to",
    ),
    **dict.fromkeys("cc kopie kopia копия kópia bilgi 抄送".split(), "cc"),
    **dict.fromkeys(
        "subject|betreff|objet|asunto|oggetto|onderwerp|assunto|emne|ämne|temat|тема|předmět|aihe"
        "|tárgy|konu|chủ đề|件名|主题|主旨|제목".split("|"),
        "subject",
    ),
}
