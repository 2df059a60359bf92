/* query/filter.c — the filter language: a tokenizer and a recursive-descent
 * parser with bounded depth compile the text into a flat tree (nodes,
 * literals, fields), which one evaluator runs over stored trial documents
 * and one translator turns into a MongoDB query document. */
#include "query/filter.h"

#include "query/field.h"
#include "util/error.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- the tree */

typedef enum { N_OR, N_AND, N_NOT, N_CMP, N_IN } s_node_kind;
typedef enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE } s_op;

typedef struct {
    s_node_kind kind;
    s_op op;        /* N_CMP */
    bool negated;   /* N_IN: `not in` */
    uint32_t field; /* N_CMP, N_IN: index in fields */
    /* N_OR, N_AND: kids[first..first+count); N_NOT: nodes[first];
     * N_CMP: lits[first]; N_IN: lits[first..first+count) */
    uint32_t first, count;
} s_node;

struct xp_filter {
    s_node *nodes;
    size_t n_nodes, cap_nodes;
    uint32_t *kids;
    size_t n_kids, cap_kids;
    xp_literal *lits;
    size_t n_lits, cap_lits;
    xp_field *fields;
    size_t n_fields, cap_fields;
    uint32_t root;
};

#define S_NONE UINT32_MAX

/* Grows array *p of *cap elements of size to hold n + 1. */
static void s_grow(void **p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return;
    *cap = *cap ? *cap * 2 : 16;
    *p = bson_realloc(*p, *cap * size);
}

static uint32_t s_add_node(xp_filter *f, s_node n)
{
    s_grow((void **)&f->nodes, &f->cap_nodes, f->n_nodes, sizeof n);
    f->nodes[f->n_nodes] = n;
    return (uint32_t)f->n_nodes++;
}

static uint32_t s_add_lit(xp_filter *f, xp_literal lit)
{
    s_grow((void **)&f->lits, &f->cap_lits, f->n_lits, sizeof lit);
    f->lits[f->n_lits] = lit;
    return (uint32_t)f->n_lits++;
}

void xp__filter_destroy(xp_filter **fp)
{
    if (!fp || !*fp)
        return;
    xp_filter *f = *fp;
    for (size_t i = 0; i < f->n_lits; i++)
        bson_free(f->lits[i].s);
    for (size_t i = 0; i < f->n_fields; i++)
        xp__field_clear(&f->fields[i]);
    bson_free(f->nodes);
    bson_free(f->kids);
    bson_free(f->lits);
    bson_free(f->fields);
    bson_free(f);
    *fp = NULL;
}

/* ---------------------------------------------------------------- tokens */

typedef enum {
    T_END,
    T_NAME,
    T_INT,
    T_DOUBLE,
    T_STRING,
    T_OP,
    T_LPAREN,
    T_RPAREN,
    T_LBRACKET,
    T_RBRACKET,
    T_COMMA,
    T_AND,
    T_OR,
    T_NOT,
    T_IN,
    T_TRUE,
    T_FALSE,
    T_NULL,
} s_tok_kind;

typedef struct {
    s_tok_kind kind;
    size_t at, len; /* bytes of the text */
    s_op op;
    int64_t i;
    double d;
} s_token;

typedef struct {
    const char *text;
    size_t len, pos;
    s_token tok;
    xp_bytes str; /* the decoded string of a T_STRING token */
    xp_filter *f;
    xp_error_t *err;
    bool failed;
    int depth;
} s_parser;

/* 1-based column of byte offset at: characters before it, plus one (the
 * text is UTF-8, checked first). */
static int s_column(const s_parser *p, size_t at)
{
    int col = 1;
    for (size_t i = 0; i < at && i < p->len; i++)
        col += ((unsigned char)p->text[i] & 0xc0) != 0x80;
    return col;
}

static int s_fail(s_parser *p, size_t at, const char *fmt, ...) XP_PRINTF(3, 4);
static int s_fail(s_parser *p, size_t at, const char *fmt, ...)
{
    if (p->failed)
        return -1;
    p->failed = true;
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return xp__error(p->err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                     "filter: column %d: %s", s_column(p, at), what);
}

/* Text s[0..n) shown in a message: at most 32 bytes, bytes outside
 * printable ASCII as \xNN. */
static void s_shown(const char *s, size_t n, char out[160])
{
    size_t k = 0;
    for (size_t i = 0; i < n && i < 32; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'')
            out[k++] = (char)c;
        else
            k += (size_t)snprintf(out + k, 8, "\\x%02x", c);
    }
    if (n > 32)
        k += (size_t)snprintf(out + k, 8, "...");
    out[k] = '\0';
}

