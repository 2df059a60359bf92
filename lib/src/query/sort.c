/* query/sort.c — sort keys: a list of fields, each ascending or
 * descending, turned into one byte string per trial whose memcmp order is
 * MongoDB's order of the fields' values (query/field.c). */
#include "query/sort.h"

#include "query/filter.h"
#include "store/record.h"
#include "util/error.h"

#include <stdio.h>
#include <string.h>

struct xp_sort {
    int n;
    xp_field fields[XP_SORT_KEYS_MAX];
    bool descending[XP_SORT_KEYS_MAX];
};

void xp__sort_destroy(xp_sort **sp)
{
    if (!sp || !*sp)
        return;
    for (int i = 0; i < (*sp)->n; i++)
        xp__field_clear(&(*sp)->fields[i]);
    bson_free(*sp);
    *sp = NULL;
}

int xp__sort_by_trial_id(const xp_sort *s)
{
    if (s->n != 1 || strcmp(s->fields[0].path, XP_RECORD_TRIAL_ID) != 0)
        return 0;
    return s->descending[0] ? -1 : 1;
}

static int s_fail(xp_error_t *err, const char *text, size_t at,
                  const char *what)
{
    int col = 1;
    for (size_t i = 0; i < at; i++)
        col += ((unsigned char)text[i] & 0xc0) != 0x80;
    return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL, "sort: column %d: %s",
                     col, what);
}

static size_t s_skip_blanks(const char *text, size_t i)
{
    while (text[i] == ' ' || text[i] == '\t')
        i++;
    return i;
}

/* One key at text[*i]: [-+] name. */
static int s_parse_key(xp_sort *s, const char *text, size_t *i, xp_error_t *err)
{
    size_t at = s_skip_blanks(text, *i);
    bool descending = text[at] == '-';
    if (text[at] == '-' || text[at] == '+')
        at++;
    size_t bad, len = xp__field_name_len(text + at, strlen(text + at), &bad);
    if (len == 0)
        return s_fail(err, text, at, "expected a field name");
    if (bad != SIZE_MAX)
        return s_fail(err, text, at + bad + 1, "expected a name after '.'");
    if (s->n == XP_SORT_KEYS_MAX)
        return s_fail(err, text, at, "more than 32 sort keys");
    const char *why = xp__field_init(&s->fields[s->n], text + at, len);
    if (why)
        return s_fail(err, text, at, why);
    s->descending[s->n++] = descending;
    *i = s_skip_blanks(text, at + len);
    return 0;
}

int xp__sort_parse(xp_sort **out, const char *text, xp_error_t *err)
{
    *out = NULL;
    if (!text || text[strspn(text, " \t")] == '\0')
        return 0;
    if (strnlen(text, XP_FILTER_TEXT_MAX + 1) > XP_FILTER_TEXT_MAX)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "sort: longer than %d bytes", XP_FILTER_TEXT_MAX);
    xp_sort *s = bson_malloc0(sizeof *s);
    size_t i = 0;
    for (;;) {
        if (s_parse_key(s, text, &i, err) != 0)
            goto fail;
        if (text[i] == '\0')
            break;
        if (text[i] != ',') {
            char what[64];
            unsigned char c = (unsigned char)text[i];
            if (c >= 0x20 && c < 0x7f)
                snprintf(what, sizeof what,
                         "expected ',' between keys, "
                         "found '%c'",
                         c);
            else
                snprintf(what, sizeof what,
                         "expected ',' between keys, found byte 0x%02x", c);
            s_fail(err, text, i, what);
            goto fail;
        }
        i++;
    }
    *out = s;
    return 0;
fail:
    xp__sort_destroy(&s);
    return -1;
}

int xp__sort_keys(const xp_sort *s)
{
    return s ? s->n : 0;
}

const xp_field *xp__sort_field(const xp_sort *s, int i)
{
    return &s->fields[i];
}

bool xp__sort_descending(const xp_sort *s, int i)
{
    return s->descending[i];
}

void xp__sort_key(const xp_sort *s, const bson_t *doc, xp_bytes *out)
{
    for (int i = 0; s && i < s->n; i++) {
        bson_iter_t it;
        bool found = xp__field_find(&s->fields[i], doc, &it);
        xp__field_key(found ? &it : NULL, s->descending[i], out);
    }
}

uint32_t *xp__sort_plan(const xp_sort *s, xp_field_plan *plan)
{
    if (!s)
        return NULL;
    uint32_t *slots = bson_malloc((size_t)s->n * sizeof *slots);
    for (int i = 0; i < s->n; i++)
        slots[i] = xp__field_plan_add(plan, &s->fields[i]);
    return slots;
}

void xp__sort_key_found(const xp_sort *s, const xp_field_plan *plan,
                        const uint32_t *slots, xp_bytes *out)
{
    for (int i = 0; s && i < s->n; i++)
        xp__field_key(xp__field_plan_value(plan, slots[i]), s->descending[i],
                      out);
}

void xp__sort_mongo(const xp_sort *s, bson_t *out)
{
    for (int i = 0; s && i < s->n; i++) {
        bool seen = false;
        for (int j = 0; j < i && !seen; j++)
            seen = strcmp(s->fields[i].path, s->fields[j].path) == 0;
        if (!seen)
            BSON_APPEND_INT32(out, s->fields[i].path,
                              s->descending[i] ? -1 : 1);
    }
}
