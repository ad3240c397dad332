/* raft/local.h — the proposer of a single member without replication.
 *
 * Requests proposed during one turn of the event loop are applied together in one store write
 * transaction, made durable with one synced commit, and only then answered (group commit). Each
 * request takes the next log index, recorded as the store's consistent index in the same commit.
 * Compactions are carried out in bounded steps on later turns of the loop. */
#ifndef CAIRN_RAFT_LOCAL_H
#define CAIRN_RAFT_LOCAL_H

#include <uv.h>

#include "raft/proposer.h"
#include "store/store.h"

struct local_proposer {
    struct proposer base; /* propose/term/applied_index */
    uv_loop_t *loop;
    store *st;
    uv_check_t check;             /* applies the turn's proposals after the loop polled for I/O */
    uv_idle_t idle;               /* keeps the loop turning while compaction steps remain */
    struct proposal *head, *tail; /* proposals waiting for the next batch */
    struct proposal *physical;    /* compactions waiting for the physical removal to finish */
    uint64_t index;               /* last applied index */
    bool compacting;              /* compaction steps remain */
    bool closing;
    int handles_open; /* handles not yet closed */
    void (*on_closed)(struct local_proposer *lp);
};

/* Initializes on loop over st (which must outlive it). The applied index starts at the store's
 * consistent index. */
int local_proposer_init(struct local_proposer *lp, uv_loop_t *loop, store *st);

/* Applies what is still queued (answering those proposals), answers compactions waiting for their
 * physical removal, and closes the handles; done runs once they are closed. */
void local_proposer_close(struct local_proposer *lp, void (*done)(struct local_proposer *lp));

#endif
