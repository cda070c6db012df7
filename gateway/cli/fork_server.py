"""Imported by a node's fork server, and only there: the fork server dies with the supervisor.

multiprocessing's fork server stays up as long as any process it forked does, and each of
a node's role processes stays up as long as the fork server does (gateway/processes.py),
so on their own they would outlive a `kill -9` of the supervisor together. The supervisor
therefore names this module first among those its fork server imports at start
(gateway/cli/supervisor.py); importing it asks the kernel to kill the fork server when
its parent, the supervisor, dies, and the role processes and their parse workers follow.
"""

from __future__ import annotations

import os

from gateway.processes import die_with_parent

die_with_parent(os.getppid())
