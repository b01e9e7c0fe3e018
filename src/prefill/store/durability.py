"""How a write that promises durability waits for a replica, by what the primary offers.

Replication is asynchronous: a primary that dies right after answering can take a write with
it. So a consent change, an erasure and a revocation are answered only once a replica has it:
- `WAITAOF 0 1 <ms>` (Redis 7.2+): one replica has written it to its append-only file and
  fsynced it (by the replica's `appendfsync`): it survives the primary's loss, and the replica's
  own crash too. Only a replica with `appendonly yes` ever counts here, so it is followed by
  `WAIT 0 0` (immediate: how many replicas hold it in memory): a primary whose replicas run
  without AOF (a default, and common on managed services) still confirms, as on older servers,
  after the full wait, and says so in the log, rather than refusing every consent change.
- `WAIT 1 <ms>` (older servers): one replica has received it into its memory: it survives the
  primary's loss, not the loss of both at once before the replica's own fsync.
Either covers every write made earlier on the same connection, and the replication stream is
ordered: a confirmed marker written last confirms what came before it on that primary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from redis.typing import EncodableT

REPLICA_WAIT_MS = 100
"""How long a durable write waits for a replica to confirm it: replicas on the same network
confirm within a millisecond; one that cannot in this time is treated as absent."""

WAITAOF_SINCE = (7, 2)


class Confirmed(Enum):
    """What a replica's confirmation of a write promises."""

    FSYNCED = "fsynced"
    IN_MEMORY = "in_memory"


@dataclass(frozen=True)
class ReplicaWait:
    """The commands that wait for one replica (sent after the write, on its connection), and
    how to read their replies."""

    commands: tuple[tuple[EncodableT, ...], ...]

    def confirmed(self, replies: Sequence[object]) -> Confirmed | None:
        """What the replies promise; None: no replica confirmed in time."""
        if self.commands[0][0] == "WAITAOF":
            fsynced, in_memory = replies  # [fsynced locally, replicas that fsynced], a count
            if isinstance(fsynced, list) and len(fsynced) == 2 and int(fsynced[1]) >= 1:
                return Confirmed.FSYNCED
            return Confirmed.IN_MEMORY if _at_least_one(in_memory) else None
        return Confirmed.IN_MEMORY if _at_least_one(replies[0]) else None


def _at_least_one(reply: object) -> bool:
    return isinstance(reply, int) and reply >= 1


def replica_wait(redis_version: str) -> ReplicaWait:
    """WAITAOF where the server has it (7.2+), else WAIT; `redis_version` as INFO says it."""
    try:
        major, minor = (int(part) for part in redis_version.split(".")[:2])
    except ValueError:
        major, minor = 0, 0  # not a version we know: the command every server has
    if (major, minor) >= WAITAOF_SINCE:
        return ReplicaWait((("WAITAOF", 0, 1, REPLICA_WAIT_MS), ("WAIT", 0, 0)))
    return ReplicaWait((("WAIT", 1, REPLICA_WAIT_MS),))
