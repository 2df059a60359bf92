/* code.c — code context capture: finds a step function's definition in
 * its source file (matching braces while skipping comments, strings,
 * character literals and preprocessor lines) when the step is registered.
 * Files are read once per process; an unreadable file yields what is known
 * (file, line, symbol, build id) and one warning. */
#include "capture/code.h"

#include "util/hash.h"
#include "util/log.h"
#include "util/sys.h"
#include "value.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A larger file is not a source file. */
#define XP_SOURCE_MAX (64u << 20)

typedef struct {
    const char *s;
    size_t len;
    size_t i;
} s_lex;

static bool s_ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_';
}

/* If a comment, literal or preprocessor line starts at l->i, moves past it
 * and returns true. */
static bool s_skip_inert(s_lex *l)
{
    const char *s = l->s;
    size_t i = l->i, n = l->len;
    if (i + 1 < n && s[i] == '/' && s[i + 1] == '/') {
        while (i < n && s[i] != '\n') {
            if (s[i] == '\\' && i + 1 < n)
                i++;
            i++;
        }
    } else if (i + 1 < n && s[i] == '/' && s[i + 1] == '*') {
        i += 2;
        while (i + 1 < n && !(s[i] == '*' && s[i + 1] == '/'))
            i++;
        i = i + 2 <= n ? i + 2 : n;
    } else if (s[i] == '"' || s[i] == '\'') {
        char quote = s[i++];
        while (i < n && s[i] != quote && s[i] != '\n') {
            if (s[i] == '\\')
                i++;
            i++;
        }
        if (i < n)
            i++;
    } else if (s[i] == '#') {
        /* Only at the start of a line (after blanks). */
        size_t k = i;
        while (k > 0 && (s[k - 1] == ' ' || s[k - 1] == '\t'))
            k--;
        if (k != 0 && s[k - 1] != '\n')
            return false;
        while (i < n && s[i] != '\n') {
            if (s[i] == '\\' && i + 1 < n)
                i++;
            i++;
        }
    } else {
        return false;
    }
    l->i = i > n ? n : i;
    return true;
}

static void s_skip_space(s_lex *l)
{
    for (;;) {
        while (l->i < l->len &&
               (l->s[l->i] == ' ' || l->s[l->i] == '\t' || l->s[l->i] == '\n' ||
                l->s[l->i] == '\r' || l->s[l->i] == '\f' || l->s[l->i] == '\v'))
            l->i++;
        if (l->i >= l->len || !s_skip_inert(l))
            return;
    }
}

/* With l->i on an opening bracket, moves past its match; false at EOF. */
static bool s_skip_balanced(s_lex *l, char open, char close)
{
    int depth = 0;
    while (l->i < l->len) {
        if (s_skip_inert(l))
            continue;
        char c = l->s[l->i++];
        if (c == open)
            depth++;
        else if (c == close && --depth == 0)
            return true;
    }
    return false;
}

static size_t s_ident_len(const s_lex *l)
{
    size_t k = l->i;
    while (k < l->len && s_ident_char(l->s[k]))
        k++;
    return k - l->i;
}

/* After a parameter list: true with l->i on the body's '{' when this is
 * a definition (also K&R style), false for a prototype or anything else. */
static bool s_find_body(s_lex *l)
{
    for (;;) {
        s_skip_space(l);
        if (l->i >= l->len)
            return false;
        char c = l->s[l->i];
        if (c == '{')
            return true;
        /* A function returning a function pointer closes its declarator
         * and gives the returned type's parameters:
         * `int (*pick(int k))(double) {`. */
        if (c == ')') {
            l->i++;
            s_skip_space(l);
            if (l->i < l->len && l->s[l->i] == '(' &&
                !s_skip_balanced(l, '(', ')'))
                return false;
            continue;
        }
        size_t id = s_ident_len(l);
        if (id == 0)
            return false; /* ';' ',' '=' ')' ... : not a definition */
        if ((id == 13 && strncmp(l->s + l->i, "__attribute__", 13) == 0) ||
            (id == 7 && strncmp(l->s + l->i, "__asm__", 7) == 0)) {
            l->i += id;
            s_skip_space(l);
            if (l->i >= l->len || l->s[l->i] != '(' ||
                !s_skip_balanced(l, '(', ')'))
                return false;
            continue;
        }
        /* K&R parameter declarations: `int a; char *b;` then '{'. */
        while (l->i < l->len && l->s[l->i] != ';') {
            if (s_skip_inert(l))
                continue;
            char d = l->s[l->i];
            if (d == '{' || d == '}' || d == '=')
                return false;
            if (d == '(') {
                if (!s_skip_balanced(l, '(', ')'))
                    return false;
                continue;
            }
            l->i++;
        }
        if (l->i >= l->len)
            return false;
        l->i++; /* the ';' */
    }
}

