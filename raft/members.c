/* raft/members.c — the member table: records, publishing, membership changes. */
#include "raft/members.h"

#include <stdlib.h>
#include <string.h>

int members_load(store_tx *tx, ProtobufCAllocator *a, Cairn__MemberRecord ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct arena scratch = {0};
    struct store_member *list;
    size_t count;
    int err = store_member_list(tx, &scratch, &list, &count);
    Cairn__MemberRecord **recs = NULL;
    if (!err && count) {
        recs = a ? a->alloc(a->allocator_data, count * sizeof *recs) : malloc(count * sizeof *recs);
        if (!recs)
            err = CAIRN_E_NOMEM;
    }
    size_t got = 0;
    for (size_t i = 0; !err && i < count; i++) {
        Cairn__MemberRecord *r =
            cairn__member_record__unpack(a, list[i].data.len, list[i].data.data);
        if (!r || !r->member || r->member->id != list[i].id) {
            if (r)
                cairn__member_record__free_unpacked(r, a);
            err = CAIRN_E_CORRUPT;
            break;
        }
        recs[got++] = r;
    }
    arena_free(&scratch);
    if (err) {
        if (!a) {
            members_free(recs, got);
        }
        return err;
    }
    *out = recs;
    *n = got;
    return 0;
}

int members_load_view(store *st, Cairn__MemberRecord ***out, size_t *n)
{
    store_tx *tx;
    *out = NULL;
    *n = 0;
    int err = store_tx_begin_view(st, &tx);
    if (err)
        return err;
    err = members_load(tx, NULL, out, n);
    store_tx_end(tx);
    return err;
}

void members_free(Cairn__MemberRecord **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cairn__member_record__free_unpacked(list[i], NULL);
    free(list);
}

int members_put(store_tx *tx, const Cairn__MemberRecord *rec, struct arena *arena)
{
    size_t len = cairn__member_record__get_packed_size(rec);
    uint8_t *buf = arena_alloc(arena, len ? len : 1);
    if (!buf)
        return CAIRN_E_NOMEM;
    cairn__member_record__pack(rec, buf);
    return store_member_put(tx, rec->member->id, (store_bytes){buf, len});
}

static Cairn__MemberRecord *find(Cairn__MemberRecord **list, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (list[i]->member->id == id)
            return list[i];
    return NULL;
}

/* Whether a member other than id (and not removed) has one of urls. */
static bool urls_taken(Cairn__MemberRecord **list, size_t n, uint64_t id, char **urls,
                       size_t n_urls)
{
    for (size_t i = 0; i < n; i++) {
        const Etcdserverpb__Member *m = list[i]->member;
        if (m->id == id || list[i]->removed)
            continue;
        for (size_t j = 0; j < m->n_peerurls; j++)
            for (size_t k = 0; k < n_urls; k++)
                if (!strcmp(m->peerurls[j], urls[k]))
                    return true;
    }
    return false;
}

#define MAX_LEARNERS 1 /* etcd 3.4's maxLearners */

static size_t learners(Cairn__MemberRecord **list, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += !list[i]->removed && list[i]->member->islearner;
    return k;
}

int members_apply_publish(store_tx *tx, const Cairn__MemberPublish *p, struct arena *arena)
{
    if (!p->self)
        return CAIRN_E_INVALID_ARGUMENT;
    Cairn__MemberRecord **list;
    size_t n;
    int err = members_load(tx, NULL, &list, &n);
    if (err)
        return err;
    for (size_t i = 0; !err && i < p->n_initial; i++) {
        if (find(list, n, p->initial[i]->id) || p->initial[i]->id == p->self->id)
            continue;
        Etcdserverpb__Member member = *p->initial[i];
        member.n_clienturls = 0; /* not known until it publishes */
        member.islearner = false;
        Cairn__MemberRecord rec = CAIRN__MEMBER_RECORD__INIT;
        rec.member = &member;
        err = members_put(tx, &rec, arena);
    }
    Cairn__MemberRecord *old = find(list, n, p->self->id);
    if (!err && !(old && old->removed)) { /* a removed member stays removed */
        Etcdserverpb__Member member = *p->self;
        member.islearner = old ? old->member->islearner : false;
        Cairn__MemberRecord rec = CAIRN__MEMBER_RECORD__INIT;
        rec.member = &member;
        err = members_put(tx, &rec, arena);
    }
    members_free(list, n);
    return err;
}

int members_apply_change(store_tx *tx, const Cairn__MemberChange *c, struct arena *arena)
{
    Cairn__MemberRecord **list;
    size_t n;
    int err = members_load(tx, NULL, &list, &n);
    if (err)
        return err;
    Cairn__MemberRecord *old = find(list, n, c->id);
    bool live = old && !old->removed;
    Etcdserverpb__Member member = ETCDSERVERPB__MEMBER__INIT;
    Cairn__MemberRecord rec = CAIRN__MEMBER_RECORD__INIT;
    rec.member = &member;
    if (live)
        member = *old->member;
    switch (c->op) {
    case CAIRN__MEMBER_CHANGE__OP__ADD:
        /* etcd's order: ID, then peer URLs, then the learner limit; a live member with the same
         * peer URLs has the same ID here (it comes from them), so the URLs are checked first to
         * answer what etcd answers */
        if (urls_taken(list, n, 0, c->peer_urls, c->n_peer_urls))
            err = CAIRN_E_PEER_URL_EXIST;
        else if (old) /* removed: an ID is never used again */
            err = CAIRN_E_MEMBER_EXIST;
        else if (c->is_learner && learners(list, n) >= MAX_LEARNERS)
            err = CAIRN_E_TOO_MANY_LEARNERS;
        member.id = c->id;
        member.n_peerurls = c->n_peer_urls;
        member.peerurls = c->peer_urls;
        member.islearner = c->is_learner;
        break;
    case CAIRN__MEMBER_CHANGE__OP__REMOVE:
        if (!live)
            err = CAIRN_E_MEMBER_NOT_FOUND;
        rec.removed = true;
        break;
    case CAIRN__MEMBER_CHANGE__OP__UPDATE:
        if (!live)
            err = CAIRN_E_MEMBER_NOT_FOUND;
        else if (urls_taken(list, n, c->id, c->peer_urls, c->n_peer_urls))
            err = CAIRN_E_PEER_URL_EXIST;
        member.n_peerurls = c->n_peer_urls;
        member.peerurls = c->peer_urls;
        break;
    case CAIRN__MEMBER_CHANGE__OP__PROMOTE:
        if (!live)
            err = CAIRN_E_MEMBER_NOT_FOUND;
        else if (!member.islearner)
            err = CAIRN_E_MEMBER_NOT_LEARNER;
        member.islearner = false;
        break;
    default:
        err = CAIRN_E_INVALID_ARGUMENT;
        break;
    }
    if (!err)
        err = members_put(tx, &rec, arena);
    members_free(list, n);
    return err;
}
