"""The help center: articles imported from Markdown, sanitized, and searched. Imports mail,
models and storage.
"""