/* Where the definition whose declaration follows decl_start begins: at
 * its first token, or at the comment block directly above it. A comment
 * separated from the declaration by a blank line (a file or section
 * banner), or ending the previous declaration's line, is not part of it:
 * editing it must not change the step's code. */
static size_t s_definition_start(const char *src, size_t decl_start,
                                 size_t symbol_at)
{
    s_lex l = {src, symbol_at, decl_start};
    bool line_start = decl_start == 0, in_block = false;
    size_t block = 0;
    for (;;) {
        int newlines = 0;
        while (l.i < l.len &&
               (src[l.i] == ' ' || src[l.i] == '\t' || src[l.i] == '\n' ||
                src[l.i] == '\r' || src[l.i] == '\f' || src[l.i] == '\v'))
            newlines += src[l.i++] == '\n';
        if (newlines > 0)
            line_start = true;
        if (newlines > 1)
            in_block = false; /* a blank line ends the block above */
        bool comment = l.i + 1 < l.len && src[l.i] == '/' &&
                       (src[l.i + 1] == '*' || src[l.i + 1] == '/');
        if (!comment)
            return in_block ? block : l.i;
        if (line_start && !in_block) {
            block = l.i;
            in_block = true;
        }
        s_skip_inert(&l);
        line_start = false;
    }
}

char *xp__code_extract(const char *src, size_t len, const char *symbol)
{
    s_lex l = {src, len, 0};
    size_t slen = strlen(symbol);
    size_t decl_start = 0;
    int depth = 0;
    while (l.i < l.len) {
        if (src[l.i] == '#' && depth == 0) {
            size_t before = l.i;
            if (s_skip_inert(&l)) {
                decl_start = l.i;
                continue;
            }
            l.i = before;
        }
        if (s_skip_inert(&l))
            continue;
        char c = src[l.i];
        if (c == '{') {
            depth++;
        } else if (c == '}') {
            if (depth > 0)
                depth--;
            if (depth == 0)
                decl_start = l.i + 1;
        } else if (c == ';' && depth == 0) {
            decl_start = l.i + 1;
        } else if (s_ident_char(c)) {
            size_t id = s_ident_len(&l);
            bool match = depth == 0 && id == slen &&
                         strncmp(src + l.i, symbol, slen) == 0 &&
                         (l.i == 0 || !s_ident_char(src[l.i - 1]));
            l.i += id;
            if (!match)
                continue;
            s_lex probe = l;
            s_skip_space(&probe);
            if (probe.i >= probe.len || src[probe.i] != '(' ||
                !s_skip_balanced(&probe, '(', ')') || !s_find_body(&probe))
                continue;
            if (!s_skip_balanced(&probe, '{', '}'))
                return NULL; /* unterminated body */
            size_t start = s_definition_start(src, decl_start, l.i - id);
            return bson_strndup(src + start, probe.i - start);
        }
        l.i++;
    }
    return NULL;
}

/* ---------------------------------------------------------------- files */

typedef struct s_file {
    struct s_file *next;
    char *path; /* as registered */
    char *text; /* NULL when unreadable */
    size_t len;
    char *found; /* path it was read from */
    bool warned; /* a definition was not found: said once per file */
} s_file;

static pthread_mutex_t s_files_lock = PTHREAD_MUTEX_INITIALIZER;
static s_file *s_files;

/* __FILE__ is relative to the compiler's working directory (meson: the
 * build directory), so relative paths are also tried from every ancestor
 * directory of the binary that holds the step function. */
