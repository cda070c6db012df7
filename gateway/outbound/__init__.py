"""Mail going out: the outbox and its worker, drafts rendered at delivery, composition,
mail to customers and notifications to agents (the ticket-event subscribers), colleague
copies and notices to agents, the daily digest and the periodic job, sign-in mail, DKIM
and the senders. Imports tickets and everything below it; never inbound, the CLI or the
portal.
"""
