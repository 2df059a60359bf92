/* git_no_ca.c — in libxp-git.so only (not in the static library): libgit2,
 * as Debian builds it (mbedTLS), parses the whole system CA bundle inside
 * git_libgit2_init, some 50 million instructions (~10 ms) per process, for
 * TLS that the git capture never does: it reads the local repository. This
 * definition comes first in the lookup scope of the libgit2 the module
 * loads, so that load finds no certificates to parse; a program that
 * links mbedTLS or libgit2 itself keeps the real one (its own scope is
 * searched first). */
#include <stddef.h>

int mbedtls_x509_crt_parse_file(void *chain, const char *path);

int mbedtls_x509_crt_parse_file(void *chain, const char *path)
{
    (void)chain;
    (void)path;
    return 0;
}
