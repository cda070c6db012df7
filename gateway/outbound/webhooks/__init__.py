"""Webhooks: endpoints and their secrets, the events recorded in a change's transaction,
their JSON bodies, signed attachment links, and the worker that delivers them."""
