#!/bin/sh
# certbot deploy hook for spacecast: install it as
#   /etc/letsencrypt/renewal-hooks/deploy/spacecast-deploy-hook.sh   (mode 0755)
# certbot runs it after each successful renewal with RENEWED_LINEAGE=/etc/letsencrypt/live/NAME.
# It copies the new chain and key to where spacecast's user may read them (certbot keeps keys
# root-only), each through a temporary file and a rename so the server never reads half a file,
# then asks the server to load them (SIGHUP). Without the signal the server would still notice the
# changed files within a minute; open connections keep their certificate either way.
#
# Settings (environment, or edit the defaults):
#   SPACECAST_TLS_DIR   where tls_cert/tls_key point (fullchain.pem, privkey.pem)
#   SPACECAST_USER      the user spacecast runs as
#   SPACECAST_UNIT      its systemd unit (signalled with systemctl kill); or
#   SPACECAST_PIDFILE   a file holding its PID, when it is not run by systemd
set -eu
dir=${SPACECAST_TLS_DIR:-/etc/spacecast/tls}
user=${SPACECAST_USER:-spacecast}
unit=${SPACECAST_UNIT:-spacecast.service}
: "${RENEWED_LINEAGE:?run by certbot as a deploy hook}"

install -d -m 0750 -o root -g "$user" "$dir"
install -m 0644 -o root -g "$user" "$RENEWED_LINEAGE/fullchain.pem" "$dir/.fullchain.pem.new"
install -m 0640 -o root -g "$user" "$RENEWED_LINEAGE/privkey.pem" "$dir/.privkey.pem.new"
# the key first: for a moment the old certificate sits beside the new key, which the server
# refuses (keeping the old pair) rather than serve a mismatch; the next rename completes the pair
mv -f "$dir/.privkey.pem.new" "$dir/privkey.pem"
mv -f "$dir/.fullchain.pem.new" "$dir/fullchain.pem"

if [ -n "${SPACECAST_PIDFILE:-}" ]; then
  kill -HUP "$(cat "$SPACECAST_PIDFILE")"
else
  systemctl kill --signal=HUP "$unit"
fi
