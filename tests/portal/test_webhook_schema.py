"""The OpenAPI document's `webhooks` section is valid OpenAPI 3.1 and names every event type."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from gateway.outbound.webhooks.endpoints import EVENT_TYPES, TEST_EVENT
from portal.views.api_document import openapi_document


def test_the_openapi_document_with_its_webhooks_validates() -> None:
    document = openapi_document()
    validate(document)
    assert set(document["webhooks"]) == {*EVENT_TYPES, TEST_EVENT}
    received = document["webhooks"]["message.received"]["post"]
    assert {p["name"] for p in received["parameters"]} == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    schema = received["requestBody"]["content"]["application/json"]["schema"]["$ref"].rpartition("/")[2]
    assert "verdicts" in document["components"]["schemas"]["ReceivedMessage"]["properties"]
    assert schema == "MessageReceived"


def test_the_validator_refuses_a_broken_webhooks_section() -> None:
    document = openapi_document()
    broken = {**document, "webhooks": {"message.received": {"post": {"responses": "none"}}}}
    with pytest.raises(OpenAPIValidationError):
        validate(broken)
