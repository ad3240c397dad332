/* tests/fuzz/fuzz_watch_decode.c — fuzz target for the client's direct WatchResponse decoder
 * (client/msg.c): any bytes, decoded directly and by protobuf-c. The direct decoder may leave a
 * message to protobuf-c, but what it decodes must be exactly protobuf-c's message, and it must
 * never take bytes protobuf-c refuses. Nothing may crash, leak or read outside the input. Built
 * with libFuzzer by `make fuzz`; `make test` replays the corpus. */
#include <stdint.h>
#include <stdlib.h>

#include "tests/fuzz/watch_decode_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!wd_check(data, size, NULL))
        abort();
    return 0;
}