/* "'text'" of the current token, or "the end". */
static const char *s_found(const s_parser *p, char buf[168])
{
    if (p->tok.kind == T_END)
        return "the end";
    char shown[160];
    s_shown(p->text + p->tok.at, p->tok.len, shown);
    snprintf(buf, 168, "'%s'", shown);
    return buf;
}

/* Checks that the text is UTF-8 (no overlong forms, surrogates or code
 * points past U+10FFFF); -1 at the first bad byte. */
static int s_check_utf8(s_parser *p)
{
    const unsigned char *s = (const unsigned char *)p->text;
    size_t i = 0;
    while (i < p->len) {
        unsigned char c = s[i];
        size_t n = c < 0x80             ? 1
                   : (c & 0xe0) == 0xc0 ? 2
                   : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4
                                        : 0;
        uint32_t cp = n == 1   ? c
                      : n == 2 ? c & 0x1f
                      : n == 3 ? c & 0x0f
                               : c & 7;
        bool ok = n > 0 && i + n <= p->len;
        for (size_t k = 1; ok && k < n; k++) {
            ok = (s[i + k] & 0xc0) == 0x80;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (!ok || cp < min[n] || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return s_fail(p, i, "invalid UTF-8");
        if (c == 0)
            return s_fail(p, i, "unexpected NUL character");
        i += n;
    }
    return 0;
}

/* Appends code point cp to b as UTF-8. */
static void s_put_utf8(xp_bytes *b, uint32_t cp)
{
    uint8_t u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (uint8_t)(0xc0 | cp >> 6);
        u[1] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (uint8_t)(0xe0 | cp >> 12);
        u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (uint8_t)(0xf0 | cp >> 18);
        u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 4;
    }
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->data = bson_realloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, u, n);
    b->len += n;
}

/* Four hex digits at s (before end) into *v. */
static bool s_hex4(const char *s, const char *end, uint32_t *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        if (s + i >= end)
            return false;
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return false;
        *v = *v << 4 | (uint32_t)d;
    }
    return true;
}

/* \uXXXX at s (s[0] == '\\'), a surrogate pair as one; its length, 0
 * when invalid. */
static size_t s_unicode_escape(const char *s, const char *end, uint32_t *cp)
{
    uint32_t hi, lo;
    if (!s_hex4(s + 2, end, &hi) || (hi >= 0xdc00 && hi <= 0xdfff))
        return 0;
    *cp = hi;
    if (hi < 0xd800 || hi > 0xdbff)
        return 6;
    if (end - s < 12 || s[6] != '\\' || s[7] != 'u' ||
        !s_hex4(s + 8, end, &lo) || lo < 0xdc00 || lo > 0xdfff)
        return 0;
    *cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
    return 12;
}

/* A quoted string at p->pos, decoded into p->str. */
static int s_lex_string(s_parser *p)
{
    const char *s = p->text, *end = p->text + p->len;
    size_t start = p->pos, i = p->pos + 1;
    char quote = s[start];
    p->str.len = 0;
    for (;;) {
        if (i >= p->len)
            return s_fail(p, start, "unterminated string");
        char c = s[i];
        if (c == quote)
            break;
        uint32_t cp = (unsigned char)c;
        size_t n = 1;
        if (c == '\\') {
            char e = i + 1 < p->len ? s[i + 1] : '\0';
            n = 2;
            switch (e) {
            case '"':
            case '\'':
            case '\\': cp = (unsigned char)e; break;
            case 'n': cp = '\n'; break;
            case 't': cp = '\t'; break;
            case 'r': cp = '\r'; break;
            case 'u':
                if ((n = s_unicode_escape(s + i, end, &cp)) == 0)
                    return s_fail(p, i,
                                  "invalid \\u escape (\\uXXXX, "
                                  "surrogates in pairs)");
                break;
            case '\0': return s_fail(p, start, "unterminated string");
            default: {
                char shown[160];
                s_shown(s + i + 1, 1, shown);
                return s_fail(p, i, "unknown escape '\\%s' in a string", shown);
            }
            }
            s_put_utf8(&p->str, cp);
        } else {
            s_put_utf8(&p->str, 0); /* reserve */
            p->str.data[p->str.len - 1] = (uint8_t)c;
        }
        i += n;
    }
    s_put_utf8(&p->str, 0); /* NUL-terminated, not counted */
    p->str.len--;
    p->tok.kind = T_STRING;
    p->tok.len = i + 1 - start;
    return 0;
}

static bool s_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A number at p->pos: -?D+(.D+)?([eE][+-]?D+)?, not followed by a name
 * character. */
