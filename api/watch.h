/* api/watch.h — etcd's Watch service (api/watch.c). Internal to api/ and its owner. */
#ifndef CAIRN_API_WATCH_H
#define CAIRN_API_WATCH_H

struct api_server;

/* Registers /etcdserverpb.Watch/Watch. */
void api_watch_register(struct api_server *s);

/* Creates the hub and its timers (progress notifications, leader monitor) on the server's loop. */
int api_watch_start(struct api_server *s);

/* Entries were applied: fans out the new revisions' events to the synced watchers. The proposer's
 * applied hook calls it after every applied entry. */
void api_watch_applied(struct api_server *s);

/* Ends every stream and closes the timers (at shutdown, after the gRPC server's). */
void api_watch_stop(struct api_server *s);

#endif
