"""Tickets and what happens to them: opening and numbering, participants, notes, agent
replies and their commands (owner, priority, tags), the status rules, the events and
audit rows every change makes, what contacts may see, the lists and operator views, and
the marks outbound mail carries (subject tag, signed body marker, signed reply
addresses). Imports directory, auth, mail, models, storage.
"""
