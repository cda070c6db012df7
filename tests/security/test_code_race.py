"""The limit on wrong codes holds when the guesses arrive all at once.

Counting a failure after the check let every request of a burst pass the check before any
of them had counted: 40 parallel wrong codes all got to be compared. Each attempt now
takes its place in the count with one atomic statement before the code is compared, so
of N parallel guesses at most the limit are compared and the rest get the limit page.
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.auth.tokens import LinkPurpose
from gateway.settings import Settings
from tests.portal.helpers import audit_events, with_settings
from tests.security.world import OWNER, NewBrowser, World

pytestmark = pytest.mark.timeout(180)

LIMIT = 5
PARALLEL = 40


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_settings(settings, rate_limit_failures_per_address=LIMIT, code_max_attempts=20)


async def test_parallel_wrong_codes_get_no_more_tries_than_the_limit(world: World, new_browser: NewBrowser) -> None:
    issued = await world.link(world.alice, purpose=LinkPurpose.SIGNIN)
    wrong = "ABCD-EFGH" if issued.code != "ABCD-EFGH" else "HGFE-DCBA"
    browsers = [await new_browser() for _ in range(8)]
    tokens = [await browser.csrf_token("/code") for browser in browsers]

    async def guess(number: int) -> int:
        browser = browsers[number % len(browsers)]
        data = {"email": OWNER, "code": wrong, "csrf_token": tokens[number % len(browsers)]}
        return (await browser.request("POST", "/code", data=data)).status

    statuses = await asyncio.gather(*(guess(number) for number in range(PARALLEL)))

    assert set(statuses) <= {400, 429}, statuses
    assert statuses.count(400) <= LIMIT, f"{statuses.count(400)} wrong codes were compared"
    assert statuses.count(429) >= PARALLEL - LIMIT
    compared = [event for event in await audit_events(world.db, "code.attempt") if event.contact_id == world.alice.id]
    assert len(compared) <= LIMIT
