/* raft/guard.h — what cairn changes in the messages between libraft and its I/O: two libraft
 * 0.22.1 bugs worked around, the Raft thesis' rule for votes while a leader is believed in, and
 * vote requests sent again over a connection libraft does not know is dead.
 * The member's real I/O (raft/node.c) and the deterministic fixture test
 * (tests/unit/test_raft_fixture.c) wrap their raft_io's send and receive with guard_send() and
 * guard_recv(), so the fixture's seeded runs exercise exactly what a member does with messages.
 * The resends need a clock and a transport that can lose a message silently; only the member
 * runs them (tests/unit/test_raft_guard.c drives them by hand). All on the raft instance's loop. */
#ifndef CAIRN_GUARD_H
#define CAIRN_GUARD_H

#include <stdbool.h>
#include <stddef.h>

#include <raft.h>

/* What the receiving side remembers between messages. Zero-initialized before the first one. */
struct guard {
    raft_time leader_heard; /* when a message only a leader sends last arrived (r->io's clock) */
    unsigned held_off;      /* InstallSnapshots dropped (see guard_recv) */
};

/* Mends m, a copy of a message r is about to send:
 * - an AppendEntries rejected for an older term leaves without last_log_index set
 *   (src/recv_append_entries.c), and the leader reads it: it is set as libraft's other rejection
 *   path sets it, the sender's last index below the rejected one;
 * - an InstallSnapshot whose snapshot was replaced by a newer one while it loaded carries the
 *   newer index with the older term (legacyLoadSnapshotCb in src/legacy.c), which makes the
 *   follower shut down and crash: the term is set to the one of the snapshot at that index. */
void guard_send(struct raft *r, struct raft_message *m);

/* Looks at msg before r receives it; applied is the member's store index. Returns false when msg
 * is dropped (an InstallSnapshot is freed then): an
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
 * A vote request (or pre-vote) whose candidate's log ends below applied is dropped: every entry
 * up to it is committed, and a candidate without them must not win. Raft's own check compares the
 * candidate's log with the member's, which normally holds every entry the store applied; a log
 * that lost entries (see node.c, check_log_covers_store) does not, and would let such a candidate
 * through.
 *
 * Timeouts: libraft draws a follower's randomized election timeout once, when it becomes a
 * follower, and keeps it for the whole term. The members that drew short timeouts win the
 * elections, so the survivors of a leader's death tend to hold long ones. A new timeout is drawn
 * each time an append arrives (as hashicorp/raft does on every heartbeat), so that after a
 * leader's death each follower waits a fresh draw and the first of them, not a survivor of earlier
 * elections, decides how long the cluster is without a leader. */
bool guard_recv(struct guard *g, struct raft *r, raft_index applied, struct raft_message *msg);

/* Vote requests sent again. libraft's TCP client learns that a peer's connection is dead only
 * when a write to it fails, and the message of that write is lost; the first message written
 * after the peer restarted, over the connection from before, is lost without a failure. A
 * follower sends nothing to peers that do not lead, so after a member restarted, the first vote
 * request another member sends it is lost that way, and the election waits for the next timeout.
 * So a vote request not answered is sent again, up to GUARD_VOTE_RESENDS times, while the
 * election that sent it goes on: the second write finds the connection dead and libraft connects
 * again, the third travels on the new connection. A vote request that arrives twice is answered
 * twice the same way, and a candidate counts each voter once.
 *
 * The caller owns the clock: it calls guard_votes_resend() every few milliseconds (raft/node.c:
 * every 10 ms) for as long as it returns true. */
#define GUARD_VOTE_RESENDS 4

struct guard_vote {
    struct raft_message msg; /* as sent, but server_address: that is in address */
    char address[256];
    unsigned resends;
    bool done; /* answered, sent GUARD_VOTE_RESENDS times again, or its election is over */
};

/* The last vote request sent to each peer. Zero-initialized; guard_votes_close() frees it. */
struct guard_votes {
    struct guard_vote *list;
    size_t n, cap;
};

/* m, a copy of a vote request, leaves now: it replaces the one sent to the same peer before.
 * Returns false when it cannot be remembered (out of memory): it is then not sent again. */
bool guard_vote_sent(struct guard_votes *v, const struct raft_message *m);

/* r received m: an answer to a vote request ends that request's resends. An answer to a pre-vote
 * ends only a pre-vote's, an answer to a vote only a vote's. */
void guard_vote_received(struct guard_votes *v, const struct raft_message *m);

/* Sends again through send(ctx, msg) every vote request of the election r runs now (the same
 * phase, pre-vote or vote, and the same term) that is not answered and not yet sent
 * GUARD_VOTE_RESENDS times again; the others are done. Returns whether any is left to send again
 * at the next call. */
bool guard_votes_resend(struct guard_votes *v, struct raft *r,
                        void (*send)(void *ctx, const struct raft_message *msg), void *ctx);

void guard_votes_close(struct guard_votes *v);

#endif
