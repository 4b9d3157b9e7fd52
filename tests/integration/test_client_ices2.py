"""ices2 (Debian's 2.0.3, libshout 2.4) publishes Ogg/Vorbis, its only codec, from PCM on its stdin
and listeners hear the tone (#20 items 3 and 5: libshout's OPTIONS *, Vorbis decoded and mixed;
ices2 starts a new chained Vorbis stream on a metadata update, which the decoder follows)."""
import os
import shutil
import subprocess
import tempfile

import sclib
import clientlib

clientlib.need("ices2", "ffmpeg")

CONFIG = """<?xml version="1.0"?>
<ices><background>0</background><logpath>%(dir)s</logpath><logfile>ices.log</logfile><loglevel>3</loglevel>
<consolelog>1</consolelog>
<stream><metadata><name>spacecast test</name></metadata>
<input><module>stdinpcm</module><param name="rate">44100</param><param name="channels">1</param></input>
<instance><hostname>127.0.0.1</hostname><port>%(port)d</port><password>%(token)s</password>
<mount>/spaces/%(sid)s/source</mount>
<encode><quality>2</quality><samplerate>44100</samplerate><channels>1</channels></encode></instance>
</stream></ices>"""


def ices2(server, sid, token):
    d = tempfile.mkdtemp(prefix="sc-ices2-")
    cfg = os.path.join(d, "ices.xml")
    with open(cfg, "w") as f:
        f.write(CONFIG % {"dir": d, "port": server.port, "token": token, "sid": sid})
    pcm = subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i",
                            "sine=f=660:d=20:sample_rate=44100", "-f", "s16le", "-ac", "1", "-"],
                           stdout=subprocess.PIPE)
    p = subprocess.Popen(["ices2", cfg], stdin=pcm.stdout, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    pcm.stdout.close()  # ices2 holds the pipe; ffmpeg ends when ices2 does
    p.cleanup = lambda: (pcm.kill(), pcm.wait(), shutil.rmtree(d, ignore_errors=True))
    return p


def test_ices2():
    procs = []

    def start(server, sid, token):
        procs.append(ices2(server, sid, token))
        return procs[-1]
    try:
        clientlib.check_publisher("ices2", start, 660)
    finally:
        for p in procs:
            p.cleanup()


def main():
    res = sclib.Results()
    res.case("ices2 publishes Ogg/Vorbis and is heard", test_ices2)
    res.finish()


if __name__ == "__main__":
    main()
