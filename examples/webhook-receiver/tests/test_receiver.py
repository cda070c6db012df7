"""The receiver, tested against a real Wicket through Wicket's pytest plugin alone."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer, unused_port

from receiver import LEADS, create_app


async def start_receiver(wicket) -> TestServer:
    """The receiver on a free port, with the signing secret Wicket issued for it."""
    port = unused_port()
    secret = await wicket.add_webhook(f"http://127.0.0.1:{port}/hooks/wicket")
    server = TestServer(create_app(secret), host="127.0.0.1", port=port)
    await server.start_server()
    return server


async def test_a_customer_mail_becomes_a_lead(wicket, receive_email):
    server = await start_receiver(wicket)
    try:
        received = await receive_email("order-question.eml")
        await wicket.deliver_webhooks()
        lead = server.app[LEADS]["dana@shop.example"]
        assert lead.name == "Dana Buyer"
        assert lead.subjects == ["Where is order 4711?"]
        assert lead.tickets == {received.ticket_ref}
    finally:
        await server.close()


async def test_a_forged_post_is_refused(wicket):
    client = TestClient(await start_receiver(wicket))
    try:
        forged = await client.post("/hooks/wicket", data=b'{"type": "message.received"}', headers={
            "webhook-id": "msg_forged", "webhook-timestamp": "1700000000", "webhook-signature": "v1,AAAA",
        })
        assert forged.status == 401
        assert client.app[LEADS] == {}
    finally:
        await client.close()
