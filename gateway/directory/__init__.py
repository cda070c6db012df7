"""Who is who: contacts (customers, one per address), company accounts and their sharing,
agents, their notification preferences and API keys, mailboxes and their brands. Imports storage, models and mail.
"""
