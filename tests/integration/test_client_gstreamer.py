"""GStreamer (Debian's 1.22): gst-launch plays live.ogg (souphttpsrc, decodebin), the tone comes out
without a gap and the first sound within 0.5 s of connecting, also on a silent mix (typefind reads
its first 2 KiB before it picks a demuxer: #20 item 2); and shout2send (libshout 2.4) publishes Opus
and Vorbis (#20 items 3, 5: libshout's first request is OPTIONS *)."""
import subprocess

import sclib
import clientlib

clientlib.need("gst-launch-1.0", "ffmpeg")


def gst(url, out):
    return ["gst-launch-1.0", "-q", "souphttpsrc", "location=" + url, "!", "decodebin", "!", "audioconvert", "!",
            "audioresample", "!", "audio/x-raw,format=S16LE,channels=1,rate=48000", "!", "wavenc", "!",
            "filesink", "buffer-mode=unbuffered", "location=" + out]


def shout2send(encoder):
    def start(server, sid, token):
        return subprocess.Popen(["gst-launch-1.0", "-q", "audiotestsrc", "freq=660", "is-live=true", "!",
                                 "audioconvert", "!", "audioresample", "!", encoder, "!", "oggmux", "!", "shout2send",
                                 "ip=127.0.0.1", "port=%d" % server.port, "mount=/spaces/%s/source" % sid,
                                 "password=" + token], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return start


def main():
    res = sclib.Results()
    with clientlib.ToneSpace(440.0) as space:
        res.case("gst-launch plays live.ogg, first sound within 0.5 s", clientlib.check_player, space, "gst", gst,
                 4, 0.5)
    res.case("gst-launch's first PCM within 0.5 s on a silent mix", clientlib.check_first_pcm, "gst", gst, 0.5)
    res.case("shout2send publishes Ogg/Opus", clientlib.check_publisher, "shout2send-opus", shout2send("opusenc"), 660)
    res.case("shout2send publishes Ogg/Vorbis", clientlib.check_publisher, "shout2send-vorbis", shout2send("vorbisenc"),
             660)
    res.finish()


if __name__ == "__main__":
    main()