static int s_lex_number(s_parser *p)
{
    const char *s = p->text;
    size_t i = p->pos, start = p->pos;
    bool integral = true;
    if (s[i] == '-')
        i++;
    while (i < p->len && s_digit(s[i]))
        i++;
    if (i + 1 < p->len && s[i] == '.' && s_digit(s[i + 1])) {
        integral = false;
        for (i++; i < p->len && s_digit(s[i]); i++)
            ;
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < p->len && (s[j] == '+' || s[j] == '-'))
            j++;
        if (j < p->len && s_digit(s[j])) {
            integral = false;
            for (i = j; i < p->len && s_digit(s[i]); i++)
                ;
        }
    }
    size_t tail = i;
    while (tail < p->len &&
           (s[tail] == '.' || s[tail] == '_' ||
            (s[tail] >= 'a' && s[tail] <= 'z') ||
            (s[tail] >= 'A' && s[tail] <= 'Z') || s_digit(s[tail])))
        tail++;
    p->tok.len = tail - start;
    char shown[160];
    s_shown(s + start, tail - start, shown);
    if (tail != i)
        return s_fail(p, start, "invalid number '%s'", shown);
    char buf[64];
    if (i - start >= sizeof buf)
        return s_fail(p, start, "number '%s' is too long", shown);
    memcpy(buf, s + start, i - start);
    buf[i - start] = '\0';
    errno = 0;
    if (integral) {
        p->tok.kind = T_INT;
        p->tok.i = strtoll(buf, NULL, 10);
    } else {
        p->tok.kind = T_DOUBLE;
        p->tok.d = strtod(buf, NULL);
    }
    if (errno == ERANGE || (!integral && isinf(p->tok.d)))
        return s_fail(p, start, "number '%s' out of range", shown);
    return 0;
}

static const struct {
    const char *word;
    s_tok_kind kind;
} s_keywords[] = {
    {"and", T_AND},   {"or", T_OR},       {"not", T_NOT},   {"in", T_IN},
    {"true", T_TRUE}, {"false", T_FALSE}, {"null", T_NULL},
};

static int s_lex_name(s_parser *p)
{
    size_t bad;
    size_t n = xp__field_name_len(p->text + p->pos, p->len - p->pos, &bad);
    p->tok.kind = T_NAME;
    p->tok.len = n;
    if (bad != SIZE_MAX)
        return s_fail(p, p->pos + bad + 1, "expected a name after '.'");
    for (size_t k = 0; k < sizeof s_keywords / sizeof *s_keywords; k++)
        if (strlen(s_keywords[k].word) == n &&
            memcmp(s_keywords[k].word, p->text + p->pos, n) == 0)
            p->tok.kind = s_keywords[k].kind;
    return 0;
}

static const struct {
    const char *text;
    s_op op;
} s_ops[] = {
    {"==", OP_EQ}, {"=", OP_EQ}, {"!=", OP_NE}, {"<", OP_LT},
    {"<=", OP_LE}, {">", OP_GT}, {">=", OP_GE},
};

static int s_lex_op(s_parser *p)
{
    size_t n = strspn(p->text + p->pos, "=!<>");
    p->tok.kind = T_OP;
    p->tok.len = n;
    for (size_t k = 0; k < sizeof s_ops / sizeof *s_ops; k++)
        if (strlen(s_ops[k].text) == n &&
            memcmp(s_ops[k].text, p->text + p->pos, n) == 0) {
            p->tok.op = s_ops[k].op;
            return 0;
        }
    char shown[160];
    s_shown(p->text + p->pos, n, shown);
    return s_fail(p, p->pos, "unknown operator '%s'", shown);
}

/* Reads the next token into p->tok. */
static int s_next(s_parser *p)
{
    const char *s = p->text;
    while (p->pos < p->len && strchr(" \t\r\n", s[p->pos]))
        p->pos++;
    p->tok = (s_token){.kind = T_END, .at = p->pos};
    if (p->pos >= p->len)
        return 0;
    char c = s[p->pos];
    int rc = 0;
    static const char punct[] = "()[],";
    const char *at = strchr(punct, c);
    if (at && c) {
        static const s_tok_kind kinds[] = {T_LPAREN, T_RPAREN, T_LBRACKET,
                                           T_RBRACKET, T_COMMA};
        p->tok.kind = kinds[at - punct];
        p->tok.len = 1;
    } else if (c == '"' || c == '\'') {
        rc = s_lex_string(p);
    } else if (s_digit(c) ||
               (c == '-' && p->pos + 1 < p->len && s_digit(s[p->pos + 1]))) {
        rc = s_lex_number(p);
    } else if (strchr("=!<>", c)) {
        rc = s_lex_op(p);
    } else if (xp__field_name_len(s + p->pos, p->len - p->pos, &(size_t){0})) {
        rc = s_lex_name(p);
    } else {
        char shown[160];
        size_t n = 1;
        while (p->pos + n < p->len &&
               ((unsigned char)s[p->pos + n] & 0xc0) == 0x80)
            n++;
        s_shown(s + p->pos, n, shown);
        return s_fail(p, p->pos, "unexpected character '%s'", shown);
    }
    p->pos += p->tok.len;
    return rc;
}

