"""mpv (Debian's 0.35) plays live.ogg: the tone comes out, with no gap, the first sound within 0.5 s
of connecting (#20 item 2: the header pages are padded to the 2 KiB libavformat probes first).
mpv's file output (ao=pcm) holds 65,536 samples before it writes, 1.4 s at 48 kHz: run it at
384 kHz so that buffer is 0.17 s, what a sound card's is."""
import sclib
import clientlib

clientlib.need("mpv", "ffmpeg")


def mpv(url, out):
    return ["mpv", "--no-config", "--really-quiet", "--no-video", "--ao=pcm", "--ao-pcm-file=" + out,
            "--audio-samplerate=384000", "--audio-channels=mono", "--audio-format=s16", url]


def main():
    res = sclib.Results()
    with clientlib.ToneSpace(440.0) as space:
        res.case("mpv plays live.ogg, first sound within 0.5 s", clientlib.check_player, space, "mpv", mpv, 4, 0.5)
    res.case("mpv's first PCM within 0.5 s on a silent mix", clientlib.check_first_pcm, "mpv", mpv, 0.5)
    res.finish()


if __name__ == "__main__":
    main()
