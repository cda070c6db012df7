"""Reading mail: parsing raw bytes into a ParsedEmail, repairing charsets, splitting replies
from quoted history, and classifying what must never be answered. Pure functions: no
database, no I/O. Imports nothing of Wicket but settings.
"""