/* ---------------------------------------------------------------- parser */

static uint32_t s_parse_or(s_parser *p);

/* The text of the current token, for "after 'X'" (static buffer per
 * call site). */
static void s_tok_text(const s_parser *p, char out[160])
{
    s_shown(p->text + p->tok.at, p->tok.len, out);
}

/* Index of the field named by the current T_NAME token (deduplicated). */
static uint32_t s_field(s_parser *p)
{
    xp_filter *f = p->f;
    xp_field fd;
    const char *why = xp__field_init(&fd, p->text + p->tok.at, p->tok.len);
    if (why) {
        s_fail(p, p->tok.at, "%s", why);
        return S_NONE;
    }
    for (size_t i = 0; i < f->n_fields; i++)
        if (strcmp(f->fields[i].path, fd.path) == 0) {
            xp__field_clear(&fd);
            return (uint32_t)i;
        }
    s_grow((void **)&f->fields, &f->cap_fields, f->n_fields, sizeof fd);
    f->fields[f->n_fields] = fd;
    return (uint32_t)f->n_fields++;
}

/* The literal of the current token, for field (a date for a datetime
 * field's string); after names what came before, for messages. */
static int s_literal(s_parser *p, const xp_field *field, const char *after,
                     xp_literal *out)
{
    *out = (xp_literal){.kind = XP_LIT_NULL};
    switch (p->tok.kind) {
    case T_NULL: break;
    case T_TRUE:
    case T_FALSE:
        out->kind = XP_LIT_BOOL;
        out->b = p->tok.kind == T_TRUE;
        break;
    case T_INT:
        out->kind = XP_LIT_INT;
        out->i = p->tok.i;
        break;
    case T_DOUBLE:
        out->kind = XP_LIT_DOUBLE;
        out->d = p->tok.d;
        break;
    case T_STRING:
        if (field->datetime) {
            out->kind = XP_LIT_DATETIME;
            if (!xp__field_parse_date((const char *)p->str.data, p->str.len,
                                      &out->i)) {
                char shown[160];
                s_shown((const char *)p->str.data, p->str.len, shown);
                return s_fail(p, p->tok.at,
                              "invalid date '%s' (expected "
                              "YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM])",
                              shown);
            }
            break;
        }
        out->kind = XP_LIT_STRING;
        out->s = bson_malloc(p->str.len + 1);
        memcpy(out->s, p->str.data, p->str.len + 1);
        out->len = (uint32_t)p->str.len;
        break;
    case T_NAME: {
        char shown[160];
        s_tok_text(p, shown);
        return s_fail(p, p->tok.at,
                      "expected a value after '%s' (strings are quoted: "
                      "\"%s\")",
                      after, shown);
    }
    default: return s_fail(p, p->tok.at, "expected a value after '%s'", after);
    }
    if (s_next(p) == 0)
        return 0;
    bson_free(out->s); /* the caller keeps only a literal it got */
    out->s = NULL;
    return -1;
}

/* `field in [v, ...]` after the '[' check; negated for `not in`. */
static uint32_t s_parse_in(s_parser *p, uint32_t field, bool negated)
{
    if (p->tok.kind != T_LBRACKET) {
        char buf[168];
        s_fail(p, p->tok.at, "expected '[' after 'in', found %s",
               s_found(p, buf));
        return S_NONE;
    }
    const char *after = "[";
    if (s_next(p) != 0)
        return S_NONE;
    uint32_t first = (uint32_t)p->f->n_lits, count = 0;
    for (;;) {
        if (count == XP_FILTER_LIST_MAX) {
            s_fail(p, p->tok.at, "more than %d values in a list",
                   XP_FILTER_LIST_MAX);
            return S_NONE;
        }
        xp_literal lit;
        if (s_literal(p, &p->f->fields[field], after, &lit) != 0)
            return S_NONE;
        s_add_lit(p->f, lit);
        count++;
        if (p->tok.kind == T_RBRACKET)
            break;
        if (p->tok.kind != T_COMMA) {
            char buf[168];
            s_fail(p, p->tok.at, "expected ',' or ']' in the list, found %s",
                   s_found(p, buf));
            return S_NONE;
        }
        after = ",";
        if (s_next(p) != 0)
            return S_NONE;
    }
    if (s_next(p) != 0)
        return S_NONE;
    return s_add_node(p->f, (s_node){.kind = N_IN,
                                     .negated = negated,
                                     .field = field,
                                     .first = first,
                                     .count = count});
}

