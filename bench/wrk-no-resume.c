/*
 * wrk-no-resume.c - preloaded into wrk (LD_PRELOAD) by bench/bench.py for the `1k-close-full`
 * scenario of `--tls`, so that every connection makes a full TLS handshake.
 *
 * Why: wrk keeps one OpenSSL `SSL` object per connection slot. When a connection ends it calls
 * SSL_shutdown and SSL_clear, and SSL_clear keeps the session (and, in TLS 1.3, the ticket the
 * server sent). The next ClientHello on that slot offers it, the server resumes, and the handshake
 * skips the certificate and its signature: with `Connection: close` plain wrk measures returning
 * visitors. A new visitor makes a full handshake, which is the dearer one for a server. This file
 * wraps SSL_clear so that the session is dropped first (SSL_set_session(s, NULL)); nothing else in
 * wrk changes. bench.py checks the effect on a probe nginx that logs `$ssl_session_reused`.
 *
 * Built by bench.py at run time: cc -shared -fPIC -O2 -o wrk-no-resume.so wrk-no-resume.c -ldl
 * Both OpenSSL functions are looked up with dlsym, so the object links against nothing but libdl
 * and needs no OpenSSL headers.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>

typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;

static int (*real_clear)(SSL *);
static int (*set_session)(SSL *, SSL_SESSION *);

/* Runs when the object is loaded, after wrk's libraries (libssl among them): the lookups are
 * done once, before wrk starts its threads. */
__attribute__((constructor)) static void find_openssl(void)
{
    real_clear = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_clear");
    set_session = (int (*)(SSL *, SSL_SESSION *))dlsym(RTLD_NEXT, "SSL_set_session");
}

int SSL_clear(SSL *s)
{
    if (set_session != NULL)
        set_session(s, NULL);
    return real_clear != NULL ? real_clear(s) : 0;
}
