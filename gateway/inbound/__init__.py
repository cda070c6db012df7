"""Mail coming in: the SMTP listener, the durable store (250 only after commit), routing,
the processor and its parse-ahead worker, delivery into a mailbox, threading, and agents
answering by email (their text told apart from our notification). Reaches outbound only through ticket events. Imports tickets and
everything below it; never outbound, the CLI or the portal.
"""
