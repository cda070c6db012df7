"""Wicket's gateway: SMTP in, mail processing, tickets, outbound mail and the CLI."""
