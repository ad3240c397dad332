/* raft/guard.c — see guard.h. */
#include "raft/guard.h"

void raft_guard_send(struct raft *r, struct raft_message *m)
{
    if (m->type == RAFT_APPEND_ENTRIES_RESULT && m->append_entries_result.rejected > 0) {
        raft_index last = raft_last_index(r);
        raft_index rejected = m->append_entries_result.rejected;
        m->append_entries_result.last_log_index = last < rejected ? last : rejected - 1;
    } else if (m->type == RAFT_INSTALL_SNAPSHOT &&
               m->install_snapshot.last_index == r->trail.snapshot.index) {
        m->install_snapshot.last_term = r->trail.snapshot.term;
    }
}

/* Whether r believes in a leader it has not heard from for an election timeout. */
static bool leader_silent(const struct raft_guard *g, struct raft *r)
{
    return r->state == RAFT_FOLLOWER && r->follower_state.current_leader.id != 0 &&
           r->io->time(r->io) - g->leader_heard >= r->election_timeout;
}

bool raft_guard_recv(struct raft_guard *g, struct raft *r, struct raft_message *msg)
{
    switch (msg->type) {
    case RAFT_INSTALL_SNAPSHOT:
        if (r->legacy.snapshot_taking) {
            g->held_off++;
            raft_configuration_close(&msg->install_snapshot.conf);
            raft_free(msg->install_snapshot.data.base);
            return false;
        }
        g->leader_heard = r->io->time(r->io);
        break;
    case RAFT_APPEND_ENTRIES:
        /* drawn as libraft draws it (raft_set_election_timeout() would redraw too, but it also
         * triples timeouts of exactly 150/15 ms, a workaround of libraft's for dqlite's tests) */
        if (r->state == RAFT_FOLLOWER)
            r->follower_state.randomized_election_timeout =
                raft_random(&r->random, r->election_timeout, 2 * r->election_timeout);
        g->leader_heard = r->io->time(r->io);
        break;
    case RAFT_TIMEOUT_NOW:
        g->leader_heard = r->io->time(r->io);
        break;
    case RAFT_REQUEST_VOTE:
        if (leader_silent(g, r))
            msg->request_vote.disrupt_leader = true;
        break;
    default:
        break;
    }
    return true;
}
