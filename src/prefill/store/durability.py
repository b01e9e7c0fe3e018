"""How a write that promises durability waits for a replica, by what the primary offers.

Replication is asynchronous: a primary that dies right after answering can take a write with
it. So a consent change, an erasure and a revocation are answered only once a replica has it:
- `WAITAOF 0 1 <ms>` (Redis 7.2+): one replica has written it to its append-only file and
  fsynced it (by the replica's `appendfsync`): it survives the primary's loss, and the replica's
  own crash too.
- `WAIT 1 <ms>` (older servers): one replica has received it into its memory: it survives the
  primary's loss, not the loss of both at once before the replica's own fsync.
Either covers every write made earlier on the same connection, and the replication stream is
ordered: a confirmed marker written last confirms what came before it on that primary.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.typing import EncodableT

REPLICA_WAIT_MS = 100
"""How long a durable write waits for a replica to confirm it: replicas on the same network
confirm within a millisecond; one that cannot in this time is treated as absent."""

WAITAOF_SINCE = (7, 2)


@dataclass(frozen=True)
class ReplicaWait:
    """The command that waits for one replica, and how to read its reply."""

    command: tuple[EncodableT, ...]

    def confirmed(self, reply: object) -> bool:
        if self.command[0] == "WAITAOF":  # [fsynced locally, replicas that fsynced]
            return isinstance(reply, list) and len(reply) == 2 and int(reply[1]) >= 1
        return isinstance(reply, int) and reply >= 1


def replica_wait(redis_version: str) -> ReplicaWait:
    """WAITAOF where the server has it (7.2+), else WAIT; `redis_version` as INFO says it."""
    try:
        major, minor = (int(part) for part in redis_version.split(".")[:2])
    except ValueError:
        major, minor = 0, 0  # not a version we know: the command every server has
    if (major, minor) >= WAITAOF_SINCE:
        return ReplicaWait(("WAITAOF", 0, 1, REPLICA_WAIT_MS))
    return ReplicaWait(("WAIT", 1, REPLICA_WAIT_MS))
