/* wav.c — RIFF/WAVE: walk the chunks, take "fmt " and "data", refuse anything we would play
 * wrongly rather than guess. */
#include "spacecast/wav.h"
#include "spacecast/common.h"

#include <stdio.h>

struct sc_wav {
    FILE *f;
    sc_wav_info_t info;
    uint64_t pos; /* bytes of data read */
};

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

int sc_wav_parse(const uint8_t *p, size_t len, sc_wav_info_t *out, const char **why)
{
    memset(out, 0, sizeof *out);
    *why = NULL;
    if (len < 12 || memcmp(p, "RIFF", 4) != 0 || memcmp(p + 8, "WAVE", 4) != 0) {
        *why = "not a RIFF/WAVE file";
        return -1;
    }
    size_t off = 12;
    int have_fmt = 0;
    while (off + 8 <= len) {
        uint32_t csize = le32(p + off + 4);
        const uint8_t *body = p + off + 8;
        if (!memcmp(p + off, "fmt ", 4)) {
            if (csize < 16 || off + 8 + 16 > len) {
                *why = "truncated fmt chunk";
                return -1;
            }
            int fmt = le16(body);
            if (fmt == 0xFFFE && csize >= 40 && off + 8 + 40 <= len)
                fmt = le16(body + 24); /* WAVE_FORMAT_EXTENSIBLE: the subformat's first two bytes */
            out->format = fmt;
            out->channels = le16(body + 2);
            out->rate = (int)le32(body + 4);
            out->bits = le16(body + 14);
            have_fmt = 1;
        } else if (!memcmp(p + off, "data", 4)) {
            if (!have_fmt) {
                *why = "data before fmt";
                return -1;
            }
            out->data_off = off + 8;
            out->data_len = csize;
            break;
        }
        if (csize > UINT32_MAX - 9 || off + 8 + (uint64_t)csize + (csize & 1) > SIZE_MAX)
            break;
        off += 8 + (size_t)csize + (csize & 1); /* chunks are padded to even sizes */
    }
    if (!have_fmt || !out->data_off) {
        *why = "no fmt or data chunk in the first bytes";
        return -1;
    }
    if (!((out->format == 1 && (out->bits == 16 || out->bits == 24)) || (out->format == 3 && out->bits == 32))) {
        *why = "only 16/24-bit PCM or 32-bit float WAV is supported";
        return -1;
    }
    if (out->channels < 1 || out->channels > 2) {
        *why = "only mono or stereo WAV is supported";
        return -1;
    }
    if (out->rate != 8000 && out->rate != 12000 && out->rate != 16000 && out->rate != 24000 && out->rate != 48000) {
        *why = "the sample rate must be 8000, 12000, 16000, 24000 or 48000 Hz (resample with ffmpeg -ar 48000)";
        return -1;
    }
    return 0;
}

sc_wav_t *sc_wav_open(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "speak: cannot open %s\n", path);
        return NULL;
    }
    uint8_t head[65536];
    size_t n = fread(head, 1, sizeof head, f);
    sc_wav_t *w = sc_calloc(1, sizeof *w);
    const char *why;
    if (sc_wav_parse(head, n, &w->info, &why) != 0) {
        fprintf(stderr, "speak: %s: %s\n", path, why);
        fclose(f);
        free(w);
        return NULL;
    }
    w->f = f;
    sc_wav_rewind(w);
    return w;
}

int sc_wav_rate(const sc_wav_t *w) { return w->info.rate; }

void sc_wav_rewind(sc_wav_t *w)
{
    fseek(w->f, (long)w->info.data_off, SEEK_SET);
    w->pos = 0;
}

int sc_wav_read_mono(sc_wav_t *w, float *out, int n)
{
    int bps = w->info.bits / 8, ch = w->info.channels;
    size_t frame = (size_t)(bps * ch);
    uint8_t buf[960 * 2 * 4];
    if (n > 960)
        n = 960;
    uint64_t left = w->info.data_len - w->pos;
    size_t want = SC_MIN((size_t)n * frame, (size_t)(left / frame * frame));
    size_t got = fread(buf, 1, want, w->f);
    int frames = (int)(got / frame);
    w->pos += (uint64_t)frames * frame;
    for (int i = 0; i < frames; i++) {
        float sum = 0;
        for (int c = 0; c < ch; c++) {
            const uint8_t *s = buf + (size_t)i * frame + (size_t)c * (size_t)bps;
            float v;
            if (w->info.format == 3) {
                uint32_t u = le32(s);
                memcpy(&v, &u, sizeof v);
                if (v != v)
                    v = 0; /* NaN */
            } else if (bps == 2) {
                v = (float)(int16_t)le16(s) / 32768.0f;
            } else {
                int32_t x = (int32_t)((uint32_t)s[0] << 8 | (uint32_t)s[1] << 16 | (uint32_t)s[2] << 24) >> 8;
                v = (float)x / 8388608.0f;
            }
            sum += v;
        }
        out[i] = sum / (float)ch;
    }
    return frames;
}

void sc_wav_close(sc_wav_t *w)
{
    if (!w)
        return;
    fclose(w->f);
    free(w);
}
