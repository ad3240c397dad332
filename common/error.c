/* common/error.c — messages and gRPC codes of cairn's errors. */
#include "common/error.h"

#include <string.h>

struct err_info {
    int grpc_code;
    const char *msg;
};

static const struct err_info infos[] = {
#define CAIRN_X_INFO(name, code, msg) {code, msg},
    CAIRN_ERRORS(CAIRN_X_INFO)
#undef CAIRN_X_INFO
};

static const struct err_info *lookup(int err)
{
    if (err <= CAIRN_E__FIRST || err >= CAIRN_E__LAST)
        return 0;
    return &infos[err - CAIRN_E__FIRST - 1];
}

const char *cairn_strerror(int err)
{
    if (err == CAIRN_OK)
        return "ok";
    const struct err_info *i = lookup(err);
    return i ? i->msg : "cairn: unknown error";
}

int cairn_err_grpc_code(int err)
{
    if (err == CAIRN_OK)
        return 0;
    const struct err_info *i = lookup(err);
    return i ? i->grpc_code : 2;
}

int cairn_err_from_message(const char *msg)
{
    if (!msg)
        return 0;
    for (int err = CAIRN_E__FIRST + 1; err < CAIRN_E__LAST; err++)
        if (!strcmp(lookup(err)->msg, msg))
            return err;
    return 0;
}