/* field OP literal | field [not] in [...] */
static uint32_t s_parse_comparison(s_parser *p)
{
    if (p->tok.kind != T_NAME) {
        char buf[168];
        s_fail(p, p->tok.at, "expected a field name, found %s",
               s_found(p, buf));
        return S_NONE;
    }
    char name[160];
    s_tok_text(p, name);
    uint32_t field = s_field(p);
    if (field == S_NONE || s_next(p) != 0)
        return S_NONE;
    if (p->tok.kind == T_IN || p->tok.kind == T_NOT) {
        bool negated = p->tok.kind == T_NOT;
        if (s_next(p) != 0)
            return S_NONE;
        if (negated && p->tok.kind != T_IN) {
            char buf[168];
            s_fail(p, p->tok.at, "expected 'in' after 'not', found %s",
                   s_found(p, buf));
            return S_NONE;
        }
        if (negated && s_next(p) != 0)
            return S_NONE;
        return s_parse_in(p, field, negated);
    }
    if (p->tok.kind != T_OP) {
        char buf[168];
        s_fail(p, p->tok.at, "expected an operator after '%s', found %s", name,
               s_found(p, buf));
        return S_NONE;
    }
    s_op op = p->tok.op;
    char op_text[160];
    s_tok_text(p, op_text);
    if (s_next(p) != 0)
        return S_NONE;
    size_t value_at = p->tok.at;
    xp_literal lit;
    if (s_literal(p, &p->f->fields[field], op_text, &lit) != 0)
        return S_NONE;
    if (lit.kind == XP_LIT_NULL && op != OP_EQ && op != OP_NE) {
        s_fail(p, value_at, "null is compared with == and != only");
        return S_NONE;
    }
    uint32_t at = s_add_lit(p->f, lit);
    return s_add_node(
        p->f, (s_node){.kind = N_CMP, .op = op, .field = field, .first = at});
}

/* One level deeper (a parenthesis or a `not`); false past the bound. */
static bool s_enter(s_parser *p)
{
    if (++p->depth <= XP_FILTER_DEPTH_MAX)
        return true;
    s_fail(p, p->tok.at, "nested deeper than %d levels", XP_FILTER_DEPTH_MAX);
    return false;
}

static uint32_t s_parse_unary(s_parser *p)
{
    uint32_t n = S_NONE;
    if (p->tok.kind == T_NOT) {
        if (!s_enter(p) || s_next(p) != 0)
            return S_NONE;
        uint32_t child = s_parse_unary(p);
        if (child != S_NONE)
            n = s_add_node(p->f, (s_node){.kind = N_NOT, .first = child});
        p->depth--;
        return n;
    }
    if (p->tok.kind != T_LPAREN)
        return s_parse_comparison(p);
    if (!s_enter(p) || s_next(p) != 0)
        return S_NONE;
    n = s_parse_or(p);
    if (n != S_NONE && p->tok.kind != T_RPAREN) {
        char buf[168];
        s_fail(p, p->tok.at, "expected ')', 'and' or 'or', found %s",
               s_found(p, buf));
        n = S_NONE;
    }
    if (n != S_NONE && s_next(p) != 0)
        n = S_NONE;
    p->depth--;
    return n;
}

/* A chain of operands joined by `sep` (T_AND or T_OR): one node, or an
 * n-ary node over their list. */
static uint32_t s_parse_chain(s_parser *p, s_tok_kind sep, s_node_kind kind,
                              uint32_t (*operand)(s_parser *))
{
    uint32_t *list = NULL;
    size_t n = 0, cap = 0;
    uint32_t result = S_NONE;
    for (;;) {
        uint32_t x = operand(p);
        if (x == S_NONE)
            goto cleanup;
        s_grow((void **)&list, &cap, n, sizeof *list);
        list[n++] = x;
        if (p->tok.kind != sep)
            break;
        if (s_next(p) != 0)
            goto cleanup;
    }
    if (n == 1) {
        result = list[0];
        goto cleanup;
    }
    xp_filter *f = p->f;
    uint32_t first = (uint32_t)f->n_kids;
    for (size_t i = 0; i < n; i++) {
        s_grow((void **)&f->kids, &f->cap_kids, f->n_kids, sizeof *f->kids);
        f->kids[f->n_kids++] = list[i];
    }
    result = s_add_node(
        f, (s_node){.kind = kind, .first = first, .count = (uint32_t)n});
cleanup:
    bson_free(list);
    return result;
}

