/* client/ctl/alarm.c — `alarm list` and `alarm disarm`: Maintenance.Alarm
 * (ctlv3/command/alarm_command.go). disarm does what clientv3's AlarmDisarm does for "every
 * alarm": list them, deactivate each, and print the alarms the deactivations answered. */
#include <stdlib.h>

#include "client/ctl/printer.h"

static int alarm_call(const struct ctl *ctl, struct cl_sync *s, struct cl_call *call,
                      Etcdserverpb__AlarmRequest__AlarmAction action, uint64_t member,
                      Etcdserverpb__AlarmType type)
{
    Etcdserverpb__AlarmRequest req = ETCDSERVERPB__ALARM_REQUEST__INIT;
    req.action = action;
    req.memberid = member;
    req.alarm = type;
    return ctl_call(ctl, s, call, &cl_method_alarm, &req.base);
}

static int run_alarm_list(struct ctl *ctl)
{
    if (ctl->n_args != 0)
        return ctl_fail(CTL_EXIT_BAD_ARGS, "alarm list command accepts no arguments");
    int code = 0;
    struct cl_sync *s = ctl_client(ctl, &code);
    if (!s)
        return code;
    struct cl_call call = {0};
    if (alarm_call(ctl, s, &call, ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__GET, 0,
                   ETCDSERVERPB__ALARM_TYPE__NONE) != GRPC_OK)
        code = ctl_fail_call(&call);
    else
        code = CTL_PRINT(ctl, alarm, (const Etcdserverpb__AlarmResponse *)call.response);
    cl_call_reset(&call);
    return code;
}

static int run_alarm_disarm(struct ctl *ctl)
{
    if (ctl->n_args != 0)
        return ctl_fail(CTL_EXIT_BAD_ARGS, "alarm disarm command accepts no arguments");
    int code = 0;
    struct cl_sync *s = ctl_client(ctl, &code);
    if (!s)
        return code;
    struct cl_call list = {0};
    if (alarm_call(ctl, s, &list, ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__GET, 0,
                   ETCDSERVERPB__ALARM_TYPE__NONE) != GRPC_OK) {
        code = ctl_fail_call(&list);
        cl_call_reset(&list);
        return code;
    }
    const Etcdserverpb__AlarmResponse *l = (const void *)list.response;
    size_t n = l->n_alarms;
    struct cl_call *calls = calloc(n ? n : 1, sizeof *calls);
    Etcdserverpb__AlarmMember **out = NULL;
    size_t n_out = 0;
    if (!calls) {
        cl_call_reset(&list);
        return ctl_fail(CTL_EXIT_ERROR, "out of memory");
    }
    for (size_t i = 0; i < n && !code; i++) {
        if (alarm_call(ctl, s, &calls[i], ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__DEACTIVATE,
                       l->alarms[i]->memberid, l->alarms[i]->alarm) != GRPC_OK) {
            code = ctl_fail_call(&calls[i]);
            break;
        }
        const Etcdserverpb__AlarmResponse *d = (const void *)calls[i].response;
        Etcdserverpb__AlarmMember **o = realloc(out, (n_out + d->n_alarms + 1) * sizeof *o);
        if (!o) {
            code = ctl_fail(CTL_EXIT_ERROR, "out of memory");
            break;
        }
        out = o;
        for (size_t j = 0; j < d->n_alarms; j++)
            out[n_out++] = d->alarms[j];
    }
    if (!code) {
        Etcdserverpb__AlarmResponse resp = ETCDSERVERPB__ALARM_RESPONSE__INIT;
        resp.alarms = out;
        resp.n_alarms = n_out;
        code = CTL_PRINT(ctl, alarm, &resp);
    }
    free(out);
    for (size_t i = 0; i < n; i++)
        cl_call_reset(&calls[i]);
    free(calls);
    cl_call_reset(&list);
    return code;
}

static const struct ctl_command cmd_alarm_disarm = {
    .name = "disarm",
    .use = "",
    .summary = "Deactivates every alarm",
    .run = run_alarm_disarm,
};

static const struct ctl_command cmd_alarm_list = {
    .name = "list",
    .use = "",
    .summary = "Lists the raised alarms",
    .run = run_alarm_list,
};

static const struct ctl_command *const alarm_subs[] = {&cmd_alarm_disarm, &cmd_alarm_list};

const struct ctl_command ctl_cmd_alarm = {
    .name = "alarm",
    .use = "<subcommand>",
    .summary = "Commands about alarms",
    .subs = alarm_subs,
    .n_subs = sizeof alarm_subs / sizeof alarm_subs[0],
};
