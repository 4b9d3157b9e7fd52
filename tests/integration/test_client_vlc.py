"""VLC (Debian's cvlc 3.0) plays live.ogg: the tone comes out, with no gap, the first sound within
0.5 s of connecting. VLC refuses to run as root, so it runs as an unprivileged user (#20 items 1, 2:
header pages numbered 0 and 1; VLC's Ogg demuxer reads 8,500 bytes at a time, so it gets a burst)."""
import sclib
import clientlib

clientlib.need("cvlc", "ffmpeg")


def vlc(url, out):
    return ["cvlc", "-q", "--no-video", "--aout", "afile", "--audiofile-file", out, url]


def main():
    res = sclib.Results()
    with clientlib.ToneSpace(440.0) as space:
        res.case("cvlc plays live.ogg, first sound within 0.5 s", clientlib.check_player, space, "cvlc", vlc, 4,
                 0.5, clientlib.unprivileged_user())
    res.finish()


if __name__ == "__main__":
    main()
