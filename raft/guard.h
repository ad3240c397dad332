/* raft/guard.h — what cairn changes in the messages between libraft and its I/O: two libraft
 * 0.22.1 bugs worked around, and the Raft thesis' rule for votes while a leader is believed in.
 * The member's real I/O (raft/node.c) and the deterministic fixture test
 * (tests/unit/test_raft_fixture.c) wrap their raft_io's send and receive with these, so the
 * fixture's seeded runs exercise exactly what a member does. All on the raft instance's loop. */
#ifndef CAIRN_RAFT_GUARD_H
#define CAIRN_RAFT_GUARD_H

#include <stdbool.h>

#include <raft.h>

/* What the receiving side remembers between messages. Zero-initialized before the first one. */
struct raft_guard {
    raft_time leader_heard; /* when a message only a leader sends last arrived (r->io's clock) */
    unsigned held_off;      /* InstallSnapshots dropped (see raft_guard_recv) */
};

/* Mends m, a copy of a message r is about to send:
 * - an AppendEntries rejected for an older term leaves without last_log_index set
 *   (src/recv_append_entries.c), and the leader reads it: it is set as libraft's other rejection
 *   path sets it, the sender's last index below the rejected one;
 * - an InstallSnapshot whose snapshot was replaced by a newer one while it loaded carries the
 *   newer index with the older term (legacyLoadSnapshotCb in src/legacy.c), which makes the
 *   follower shut down and crash: the term is set to the one of the snapshot at that index. */
void raft_guard_send(struct raft *r, struct raft_message *m);

/* Looks at msg before r receives it. Returns false when msg is dropped (and freed): an
 * InstallSnapshot that arrives while r takes a snapshot of its own crashes libraft
 * (takeSnapshotCb in src/legacy.c reads legacy.snapshot_pending after clearing it), so it is
 * treated as lost on the way and the leader sends it again.
 *
 * Votes: libraft refuses a vote request while the member still believes in a leader, until its
 * own randomized election timeout expires; the thesis (4.2.3) refuses only within the minimum
 * election timeout of hearing from the leader, as etcd's CheckQuorum does. With libraft's rule, a
 * dead leader's successor waits for the later of the surviving followers' timeouts instead of the
 * earlier. So a vote request that arrives when r has heard nothing from its leader for an election
 * timeout is marked as allowed to disrupt the leader, which skips only that refusal: terms, logs
 * and earlier votes are checked as always.
 *
 * Timeouts: libraft draws a follower's randomized election timeout once, when it becomes a
 * follower, and keeps it for the whole term. The members that drew short timeouts win the
 * elections, so the survivors of a leader's death tend to hold long ones. A new timeout is drawn
 * each time an append arrives (as hashicorp/raft does on every heartbeat), so that after a
 * leader's death each follower waits a fresh draw and the first of them, not a survivor of earlier
 * elections, decides how long the cluster is without a leader. */
bool raft_guard_recv(struct raft_guard *g, struct raft *r, struct raft_message *msg);

#endif