static s_file *s_load(const char *path, const void *fn)
{
    for (s_file *f = s_files; f; f = f->next)
        if (strcmp(f->path, path) == 0)
            return f;
    s_file *f = bson_malloc0(sizeof *f);
    f->path = bson_strdup(path);
    f->text = xp__read_file(path, XP_SOURCE_MAX, &f->len);
    if (f->text)
        f->found = bson_strdup(path);
    Dl_info info;
    if (!f->text && path[0] != '/' && fn && dladdr(fn, &info) &&
        info.dli_fname) {
        char dir[PATH_MAX];
        /* For the main program dladdr reports argv[0], which may be a bare
         * name found through PATH (or renamed): use /proc/self/exe. */
        bool main_program =
            !strchr(info.dli_fname, '/') ||
            strcmp(info.dli_fname, program_invocation_name) == 0;
        const char *binary = main_program ? "/proc/self/exe" : info.dli_fname;
        if (realpath(binary, dir)) {
            char *slash;
            while (!f->text && (slash = strrchr(dir, '/')) != NULL) {
                *slash = '\0';
                char *candidate = bson_strdup_printf("%s/%s", dir, path);
                f->text = xp__read_file(candidate, XP_SOURCE_MAX, &f->len);
                if (f->text)
                    f->found = candidate;
                else
                    bson_free(candidate);
            }
        }
    }
    f->next = s_files;
    s_files = f;
    if (!f->text)
        xp__log(XP_LOG_WARNING,
                "Source file %s is not readable: code context records only "
                "file, line, symbol and build id",
                path);
    return f;
}

/* ---------------------------------------------------------------- symbols */

/* The function symbols of one loaded object, read from its .symtab (which
 * unlike the dynamic symbols dladdr knows also lists static functions,
 * the usual kind of step). Loaded once per object per process. */
typedef struct s_symtab {
    struct s_symtab *next;
    uintptr_t bias; /* load address the symbol values are relative to */
    size_t n;
    uintptr_t *addr; /* function addresses, as loaded */
    uint32_t *name;  /* offsets into names */
    char *names;     /* the string table, NUL-terminated */
    size_t names_len;
} s_symtab;

static s_symtab *s_symtabs; /* under s_files_lock */

/* Reads len bytes at off of fd into a new buffer, or NULL. */
static void *s_pread_new(int fd, uint64_t off, uint64_t len)
{
    if (len == 0 || len > XP_SOURCE_MAX)
        return NULL;
    char *buf = bson_malloc((size_t)len + 1);
    if (pread(fd, buf, (size_t)len, (off_t)off) != (ssize_t)len) {
        bson_free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

/* Fills t with the functions of the ELF file at path (an object of this
 * process's own class); false when it has no readable .symtab (stripped,
 * or not ELF). */
static bool s_symtab_read(s_symtab *t, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ElfW(Ehdr) eh;
    ElfW(Shdr) *sh = NULL;
    ElfW(Sym) *syms = NULL;
    bool ok = false;
    if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] !=
            (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32) ||
        eh.e_shentsize != sizeof *sh || eh.e_shnum == 0)
        goto done;
    sh = s_pread_new(fd, eh.e_shoff, (uint64_t)eh.e_shnum * sizeof *sh);
    for (size_t i = 0; sh && i < eh.e_shnum && !ok; i++) {
        if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_entsize != sizeof *syms ||
            sh[i].sh_link >= eh.e_shnum)
            continue;
        const ElfW(Shdr) *str = &sh[sh[i].sh_link];
        syms = s_pread_new(fd, sh[i].sh_offset, sh[i].sh_size);
        t->names = s_pread_new(fd, str->sh_offset, str->sh_size);
        if (!syms || !t->names)
            break;
        t->names_len = str->sh_size;
        size_t count = sh[i].sh_size / sizeof *syms;
        t->addr = bson_malloc((count + 1) * sizeof *t->addr);
        t->name = bson_malloc((count + 1) * sizeof *t->name);
        for (size_t k = 0; k < count; k++) {
            if (ELF64_ST_TYPE(syms[k].st_info) != STT_FUNC ||
                syms[k].st_value == 0 || syms[k].st_name >= t->names_len)
                continue;
            t->addr[t->n] = t->bias + (uintptr_t)syms[k].st_value;
            t->name[t->n] = syms[k].st_name;
            t->n++;
        }
        ok = true;
    }
done:
    bson_free(syms);
    bson_free(sh);
    close(fd);
    return ok;
}

/* Name of the function at fn from its object's symbol table; NULL when
 * unknown. s_files_lock held. */
