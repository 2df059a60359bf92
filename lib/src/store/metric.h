/* store/metric.h — metric points: the buffer a trial (or a worker's step)
 * fills per metric name, cut into chunks of XP_METRIC_CHUNK_POINTS, and
 * the encodings of a chunk: the compact one the local store writes (a tag byte,
 * varint epoch deltas, raw doubles: about 9 bytes a point) and the raw
 * one (n little-endian int64 epochs, then n little-endian IEEE-754
 * doubles, 16·n bytes) that the spool and the wire messages carry as two
 * columns and that stores written before the compact one hold. */
#ifndef XP_STORE_METRIC_H
#define XP_STORE_METRIC_H

#include "xp/xp.h"

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Points per stored chunk: a chunk that fills is written during the
 * trial, so a long metric never sits in memory whole. */
#define XP_METRIC_CHUNK_POINTS 8192

/* Whole chunks of one metric a trial keeps in memory while its store
 * cannot take them (they are written with a later chunk or the finish);
 * one more fails the trial. */
#define XP_METRIC_HELD_CHUNKS 4

/* Points in the order saved. */
typedef struct {
    int64_t *epochs;
    double *values;
    size_t n, cap;
} xp_metric_points;

/* Appends one point; -1 when out of memory. */
int xp__metric_points_add(xp_metric_points *p, int64_t epoch, double value);
/* Frees the arrays; p is empty afterwards. */
void xp__metric_points_clear(xp_metric_points *p);

/* One chunk of one metric, a view into a buffer (valid while it lives). */
typedef struct {
    const char *name;
    int64_t chunk; /* sequence number of the chunk within its metric */
    const int64_t *epochs;
    const double *values;
    size_t n;
} xp_metric_chunk;

/* ---------------------------------------------------------------- codec */

/* Bytes of the raw encoding of n points (16·n). */
size_t xp__metric_chunk_bytes(size_t n);
/* Writes the raw encoding of n points into out[xp__metric_chunk_bytes(n)]:
 * the epochs are its first half, the values its second. */
void xp__metric_chunk_encode(const int64_t *epochs, const double *values,
                             size_t n, uint8_t *out);
/* The raw encoding of c, allocated (caller frees with bson_free; one
 * byte when c has no points); *len its size. The Redis backend stores
 * this one: docs/schema.md documents it for readers outside xp. */
uint8_t *xp__metric_chunk_raw_new(const xp_metric_chunk *c, size_t *len);
/* The compact encoding of c, allocated (caller frees with bson_free); *len
 * its size, never a multiple of 16: byte 0x01, the number of points as
 * an unsigned LEB128 varint, each epoch's difference from the previous
 * one (the first from 0, modulo 2^64) zigzag-mapped as a varint (epochs
 * that step by one cost a byte), the n values as little-endian doubles,
 * then one zero byte if the length would otherwise be a multiple of 16. */
uint8_t *xp__metric_chunk_encode_new(const xp_metric_chunk *c, size_t *len);
/* How many of c's first points have a compact encoding of at most
 * max_bytes (at least one when c has any: a point never splits). */
size_t xp__metric_chunk_fit(const xp_metric_chunk *c, size_t max_bytes);
/* Appends the points of an encoded chunk of len bytes to p: the raw
 * encoding when len is a multiple of 16, else the compact one.
 * XP_ECORRUPT when the bytes are not exactly one chunk (every varint in
 * its shortest form, so each chunk has one encoding). */
int xp__metric_chunk_decode(const uint8_t *data, size_t len,
                            xp_metric_points *p, xp_error_t *err);
/* The same with the two halves held apart (as the spool and the wire
 * messages carry them): XP_ECORRUPT unless both hold the same whole
 * number of points. */
int xp__metric_columns_decode(const uint8_t *epochs, size_t epochs_len,
                              const uint8_t *values, size_t values_len,
                              xp_metric_points *p, xp_error_t *err);

/* The two-column form as BSON (the spool's and RESULT's layout): appends
 * to doc the binaries "epochs" and "values", the halves of c's encoding. */
void xp__metric_columns_append(bson_t *doc, const xp_metric_chunk *c);
/* Appends to p the points of doc's "epochs" and "values" binaries;
 * XP_ECORRUPT when one is missing or they do not hold the same whole
 * number of points. */
int xp__metric_columns_read(const bson_t *doc, xp_metric_points *p,
                            xp_error_t *err);

/* ---------------------------------------------------------------- buffer */

/* The points of one metric not stored yet; points[0] starts chunk
 * first_chunk. */
typedef struct {
    char *name;
    xp_metric_points points;
    int64_t first_chunk;
} xp_metric_buf;

/* The metrics saved by one trial or step, by name. */
typedef struct {
    xp_metric_buf *items;
    size_t n, cap;
    size_t points; /* points added since the set was cleared */
} xp_metric_set;

/* Adds (epoch, value) to metric name, creating its buffer; the buffer,
 * or NULL when out of memory (the set is unchanged then). */
xp_metric_buf *xp__metric_set_add(xp_metric_set *s, const char *name,
                                  int64_t epoch, double value);
/* Frees every buffer; s is empty afterwards. */
void xp__metric_set_clear(xp_metric_set *s);
/* Whole chunks buffered in m. */
size_t xp__metric_buf_full_chunks(const xp_metric_buf *m);
/* Appends to *out (growing it; caller frees with bson_free) views of the
 * chunks of m: its whole chunks, and with partial also the last,
 * unfilled one. Returns the number appended. */
size_t xp__metric_buf_chunks(const xp_metric_buf *m, bool partial,
                             xp_metric_chunk **out, size_t *n);
/* The chunks of every metric of s, as xp__metric_buf_chunks. */
size_t xp__metric_set_chunks(const xp_metric_set *s, bool partial,
                             xp_metric_chunk **out, size_t *n);
/* Forgets the first k chunks of m (stored): their points go, the next
 * chunk number moves on. */
void xp__metric_buf_consume(xp_metric_buf *m, size_t k);

#endif /* XP_STORE_METRIC_H */