static uint32_t s_parse_and(s_parser *p)
{
    return s_parse_chain(p, T_AND, N_AND, s_parse_unary);
}

static uint32_t s_parse_or(s_parser *p)
{
    return s_parse_chain(p, T_OR, N_OR, s_parse_and);
}

static bool s_blank(const char *text)
{
    return text[strspn(text, " \t\r\n")] == '\0';
}

int xp__filter_parse(xp_filter **out, const char *text, xp_error_t *err)
{
    *out = NULL;
    if (!text || s_blank(text))
        return 0;
    size_t len = strnlen(text, XP_FILTER_TEXT_MAX + 1);
    if (len > XP_FILTER_TEXT_MAX)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "filter: longer than %d bytes", XP_FILTER_TEXT_MAX);
    s_parser p = {.text = text, .len = len, .err = err};
    p.f = bson_malloc0(sizeof *p.f);
    if (s_check_utf8(&p) == 0 && s_next(&p) == 0) {
        p.f->root = s_parse_or(&p);
        if (p.f->root != S_NONE && p.tok.kind != T_END) {
            char buf[168];
            s_fail(&p, p.tok.at, "expected 'and', 'or' or the end, found %s",
                   s_found(&p, buf));
        }
    }
    xp__bytes_clear(&p.str);
    if (p.failed) {
        xp__filter_destroy(&p.f);
        return -1;
    }
    *out = p.f;
    return 0;
}

/* ---------------------------------------------------------------- evaluation
 */

static bool s_equal(const xp_scalar *v, const xp_literal *lit)
{
    int cmp;
    return xp__scalar_compare(v, lit, &cmp) && cmp == 0;
}

static bool s_cmp(const xp_scalar *v, s_op op, const xp_literal *lit)
{
    int cmp;
    if (op == OP_EQ || op == OP_NE)
        return s_equal(v, lit) == (op == OP_EQ);
    if (!xp__scalar_compare(v, lit, &cmp))
        return false;
    switch (op) {
    case OP_LT: return cmp < 0;
    case OP_LE: return cmp <= 0;
    case OP_GT: return cmp > 0;
    default: return cmp >= 0;
    }
}

/* A comparison or `in` node over one value. */
static bool s_leaf(const xp_filter *f, const s_node *node, const xp_scalar *v)
{
    if (node->kind == N_CMP)
        return s_cmp(v, node->op, &f->lits[node->first]);
    for (uint32_t i = 0; i < node->count; i++)
        if (s_equal(v, &f->lits[node->first + i]))
            return !node->negated;
    return node->negated;
}

/* Where the evaluator finds a field's value: looked up in doc, or found
 * already by a plan (slots: the plan's slot of each field of the filter). */
typedef struct {
    const bson_t *doc;
    const xp_field_plan *plan;
    const uint32_t *slots;
} s_source;

static const bson_iter_t *s_value(const xp_filter *f, const s_source *src,
                                  uint32_t field, bson_iter_t *it)
{
    if (src->plan)
        return xp__field_plan_value(src->plan, src->slots[field]);
    return xp__field_find(&f->fields[field], src->doc, it) ? it : NULL;
}

/* Recursion as deep as the tree: bounded by XP_FILTER_DEPTH_MAX. */
static bool s_eval(const xp_filter *f, uint32_t n, const s_source *src)
{
    const s_node *node = &f->nodes[n];
    switch (node->kind) {
    case N_OR:
        for (uint32_t i = 0; i < node->count; i++)
            if (s_eval(f, f->kids[node->first + i], src))
                return true;
        return false;
    case N_AND:
        for (uint32_t i = 0; i < node->count; i++)
            if (!s_eval(f, f->kids[node->first + i], src))
                return false;
        return true;
    case N_NOT: return !s_eval(f, node->first, src);
    case N_CMP:
    case N_IN: {
        bson_iter_t it;
        xp_scalar v;
        xp__scalar_of(s_value(f, src, node->field, &it), &v);
        return s_leaf(f, node, &v);
    }
    }
    return false;
}

bool xp__filter_match(const xp_filter *f, const bson_t *doc)
{
    if (!f)
        return true;
    s_source src = {.doc = doc};
    return doc && s_eval(f, f->root, &src);
}

uint32_t *xp__filter_plan(const xp_filter *f, xp_field_plan *plan)
{
    if (!f)
        return NULL;
    uint32_t *slots =
        bson_malloc((f->n_fields ? f->n_fields : 1) * sizeof *slots);
    for (size_t i = 0; i < f->n_fields; i++)
        slots[i] = xp__field_plan_add(plan, &f->fields[i]);
    return slots;
}

