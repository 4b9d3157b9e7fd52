/* api_pin.c — PUT/DELETE /api/spaces/{id}/pin (host, cohost): the pinned link every listener's
 * page shows, and the details carry as `pin`. Only http(s) links (api_params.c); the web app
 * shows the text as text and the link as a link, never as markup. */
#include "spacecast/api.h"
#include "spacecast/api_util.h"
#include "spacecast/common.h"

static void set(sc_req_t *r, sc_space_t *s, const char *url, const char *text, json_t *body)
{
    sc_space_rc_t rc = sc_space_set_pin(s, url, text);
    int pinned = url[0] != 0;
    json_decref(body); /* url and text point into it */
    if (rc == SC_SPACE_ESTORE) {
        sc_api_not_stored(r, "shown now, but it could not be stored yet: send this again");
        return;
    }
    if (pinned) {
        json_t *d = sc_space_json(s);
        sc_http_respond_json(r, 200, json_pack("{s:O}", "pin", json_object_get(d, "pin")), NULL);
        json_decref(d);
    } else {
        sc_http_respond(r, 204, NULL, NULL, 0, NULL);
    }
}

void sc_api_pin_put(sc_req_t *r)
{
    sc_space_t *s;
    json_t *b = sc_api_change_body(r, SC_ROLE_COHOST, &s);
    if (!b)
        return;
    const char *url, *text, *bad;
    if (sc_api_pin_params(b, &url, &text, &bad) != 0) {
        json_decref(b);
        sc_http_error(r, 400, "invalid", bad);
        return;
    }
    set(r, s, url, text, b);
}

void sc_api_pin_delete(sc_req_t *r)
{
    sc_space_t *s = sc_api_space(r);
    sc_token_claims_t claims;
    if (!s || sc_api_auth(r, s, SC_ROLE_COHOST, &claims) != 0)
        return;
    set(r, s, "", "", NULL);
}
