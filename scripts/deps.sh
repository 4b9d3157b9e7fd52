#!/usr/bin/env bash
# Installs what spacecast needs from Debian, only what is missing. Used by `make` and .ci/run.
set -euo pipefail
PKGS=(build-essential cmake pkg-config clang
      libopus-dev libogg-dev libopusfile-dev libssl-dev libsqlite3-dev libwslay-dev libinih-dev
      libjansson-dev libcmocka-dev libavcodec-dev libavutil-dev libsrtp2-dev liburing-dev
      ffmpeg curl python3 wrk nginx-light icecast2 chromium
      libswresample-dev
      # the players and source clients people use, each driven by a test/integration/test_client_*.py
      vlc-bin vlc-plugin-base mpv mplayer gstreamer1.0-tools gstreamer1.0-plugins-base
      gstreamer1.0-plugins-good liquidsoap darkice ices2
      prometheus # promtool lints /metrics
      libnss3-tools # certutil: tests/browser/test_tls.mjs gives a Chromium our test CA (docs/tls.md)
      openssl # s_client -dtls1_2: test_whip's DTLS peer (the media peer stays put once DTLS began)
      # speech fidelity (bench/fidelity, test_speech_fidelity.py): numpy for STOI, real speech
      # (Allison's prompts, espeak-ng), callgrind for bench/space_cost.sh
      python3-numpy espeak-ng asterisk-core-sounds-en-g722 valgrind)
# node and npm may come from another source than Debian (then Debian's npm would conflict)
command -v node >/dev/null || PKGS+=(nodejs)
command -v npm >/dev/null || PKGS+=(npm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
