"""The `wicket` command line, one module per command group, and the composition root
(runtime.py) that wires a node: database, store, processor, event subscribers, outbox,
listeners. May import everything, including the portal it serves.
"""
