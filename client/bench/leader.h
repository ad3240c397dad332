/* client/bench/leader.h — --target-leader: find the endpoint of the cluster's leader before the
 * run, so that every connection goes there.
 *
 * Each endpoint is asked for its Status in turn; the first whose own member ID (in the response
 * header) is the leader it reports is the leader's endpoint. When no given endpoint is the
 * leader, the leader's client URLs come from MemberList (etcd's benchmark takes them from there
 * always). Blocking: runs before the run's loop, on the client library's private loop. */
#ifndef CAIRN_CLIENT_BENCH_LEADER_H
#define CAIRN_CLIENT_BENCH_LEADER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Finds the leader among endpoints (n ≥ 1), each attempt bounded by dial_timeout_ms (0: the
 * library's default) and each call by a few seconds. Returns 0 with *out: a malloc'd array of
 * *n_out malloc'd endpoint strings (free each and the array); or -1 after writing why to err. */
int bench_find_leader(char *const *endpoints, size_t n, uint64_t dial_timeout_ms, char ***out,
                      size_t *n_out, FILE *err);

#endif
