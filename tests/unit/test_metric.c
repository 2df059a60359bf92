/* test_metric.c — the metric chunk encodings: compact chunks round-trip
 * every epoch and value bit for bit, raw chunks (stores written before
 * the compact encoding) still decode, and damaged bytes are refused. */
#include "store/metric.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

TestSuite(metric);

/* Encodes n points compactly, decodes them and checks every bit. */
static size_t s_round_trip(const int64_t *epochs, const double *values,
                           size_t n)
{
    xp_metric_chunk c = {"m", 0, epochs, values, n};
    size_t len;
    uint8_t *data = xp__metric_chunk_encode_new(&c, &len);
    cr_assert_neq(len % 16, 0, "compact chunk of %zu bytes", len);
    xp_metric_points p = {0};
    xp_error_t err = {0};
    cr_assert_eq(xp__metric_chunk_decode(data, len, &p, &err), 0, "%s",
                 err.message);
    cr_assert_eq(p.n, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(p.epochs[i], epochs[i], "epoch %zu", i);
        cr_assert_eq(memcmp(&p.values[i], &values[i], 8), 0, "value %zu", i);
    }
    xp__metric_points_clear(&p);
    bson_free(data);
    return len;
}

Test(metric, consecutive_epochs_cost_one_byte_and_values_eight)
{
    int64_t e[100];
    double v[100];
    for (int i = 0; i < 100; i++) {
        e[i] = i;
        v[i] = 100 - i * 0.37;
    }
    /* Tag, n (1 byte), 100 epochs, 800 bytes of values. */
    cr_assert_eq(s_round_trip(e, v, 100), 902);
}

Test(metric, extreme_epochs_and_values_round_trip)
{
    int64_t e[] = {INT64_MIN, INT64_MAX, 0, -1, INT64_MIN, 5, 5, -7, INT64_MAX};
    double v[] = {NAN, INFINITY, -INFINITY, -0.0, 5e-324, 1e308, 0, 1, -1};
    s_round_trip(e, v, 9);
    s_round_trip(e, v, 1);
    s_round_trip(NULL, NULL, 0);
}

Test(metric, lengths_that_are_multiples_of_16_get_a_pad_byte)
{
    /* 2 + 9·14 = 128: one pad byte makes it 129. */
    int64_t e[14];
    double v[14];
    for (int i = 0; i < 14; i++) {
        e[i] = i;
        v[i] = i;
    }
    cr_assert_eq(s_round_trip(e, v, 14), 129);
}

Test(metric, raw_chunks_of_old_stores_still_decode)
{
    /* Raw encoding of epochs 0, 1, 2 and values 0.5, 1.0, 1.5, as stores
     * before the compact encoding wrote it. */
    static const uint8_t old[48] = {
        0, 0, 0, 0, 0, 0, 0,    0,    1, 0, 0, 0, 0, 0, 0,    0,
        2, 0, 0, 0, 0, 0, 0,    0,    0, 0, 0, 0, 0, 0, 0xe0, 0x3f,
        0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f};
    xp_metric_points p = {0};
    xp_error_t err = {0};
    cr_assert_eq(xp__metric_chunk_decode(old, sizeof old, &p, &err), 0, "%s",
                 err.message);
    cr_assert_eq(p.n, 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(p.epochs[i], i);
        cr_assert_eq(p.values[i], 0.5 * (i + 1));
    }
    xp__metric_points_clear(&p);
}

/* Decoding must fail with XP_ECORRUPT and leave p empty. */
static void s_refused(const uint8_t *data, size_t len)
{
    xp_metric_points p = {0};
    xp_error_t err = {0};
    cr_assert_eq(xp__metric_chunk_decode(data, len, &p, &err), -1);
    cr_assert_eq(err.code, XP_ECORRUPT);
    cr_assert_eq(p.n, 0);
    xp__metric_points_clear(&p);
}

Test(metric, damaged_compact_chunks_are_refused)
{
    int64_t e[] = {0, 1, 2};
    double v[] = {0.5, 1, 1.5};
    xp_metric_chunk c = {"m", 0, e, v, 3};
    size_t len;
    uint8_t *data = xp__metric_chunk_encode_new(&c, &len);
    uint8_t buf[64];
    memcpy(buf, data, len);
    s_refused(buf, len - 1); /* truncated */
    buf[len] = 0;
    s_refused(buf, len + 1); /* a byte too many */
    buf[0] = 2;
    s_refused(buf, len); /* unknown tag */
    buf[0] = 1;
    buf[1] = 200; /* more points than bytes */
    s_refused(buf, len);
    /* n as an overlong varint (0x83 0x00 is 3): not the shortest form. */
    static const uint8_t overlong[] = {1, 0x83, 0, 0, 2, 2, 0, 0, 0, 0,
                                       0, 0,    0, 0, 0, 0, 0, 0, 0, 0,
                                       0, 0,    0, 0, 0, 0, 0, 0, 0, 0};
    s_refused(overlong, sizeof overlong);
    /* An eleven-byte epoch varint. */
    static const uint8_t too_long[] = {1,    1,    0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xff, 0x01, 0,    0,
                                       0,    0,    0,    0,    0,    0,    0};
    s_refused(too_long, sizeof too_long);
    bson_free(data);
}

Test(metric, a_missing_or_nonzero_pad_byte_is_refused)
{
    int64_t e[14];
    double v[14];
    for (int i = 0; i < 14; i++) {
        e[i] = i;
        v[i] = i;
    }
    xp_metric_chunk c = {"m", 0, e, v, 14};
    size_t len;
    uint8_t *data = xp__metric_chunk_encode_new(&c, &len);
    cr_assert_eq(len, 129);
    data[128] = 1;
    s_refused(data, 129);
    /* Without the pad the length is 128, a raw chunk of 8 points: that
     * decodes, as whatever those bytes say, and that is the contract. */
    bson_free(data);
}

Test(metric, fit_counts_the_points_whose_encoding_fits)
{
    int64_t e[300];
    double v[300];
    for (int i = 0; i < 300; i++) {
        e[i] = i;
        v[i] = i;
    }
    xp_metric_chunk c = {"m", 0, e, v, 300};
    /* k points: 1 + varint(k) + 9·k bytes (+1 when a multiple of 16). */
    cr_assert_eq(xp__metric_chunk_fit(&c, 902), 100);
    cr_assert_eq(xp__metric_chunk_fit(&c, 901), 99);
    cr_assert_eq(xp__metric_chunk_fit(&c, 1), 1);
    cr_assert_eq(xp__metric_chunk_fit(&c, 100000), 300);
    c.n = 0;
    cr_assert_eq(xp__metric_chunk_fit(&c, 100), 0);
    c.n = 14;
    cr_assert_eq(xp__metric_chunk_fit(&c, 128), 13); /* 14 needs the pad */
    cr_assert_eq(xp__metric_chunk_fit(&c, 129), 14);
}