size_t xp__filter_fields(const xp_filter *f)
{
    return f ? f->n_fields : 0;
}

const xp_field *xp__filter_field(const xp_filter *f, size_t i)
{
    return &f->fields[i];
}

bool xp__filter_match_found(const xp_filter *f, const xp_field_plan *plan,
                            const uint32_t *slots, bool readable)
{
    if (!f)
        return true;
    s_source src = {.plan = plan, .slots = slots};
    return readable && s_eval(f, f->root, &src);
}

/* ---------------------------------------------------------------- columns
 * The same evaluation over every record at once: a comparison is decided
 * once per distinct value of its column, then looked up per record; the
 * tree combines bit sets of 64 records a word. */

static void s_eval_columns(const xp_filter *f, uint32_t n,
                           const xp_column *const *cols, size_t records,
                           uint64_t *out);

/* out = the leaf node over every record. */
static void s_leaf_columns(const xp_filter *f, const s_node *node,
                           const xp_column *col, size_t records, uint64_t *out)
{
    uint8_t *ok = bson_malloc(col->n_values ? col->n_values : 1);
    for (uint32_t v = 0; v < col->n_values; v++)
        ok[v] = s_leaf(f, node, &col->values[v]);
    const uint32_t *cell = col->cells;
    for (size_t w = 0; w * 64 < records; w++) {
        size_t end = records - w * 64 < 64 ? records - w * 64 : 64;
        uint64_t bits = 0;
        for (size_t b = 0; b < end; b++)
            bits |= (uint64_t)ok[cell[w * 64 + b]] << b;
        out[w] = bits;
    }
    bson_free(ok);
}

/* and / or of a node's children into out. */
static void s_list_columns(const xp_filter *f, const s_node *node,
                           const xp_column *const *cols, size_t records,
                           uint64_t *out)
{
    size_t words = (records + 63) / 64;
    uint64_t *kid = bson_malloc((words ? words : 1) * sizeof *kid);
    bool and = node->kind == N_AND;
    s_eval_columns(f, f->kids[node->first], cols, records, out);
    for (uint32_t i = 1; i < node->count; i++) {
        s_eval_columns(f, f->kids[node->first + i], cols, records, kid);
        for (size_t w = 0; w < words; w++)
            out[w] = and? out[w] & kid[w] : out[w] | kid[w];
    }
    bson_free(kid);
}

/* Recursion as deep as the tree, as s_eval's. */
static void s_eval_columns(const xp_filter *f, uint32_t n,
                           const xp_column *const *cols, size_t records,
                           uint64_t *out)
{
    const s_node *node = &f->nodes[n];
    size_t words = (records + 63) / 64;
    switch (node->kind) {
    case N_OR:
    case N_AND: s_list_columns(f, node, cols, records, out); break;
    case N_NOT:
        s_eval_columns(f, node->first, cols, records, out);
        for (size_t w = 0; w < words; w++)
            out[w] = ~out[w];
        if (records % 64)
            out[words - 1] &= (UINT64_C(1) << (records % 64)) - 1;
        break;
    case N_CMP:
    case N_IN: s_leaf_columns(f, node, cols[node->field], records, out); break;
    }
}

void xp__filter_match_columns(const xp_filter *f, const xp_column *const *cols,
                              size_t records, const uint64_t *readable,
                              uint64_t *out)
{
    size_t words = (records + 63) / 64;
    if (!f) {
        memset(out, 0xff, words * sizeof *out);
        if (records % 64)
            out[words - 1] = (UINT64_C(1) << (records % 64)) - 1;
        return;
    }
    s_eval_columns(f, f->root, cols, records, out);
    for (size_t w = 0; w < words; w++)
        out[w] &= readable[w];
}

/* ---------------------------------------------------------------- MongoDB */

static const char *const s_mongo_ops[] = {
    [OP_LT] = "$lt", [OP_LE] = "$lte", [OP_GT] = "$gt", [OP_GE] = "$gte"};

/* MongoDB matches 1 with true in some servers and test doubles; the
 * $type keeps numbers and booleans apart as the evaluator does. */
static const char *s_type_guard(const xp_literal *lit)
{
    xp_value_class c = xp__literal_class(lit);
    return c == XP_CLASS_NUMBER ? "number" : c == XP_CLASS_BOOL ? "bool" : NULL;
}

/* {path: {$eq: lit[, $type]}} into out. */
static void s_mongo_eq(bson_t *out, const char *path, const xp_literal *lit)
{
    bson_t cond;
    bson_append_document_begin(out, path, -1, &cond);
    xp__literal_append(&cond, "$eq", lit);
    const char *type = s_type_guard(lit);
    if (type)
        BSON_APPEND_UTF8(&cond, "$type", type);
    bson_append_document_end(out, &cond);
}

