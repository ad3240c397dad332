/* raft/guard.c — see guard.h. */
#include "raft/guard.h"

#include <stdio.h>
#include <stdlib.h>

void guard_send(struct raft *r, struct raft_message *m)
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
static bool leader_silent(const struct guard *g, struct raft *r)
{
    return r->state == RAFT_FOLLOWER && r->follower_state.current_leader.id != 0 &&
           r->io->time(r->io) - g->leader_heard >= r->election_timeout;
}

bool guard_recv(struct guard *g, struct raft *r, raft_index applied, struct raft_message *msg)
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
        if (msg->request_vote.last_log_index < applied)
            return false;
        if (leader_silent(g, r))
            msg->request_vote.disrupt_leader = true;
        break;
    default:
        break;
    }
    return true;
}

bool guard_vote_sent(struct guard_votes *v, const struct raft_message *m)
{
    struct guard_vote *e = NULL;
    for (size_t i = 0; i < v->n && !e; i++)
        if (v->list[i].msg.server_id == m->server_id)
            e = &v->list[i];
    if (!e) {
        if (v->n == v->cap) {
            size_t cap = v->cap ? 2 * v->cap : 8;
            struct guard_vote *list = realloc(v->list, cap * sizeof *list);
            if (!list)
                return false;
            v->list = list;
            v->cap = cap;
        }
        e = &v->list[v->n++];
    }
    e->msg = *m;
    e->msg.server_address = NULL; /* the list moves when it grows: pointed at address when sent */
    snprintf(e->address, sizeof e->address, "%s", m->server_address ? m->server_address : "");
    e->resends = 0;
    e->done = false;
    return true;
}

void guard_vote_received(struct guard_votes *v, const struct raft_message *m)
{
    if (m->type != RAFT_REQUEST_VOTE_RESULT)
        return;
    for (size_t i = 0; i < v->n; i++)
        if (v->list[i].msg.server_id == m->server_id &&
            v->list[i].msg.request_vote.pre_vote == m->request_vote_result.pre_vote)
            v->list[i].done = true;
}

/* Whether m, a vote request r sent, belongs to the election r runs now. */
static bool vote_current(struct raft *r, const struct raft_message *m)
{
    const struct raft_request_vote *rv = &m->request_vote;
    if (r->state != RAFT_CANDIDATE || rv->pre_vote != r->candidate_state.in_pre_vote)
        return false;
    return rv->term == r->current_term + (rv->pre_vote ? 1 : 0);
}

bool guard_votes_resend(struct guard_votes *v, struct raft *r,
                        void (*send)(void *ctx, const struct raft_message *msg), void *ctx)
{
    bool pending = false;
    for (size_t i = 0; i < v->n; i++) {
        struct guard_vote *e = &v->list[i];
        if (e->done || !vote_current(r, &e->msg)) {
            e->done = true;
            continue;
        }
        struct raft_message msg = e->msg; /* send() reads it before it returns (UvSend) */
        msg.server_address = e->address;
        send(ctx, &msg);
        e->done = ++e->resends >= GUARD_VOTE_RESENDS;
        pending |= !e->done;
    }
    return pending;
}

void guard_votes_close(struct guard_votes *v)
{
    free(v->list);
    *v = (struct guard_votes){0};
}
