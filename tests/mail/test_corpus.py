"""The public regression corpus (fixtures/corpus/): every message parsed and scored per field.

Each message file has a `<file>.expected.json` written by hand (subject, sender address and
display name, attachment names, the reply text's first 300 characters, Message-ID and
In-Reply-To); talon's labelled reply cases are scored the same way. The floors in
`fixtures/corpus/scores.json` only ever go up: when a change scores better, raise them in
the same commit (the test says so). An Outlook .msg file is read as `wicket replay` reads
it, as the message it holds (`gateway.mail.outlook_mail`). Besides the scores, a few
things must hold for every file: no U+FFFD the source does not carry without a defect
saying why, no empty subject where the source has one, no invalid sender address, no empty
reply where there is text.
"""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

import pytest
from email_validator import EmailNotValidError, validate_email

from gateway.mail.outlook_mail import as_message
from gateway.mail.parse import ParsedEmail, parse_email
from gateway.mail.quotes import split_reply

CORPUS = Path(__file__).resolve().parent.parent.parent / "fixtures" / "corpus"
FLOORS = json.loads((CORPUS / "scores.json").read_text())
_REPLY_PREFIX = 300


def _squashed(text: str) -> str:
    return "".join(text.split())


def _messages() -> list[tuple[Path, dict[str, object]]]:
    return [
        (Path(str(path)[: -len(".expected.json")]), json.loads(path.read_text()))
        for path in sorted(CORPUS.rglob("*.expected.json"))
        if not path.name.endswith(".html.expected.json")
    ]


def _html_mail(html: str) -> bytes:
    """talon's HTML replies are bare documents: sent as the only part of a message."""
    message = EmailMessage()
    message["From"] = "alex@example.com"
    message["Subject"] = "Re: How are you?"
    message.set_content(html, subtype="html")
    return message.as_bytes()


def _observed(mail: ParsedEmail) -> dict[str, object]:
    return {
        "subject": mail.subject,
        "from": mail.sender.email if mail.sender else "",
        "name": mail.sender.name if mail.sender else "",
        "attachments": [attachment.filename for attachment in mail.attachments],
        "reply": " ".join(mail.reply_text.split())[:_REPLY_PREFIX],
        "thread": [mail.message_id, list(mail.in_reply_to)],
    }


def _valid_address(address: str) -> bool:
    try:
        validate_email(address, check_deliverability=False, test_environment=True, allow_smtputf8=True)
    except EmailNotValidError:
        return False
    return True


def _problems(source: bytes, mail: ParsedEmail, expected: dict[str, object]) -> list[str]:
    """What must never happen on any corpus file, whatever the scores."""
    problems = []
    visible = [mail.subject, mail.text, *(a.filename for a in mail.attachments)]
    if mail.sender:
        visible.append(mail.sender.name)
    if "\ufffd".encode() not in source and any("\ufffd" in text for text in visible):
        if not any("undecodable" in defect or "U+FFFD" in defect for defect in mail.defects):
            problems.append("U+FFFD without a defect saying why")
    if expected.get("subject") and not mail.subject:
        problems.append("empty subject")
    if mail.sender and mail.sender.email and not _valid_address(mail.sender.email):
        problems.append(f"invalid sender address {mail.sender.email!r}")
    if expected.get("reply") and not mail.reply_text.strip():
        problems.append("empty reply")
    return problems


def _score() -> tuple[dict[str, list[int]], dict[str, list[str]]]:
    """Per field: [matches, cases]; and the misses, by field, for the report."""
    scores: dict[str, list[int]] = {}
    misses: dict[str, list[str]] = {}

    def count(field: str, hit: bool, case: str) -> None:
        tally = scores.setdefault(field, [0, 0])
        tally[0] += hit
        tally[1] += 1
        if not hit:
            misses.setdefault(field, []).append(case)

    for path, expected in _messages():
        source = as_message(path.read_bytes())  # a .msg file as the message it holds
        mail = parse_email(source)
        seen = _observed(mail)
        name = str(path.relative_to(CORPUS))
        for field in ("subject", "from", "name", "attachments"):
            count(field, seen[field] == expected[field], name)
        count("reply", _squashed(str(seen["reply"])) == _squashed(str(expected["reply"])), name)
        count("thread", seen["thread"] == [expected["message_id"], expected["in_reply_to"]], name)
        problems = _problems(source, mail, expected)
        count("sound", not problems, f"{name}: {', '.join(problems)}")
        if name.startswith("talon/standard_replies/"):
            count("talon standard", _squashed(mail.reply_text) == _squashed(str(expected["reply"])), name)
    for path in sorted((CORPUS / "talon" / "html_replies").glob("*.html")):
        expected = json.loads(Path(f"{path}.expected.json").read_text())
        mail = parse_email(_html_mail(path.read_text(encoding="utf-8")))
        count("talon html", _squashed(mail.reply_text) == _squashed(expected["reply"]), path.name)
    for case in json.loads((CORPUS / "talon" / "inline_cases.json").read_text()):
        reply = split_reply(case["input"])[0]
        count("talon inline", _squashed(reply) == _squashed(case["expected"]), case["test"])
    return scores, misses


def test_the_corpus_scores_at_least_its_floors(capsys: pytest.CaptureFixture[str]) -> None:
    scores, misses = _score()
    report = [f"{field:<16} {hit:>4}/{total:<4}" for field, (hit, total) in scores.items()]
    with capsys.disabled():
        print("\ncorpus scores:\n  " + "\n  ".join(report))
    below = {field: hit for field, (hit, _) in scores.items() if hit < FLOORS.get(field, 0)}
    assert not below, f"below the floor: {below}; misses: { {f: misses.get(f) for f in below} }"
    above = {field: hit for field, (hit, _) in scores.items() if hit > FLOORS.get(field, 0)}
    assert not above, f"better than the floor: raise fixtures/corpus/scores.json to {above}"


def test_talon_targets_are_met() -> None:
    scores, misses = _score()
    assert scores["talon standard"][0] == scores["talon standard"][1], misses.get("talon standard")
    assert scores["talon html"][0] >= 8, misses.get("talon html")
    assert scores["talon inline"][0] >= 45, misses.get("talon inline")
