"""MPlayer (Debian's 1.5) plays live.ogg: the tone comes out, with no gap, the first sound within
0.5 s of connecting (#20 item 1: it hung, and -nocache crashed, on header pages numbered like the
live page). Played with -nocache, as the README says: MPlayer's default cache waits for 64 KB
(16 s at 32 kbit/s) before it plays anything, from any server."""
import sclib
import clientlib

clientlib.need("mplayer", "ffmpeg")


def mplayer(url, out):
    return ["mplayer", "-nolirc", "-really-quiet", "-nocache", "-vo", "null", "-ao", "pcm:file=" + out, url]


def main():
    res = sclib.Results()
    with clientlib.ToneSpace(440.0) as space:
        res.case("mplayer -nocache plays live.ogg, first sound within 0.5 s", clientlib.check_player, space,
                 "mplayer", mplayer, 4, 0.5)
    res.finish()


if __name__ == "__main__":
    main()
