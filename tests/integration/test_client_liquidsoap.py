"""liquidsoap (Debian's 2.1) publishes with output.icecast in %opus, %vorbis and %mp3 and listeners
hear its sine (#20 item 5: Vorbis and MP3 sources are decoded and mixed). liquidsoap refuses root
unless told: the script allows it (the test may run as root in CI)."""
import subprocess

import sclib
import clientlib

clientlib.need("liquidsoap", "ffmpeg")


def liquidsoap(encoder):
    def start(server, sid, token):
        script = ('settings.init.allow_root.set(true)\n'
                  'output.icecast(%s, host="127.0.0.1", port=%d, password="%s", mount="/spaces/%s/source", sine(660.))'
                  % (encoder, server.port, token, sid))
        return subprocess.Popen(["liquidsoap", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return start


def main():
    res = sclib.Results()
    for enc in ("%opus", "%vorbis", "%mp3"):
        res.case("liquidsoap %s is heard" % enc, clientlib.check_publisher, "liquidsoap", liquidsoap(enc), 660)
    res.finish()


if __name__ == "__main__":
    main()
