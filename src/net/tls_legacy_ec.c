/* tls_legacy_ec.c — for a process that only dials (the load generator): the EC public keys in
 * the certificates a server sends are decoded by OpenSSL's built-in EC code instead of its
 * provider decoder.
 *
 * Why: OpenSSL 3.0 (Debian 12's) decodes each certificate's public key by building a decoder
 * context from every provider's decoders and key managers, uncached: ~1.15 M instructions per
 * certificate against ~0.24 M by the built-in EC_KEY decoder (callgrind, a P-256 certificate;
 * openssl/openssl#17950 and #19119, improved in 3.1). A client handshake parses the leaf and the
 * chain, so this was ~45 % of the load generator's instructions per handshake. OpenSSL takes
 * its built-in decoder only when an ENGINE claims the key type (x509_pubkey_decode), so we
 * register one that hands back OpenSSL's own EC method, unchanged: the same checks and the
 * same ECDSA code verify the chain and CertificateVerify; only the decoding setup is skipped.
 * The ENGINE API is deprecated in 3.0, hence its own file. Process-wide: not for the server. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "spacecast/tls.h"

#include <openssl/engine.h>
#include <openssl/evp.h>

static ENGINE *legacy_ec;
static EVP_PKEY_METHOD *legacy_ec_meth; /* a copy of OpenSSL's built-in EC method, owned by the ENGINE */
static const int legacy_ec_nids[] = { EVP_PKEY_EC };

static int legacy_ec_pkey_meths(ENGINE *e, EVP_PKEY_METHOD **meth, const int **nids, int nid)
{
    (void)e;
    if (!meth) {
        *nids = legacy_ec_nids;
        return 1;
    }
    *meth = nid == EVP_PKEY_EC ? legacy_ec_meth : NULL;
    return *meth != NULL;
}

int sc_tls_client_builtin_ec(void)
{
    if (legacy_ec)
        return 0;
    const EVP_PKEY_METHOD *builtin = EVP_PKEY_meth_find(EVP_PKEY_EC);
    if (!builtin || !(legacy_ec_meth = EVP_PKEY_meth_new(EVP_PKEY_EC, 0)))
        return -1;
    EVP_PKEY_meth_copy(legacy_ec_meth, builtin);
    ENGINE *e = ENGINE_new();
    if (!e || !ENGINE_set_pkey_meths(e, legacy_ec_pkey_meths)) {
        ENGINE_free(e);
        EVP_PKEY_meth_free(legacy_ec_meth);
        legacy_ec_meth = NULL;
        return -1;
    }
    /* From here the ENGINE owns the method: freeing it frees a dynamic (EVP_PKEY_meth_new) one. */
    if (!ENGINE_set_id(e, "spacecast-builtin-ec") || !ENGINE_set_name(e, "OpenSSL's built-in EC keys")
        || !ENGINE_register_pkey_meths(e)) {
        ENGINE_free(e);
        legacy_ec_meth = NULL;
        return -1;
    }
    legacy_ec = e;
    return 0;
}

void sc_tls_client_builtin_ec_end(void)
{
    if (!legacy_ec)
        return;
    ENGINE_unregister_pkey_meths(legacy_ec);
    ENGINE_free(legacy_ec); /* and the method */
    legacy_ec = NULL;
    legacy_ec_meth = NULL;
}