/* The literals of lits[0..n) in class group (number, bool, other) as
 * {path: {$in: [...][, $type]}} appended to array arr at *index. */
static void s_mongo_in_group(bson_t *arr, uint32_t *index, const char *path,
                             const xp_literal *lits, uint32_t n,
                             const char *type)
{
    bson_t doc, cond, list;
    uint32_t k = 0;
    char key[16];
    const char *kp;
    for (uint32_t i = 0; i < n; i++) {
        const char *t = s_type_guard(&lits[i]);
        if (t == type || (t && type && strcmp(t, type) == 0))
            k++;
    }
    if (k == 0)
        return;
    bson_uint32_to_string((*index)++, &kp, key, sizeof key);
    bson_append_document_begin(arr, kp, -1, &doc);
    bson_append_document_begin(&doc, path, -1, &cond);
    bson_append_array_begin(&cond, "$in", -1, &list);
    k = 0;
    for (uint32_t i = 0; i < n; i++) {
        const char *t = s_type_guard(&lits[i]);
        if (!(t == type || (t && type && strcmp(t, type) == 0)))
            continue;
        bson_uint32_to_string(k++, &kp, key, sizeof key);
        xp__literal_append(&list, kp, &lits[i]);
    }
    bson_append_array_end(&cond, &list);
    if (type)
        BSON_APPEND_UTF8(&cond, "$type", type);
    bson_append_document_end(&doc, &cond);
    bson_append_document_end(arr, &doc);
}

static void s_mongo_node(const xp_filter *f, uint32_t n, bson_t *out);

/* op: [child documents] into out. */
static void s_mongo_list(const xp_filter *f, const char *op,
                         const uint32_t *kids, uint32_t count, bson_t *out)
{
    bson_t arr, doc;
    char key[16];
    const char *kp;
    bson_append_array_begin(out, op, -1, &arr);
    for (uint32_t i = 0; i < count; i++) {
        bson_uint32_to_string(i, &kp, key, sizeof key);
        bson_append_document_begin(&arr, kp, -1, &doc);
        s_mongo_node(f, kids[i], &doc);
        bson_append_document_end(&arr, &doc);
    }
    bson_append_array_end(out, &arr);
}

/* `in`: $or over the class groups ($nor for `not in`). */
static void s_mongo_in(const xp_filter *f, const s_node *node, bson_t *out)
{
    const char *path = f->fields[node->field].path;
    const xp_literal *lits = &f->lits[node->first];
    bson_t arr;
    uint32_t index = 0;
    bson_append_array_begin(out, node->negated ? "$nor" : "$or", -1, &arr);
    s_mongo_in_group(&arr, &index, path, lits, node->count, "number");
    s_mongo_in_group(&arr, &index, path, lits, node->count, "bool");
    s_mongo_in_group(&arr, &index, path, lits, node->count, NULL);
    bson_append_array_end(out, &arr);
}

static void s_mongo_cmp(const xp_filter *f, const s_node *node, bson_t *out)
{
    const char *path = f->fields[node->field].path;
    const xp_literal *lit = &f->lits[node->first];
    bson_t arr, doc, cond;
    if (node->op == OP_EQ) {
        s_mongo_eq(out, path, lit);
    } else if (node->op == OP_NE) {
        bson_append_array_begin(out, "$nor", -1, &arr);
        bson_append_document_begin(&arr, "0", -1, &doc);
        s_mongo_eq(&doc, path, lit);
        bson_append_document_end(&arr, &doc);
        bson_append_array_end(out, &arr);
    } else {
        bson_append_document_begin(out, path, -1, &cond);
        xp__literal_append(&cond, s_mongo_ops[node->op], lit);
        bson_append_document_end(out, &cond);
    }
}

static void s_mongo_node(const xp_filter *f, uint32_t n, bson_t *out)
{
    const s_node *node = &f->nodes[n];
    switch (node->kind) {
    case N_OR:
    case N_AND:
        s_mongo_list(f, node->kind == N_OR ? "$or" : "$and",
                     &f->kids[node->first], node->count, out);
        break;
    case N_NOT: s_mongo_list(f, "$nor", &node->first, 1, out); break;
    case N_CMP: s_mongo_cmp(f, node, out); break;
    case N_IN: s_mongo_in(f, node, out); break;
    }
}

void xp__filter_mongo(const xp_filter *f, bson_t *out)
{
    if (f)
        s_mongo_node(f, f->root, out);
}
