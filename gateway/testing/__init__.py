"""Wicket's pytest plugin: fixture mail through exactly the production path, in a developer's tests.

Installing Wicket registers the plugin (the `pytest11` entry point `wicket`, module
`gateway.testing.plugin`). Its fixtures start a gateway on a temporary database migrated
by the shipped migrations; `receive_email` stores a message through the same store the
SMTP listener uses and runs the same processor, and returns what became of it in the
shape `wicket tickets show --json` prints. `harness` holds that machinery; `plugin` only
declares fixtures. Like `gateway.cli`, this is a composition root: it may import every
gateway package and the portal (for the signed-in portal client), and nothing imports it.
"""
