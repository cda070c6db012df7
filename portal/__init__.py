"""The customer portal: an aiohttp application built by `portal.app.create_app(settings)`.

It imports the gateway (models, tokens, outbox, audit); the gateway never imports it.
"""