static const char *s_symbol_locked(const void *fn)
{
    Dl_info info;
    struct link_map *map = NULL;
    if (!fn || !dladdr1(fn, &info, (void **)&map, RTLD_DL_LINKMAP) || !map)
        return NULL;
    if (info.dli_sname && info.dli_saddr == fn)
        return info.dli_sname; /* exported: the dynamic linker knows it */
    s_symtab *t;
    for (t = s_symtabs; t; t = t->next)
        if (t->bias == (uintptr_t)map->l_addr)
            break;
    if (!t) {
        t = bson_malloc0(sizeof *t);
        t->bias = (uintptr_t)map->l_addr;
        /* The main program has no name in the link map. */
        const char *path =
            map->l_name && map->l_name[0] ? map->l_name : "/proc/self/exe";
        if (!s_symtab_read(t, path))
            t->n = 0;
        t->next = s_symtabs;
        s_symtabs = t;
    }
    for (size_t k = 0; k < t->n; k++)
        if (t->addr[k] == (uintptr_t)fn)
            return t->names + t->name[k];
    return NULL;
}

/* The symbol of fn as a C identifier: without the suffix a compiler adds
 * to local clones (".lto_priv.0", ".constprop.0"). Caller frees. */
static char *s_symbol_dup(const void *fn)
{
    const char *sym = s_symbol_locked(fn);
    if (!sym || !sym[0])
        return NULL;
    return bson_strndup(sym, strcspn(sym, "."));
}

char *xp__code_symbol(const void *fn)
{
    pthread_mutex_lock(&s_files_lock);
    char *sym = s_symbol_dup(fn);
    pthread_mutex_unlock(&s_files_lock);
    return sym;
}

/* The GNU build id note of the object info describes, as hex into out
 * (129 bytes); false when it has none. */
static bool s_object_build_id(const struct dl_phdr_info *info, char *out)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
        const uint8_t *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)(const void *)p;
            const uint8_t *name = p + sizeof *nh;
            const uint8_t *desc = name + ((nh->n_namesz + 3) & ~3u);
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
                memcmp(name, "GNU", 4) == 0 && nh->n_descsz <= 64) {
                xp__hex(desc, nh->n_descsz, out);
                return true;
            }
            p = desc + ((nh->n_descsz + 3) & ~3u);
        }
    }
    return false;
}

static int s_build_id_note(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    if (info->dlpi_name && info->dlpi_name[0])
        return 0; /* the main program is the unnamed first entry */
    return s_object_build_id(info, data);
}

typedef struct {
    uintptr_t addr; /* an address inside the object wanted */
    char *out;
    bool found;
} s_lookup;

/* The object whose loaded segments hold l->addr: its build id. */
static int s_build_id_at(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    s_lookup *l = data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && l->addr >= start &&
            l->addr - start < ph->p_memsz) {
            l->found = s_object_build_id(info, l->out);
            return 1;
        }
    }
    return 0;
}

char *xp__code_build_id_of(const void *fn)
{
    char hex[129] = "";
    s_lookup l = {(uintptr_t)fn, hex, false};
    dl_iterate_phdr(s_build_id_at, &l);
    return l.found && hex[0] ? bson_strdup(hex) : NULL;
}

static char s_build_id_hex[129];
static pthread_once_t s_build_id_once = PTHREAD_ONCE_INIT;

static void s_build_id_init(void)
{
    dl_iterate_phdr(s_build_id_note, s_build_id_hex);
}

/* Build id of the main program as hex, "" when it has none. */
const char *xp__build_id(void)
{
    pthread_once(&s_build_id_once, s_build_id_init);
    return s_build_id_hex;
}

char *xp__code_capture(const char *file, const char *name, const void *fn,
                       char **found_path)
{
    *found_path = NULL;
    if (!file || !name)
        return NULL;
    pthread_mutex_lock(&s_files_lock);
    s_file *f = s_load(file, fn);
    /* By the function's symbol first: a step may be registered under
     * another name than its function's, and a function used by several
     * steps has one definition. Then by the name, for a function defined
     * under that name in file but reached through another symbol. */
    char *symbol = s_symbol_dup(fn);
    char *text = NULL;
    if (f->text && symbol)
        text = xp__code_extract(f->text, f->len, symbol);
    if (!text && f->text && (!symbol || strcmp(symbol, name) != 0))
        text = xp__code_extract(f->text, f->len, name);
    bool warn = f->text && !text && !f->warned;
    if (warn)
        f->warned = true;
    if (f->found)
        *found_path = bson_strdup(f->found);
    pthread_mutex_unlock(&s_files_lock);
    if (warn)
        xp__log(XP_LOG_WARNING,
                "Definition of step function '%s' not found in %s: code "
                "context records only file, line and symbol (said once per "
                "file)",
                symbol ? symbol : name, file);
    bson_free(symbol);
    return text;
}
