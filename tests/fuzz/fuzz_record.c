/* tests/fuzz/fuzz_record.c — fuzz target for the store's record decoders.
 *
 * Records come from the data file, which a crash, a bad disk or a foreign file can fill with
 * anything: decoding must reject what is malformed without reading out of bounds. The first byte
 * picks the decoder; a record that decodes must re-encode to the same bytes. Built with libFuzzer
 * by `make fuzz`; its corpus is replayed by `make test` (tests/fuzz/replay.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t which = data[0];
    data++;
    size--;
    if (which % 3 == 0) {
        struct hist_rec r;
        if (hist_rec_decode(data, size, &r) == 0) {
            size_t n = hist_rec_size(&r);
            uint8_t *buf = malloc(n ? n : 1);
            hist_rec_encode(&r, buf);
            /* varints may have been over-long in the input; compare by decoding again */
            struct hist_rec r2;
            if (hist_rec_decode(buf, n, &r2) != 0 || r2.create != r.create ||
                r2.version != r.version || r2.lease != r.lease || r2.prev_main != r.prev_main ||
                r2.prev_sub != r.prev_sub || r2.key.len != r.key.len ||
                r2.value.len != r.value.len || memcmp(r2.key.data, r.key.data, r.key.len) ||
                (r.value.len && memcmp(r2.value.data, r.value.data, r.value.len)))
                abort();
            free(buf);
        }
    } else if (which % 3 == 1) {
        struct latest_rec r;
        if (latest_rec_decode(data, size, &r) == 0) {
            size_t n = latest_rec_size(&r);
            uint8_t *buf = malloc(n ? n : 1);
            latest_rec_encode(&r, buf);
            struct latest_rec r2;
            if (latest_rec_decode(buf, n, &r2) != 0 || r2.mod_main != r.mod_main ||
                r2.mod_sub != r.mod_sub || r2.create != r.create || r2.version != r.version ||
                r2.lease != r.lease)
                abort();
            free(buf);
        }
    } else {
        int64_t main, sub;
        if (rev_decode(data, size, &main, &sub) == 0) {
            uint8_t buf[REV_KEY_SIZE];
            rev_encode(buf, main, sub);
            if (memcmp(buf, data, REV_KEY_SIZE))
                abort();
        }
    }
    return 0;
}
