"""Magic-link tokens and codes, the audit trail and rate limits. Imports storage and models.
"""
