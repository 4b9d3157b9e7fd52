/* fuzz_ocsp_response.c — libFuzzer target for what an OCSP responder sends back: the DER body
 * sc_ocsp_staple_accept checks (parse, signature, which certificate, status, times) before the
 * server staples it to handshakes. The CA and the leaf are fixed (no keys here), so the seeds,
 * made with `openssl ocsp` for them (good, revoked, tryLater), pass the signature check and
 * the fuzzer reaches every later step. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "spacecast/common.h"
#include "spacecast/ocsp.h"

static const char ca_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBnzCCAUWgAwIBAgIUYqKlSLvgSbLeCYiJLUShQXr0iU8wCgYIKoZIzj0EAwIw\n"
    "HDEaMBgGA1UEAwwRc3BhY2VjYXN0IGZ1enogQ0EwIBcNMjYxMjAxMDg1ODA3WhgP\n"
    "MjEyNjExMDcwODU4MDdaMBwxGjAYBgNVBAMMEXNwYWNlY2FzdCBmdXp6IENBMFkw\n"
    "EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEt0VaXlmjoARqst1w1weNuor02OwFhSTa\n"
    "L2EZgMRGmdRCZbtk0ARkQUTGRzAHBB+BghWkW34TXJh+aIpgBbrZH6NjMGEwHQYD\n"
    "VR0OBBYEFIbbl12ndt+9z3/kUGH17VJVasPrMB8GA1UdIwQYMBaAFIbbl12ndt+9\n"
    "z3/kUGH17VJVasPrMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMAoG\n"
    "CCqGSM49BAMCA0gAMEUCIQCW0JOPWKcsxRmhjNRhI//dl+0jmn4QzhemdlJtKQ+S\n"
    "UwIgKR88v0tb8Fx6Y0hfNfZ/gRkf/tl3xP9JcHJS+AbWhwo=\n"
    "-----END CERTIFICATE-----\n";
static const char leaf_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBljCCATugAwIBAgICEAAwCgYIKoZIzj0EAwIwHDEaMBgGA1UEAwwRc3BhY2Vj\n"
    "YXN0IGZ1enogQ0EwIBcNMjYxMjAxMDg1ODA3WhgPMjEyNjExMDcwODU4MDdaMBQx\n"
    "EjAQBgNVBAMMCWxvY2FsaG9zdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABGYW\n"
    "QxUOrC9K4zcQz8dCY01zXsoscuMCNcqf5HheexAgQoYvHfEGtHaMxNVYem6vC8f4\n"
    "bys5tjezGKnxnMKEoJGjczBxMC8GCCsGAQUFBwEBBCMwITAfBggrBgEFBQcwAYYT\n"
    "aHR0cDovLzEyNy4wLjAuMTo5LzAdBgNVHQ4EFgQUac2C1+jpHJGsV8QoYYvIq0m4\n"
    "1bkwHwYDVR0jBBgwFoAUhtuXXad2373Pf+RQYfXtUlVqw+swCgYIKoZIzj0EAwID\n"
    "SQAwRgIhAOKLHBS3DnFpMnduFZaSeZN4Vp50W4/FUsXXFJF3m7ybAiEAhDzOz+Bi\n"
    "7tTvfLoKXLgya3n2YCiPHu06SRGN81Zf3Tw=\n"
    "-----END CERTIFICATE-----\n";

static sc_ocsp_staple_t *staple;

static X509 *pem(const char *text)
{
    BIO *b = BIO_new_mem_buf(text, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    return x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!staple) {
        X509 *ca = pem(ca_pem), *leaf = pem(leaf_pem);
        STACK_OF(X509) *chain = sk_X509_new_null();
        sk_X509_push(chain, ca);
        char why[160];
        staple = sc_ocsp_staple_new(leaf, chain, why, sizeof why);
        if (!staple)
            abort();
        sk_X509_pop_free(chain, X509_free);
        X509_free(leaf);
    }
    char err[256];
    int rc = sc_ocsp_staple_accept(staple, data, size, sc_wall_s(), err, sizeof err);
    unsigned char *der = NULL;
    long len = sc_ocsp_staple_copy(staple, sc_wall_s(), &der);
    if (rc == 0 && (len != (long)size || memcmp(der, data, size) != 0))
        abort(); /* what is stapled is exactly what was accepted, byte for byte */
    OPENSSL_free(der);
    return 0;
}
