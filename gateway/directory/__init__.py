"""Who is who: contacts (customers, one per address), company accounts and their sharing,
agents and their API keys, mailboxes and their brands. Imports storage, models and mail.
"""
