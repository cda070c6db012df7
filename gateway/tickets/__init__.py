"""Tickets and what happens to them: opening and numbering, participants, notes, agent
replies and status changes, the events every change publishes, what contacts may see,
the lists and operator views, and the marks outbound mail carries (subject tag, signed
body marker, signed reply addresses). Imports directory, auth, mail, models, storage.
"""
