# The offline recognizer's helper: pocketsphinx (the PyPI wheel, which bundles its US
# English model) behind a line protocol on stdin/stdout, started by stonepot-voice's
# `Pocketsphinx` and kept running. One helper holds one decoder and decodes one
# utterance (a "stream") at a time; the server keeps a small pool of helpers so guests
# can speak at once, and the processes run on separate cores.
#
# Start-up prints one JSON line: {"ready": true} or {"error": "..."}.
# Requests, each one JSON line:
#   {"stream": id, "op": "start", "words": [...], "partials": true, "cmn": "..."}
#   {"stream": id, "op": "audio", "bytes": N}   followed by N bytes of 16 kHz PCM16 mono
#   {"stream": id, "op": "end"}
# Answers, each one JSON line:
#   {"stream": id, "partial": "..."}            after an audio request, only when the
#                                               hypothesis changed (and partials asked for)
#   {"stream": id, "final": true, "text": "...", "confidence": null, "cmn": "..."}
#   {"stream": id, "error": "..."}              exactly one of these two answers `end`
# A stream that failed (no usable words, a decoding error) ignores its audio and answers
# `end` with the error, so both sides stay in step without restarting the decoder.
#
# The words become a grammar (any sequence of them), so the decoder only hears the
# tenant's menu and ordering words; words missing from the dictionary get a
# pronunciation from espeak-ng's phonemes. Grammars are cached per word set.
#
# The audio is decoded as it arrives with live cepstral mean normalisation: on espeak-ng
# and microphone audio with silence around it that hears better than normalising over
# the whole utterance (measured: see docs/VOICE.md), and it is what gives partials. The
# running mean adapts over an utterance or two, so a final answer carries it ("cmn") and
# the server starts a new decoder's first stream from the latest one.
import json
import subprocess
import sys

out = sys.stdout
inp = sys.stdin.buffer

# No lattice rescoring at the end of an utterance (`bestpath`, on by default): with a
# grammar of a few hundred words looping on itself the lattice is huge, and building it
# cost ~2.3 s of CPU per second of audio here (up to 5 s at `end_utt`, after the guest
# stopped talking); without it decoding costs ~0.07 s per second of audio, `end_utt`
# ~25 ms, and the test phrases are heard as well or better ("two" where the lattice
# chose "to"). Measured in docs/VOICE.md.


def say(obj):
    out.write(json.dumps(obj) + "\n")
    out.flush()


try:
    from pocketsphinx import Decoder
except Exception as e:  # noqa: BLE001 - reported to the server, which reports /health
    say({"error": "pocketsphinx is not installed: %s" % e})
    sys.exit(0)

# IPA (as espeak-ng --ipa writes it for en-us) to the CMU phones of the model; longest
# symbols first.
IPA = [
    ("aɪ", "AY"), ("aʊ", "AW"), ("eɪ", "EY"), ("oʊ", "OW"), ("ɔɪ", "OY"), ("tʃ", "CH"),
    ("dʒ", "JH"), ("ɑ", "AA"), ("æ", "AE"), ("ʌ", "AH"), ("ə", "AH"), ("ɐ", "AH"),
    ("ɚ", "ER"), ("ɝ", "ER"), ("ɜ", "ER"), ("ɔ", "AO"), ("ɛ", "EH"), ("ɪ", "IH"),
    ("ᵻ", "IH"), ("i", "IY"), ("ʊ", "UH"), ("u", "UW"), ("o", "OW"), ("e", "EH"),
    ("a", "AA"), ("b", "B"), ("d", "D"), ("f", "F"), ("ɡ", "G"), ("g", "G"), ("h", "HH"),
    ("k", "K"), ("l", "L"), ("ɫ", "L"), ("m", "M"), ("n", "N"), ("ŋ", "NG"), ("p", "P"),
    ("ɹ", "R"), ("r", "R"), ("s", "S"), ("ʃ", "SH"), ("t", "T"), ("ɾ", "T"), ("ʔ", "T"),
    ("θ", "TH"), ("ð", "DH"), ("v", "V"), ("w", "W"), ("j", "Y"), ("z", "Z"), ("ʒ", "ZH"),
]


def to_phones(ipa):
    res, i = [], 0
    ipa = ipa.strip()
    while i < len(ipa):
        for sym, ph in IPA:
            if ipa.startswith(sym, i):
                res.append(ph)
                i += len(sym)
                break
        else:
            i += 1  # stress, length and syllable marks
    return " ".join(res) if res else None


def espeak_ipa(text):
    try:
        return subprocess.run(
            ["espeak-ng", "-q", "--ipa", "-v", "en-us"], input=text.encode(),
            capture_output=True, timeout=30,
        ).stdout.decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - no espeak-ng: the words are left out
        return ""


def pronunciations(words):
    """CMU phones for each word, from one espeak-ng run (one word a line, one IPA line
    each); word by word when the lines do not line up."""
    if not words:
        return {}
    lines = [l for l in espeak_ipa("\n".join(words)).splitlines() if l.strip()]
    if len(lines) != len(words):
        lines = [espeak_ipa(w) for w in words]
    return {w: to_phones(l) for w, l in zip(words, lines)}


class Recognizer:
    def __init__(self, dec):
        self.dec = dec
        self.grammars = {}
        self.stream = None  # the stream being decoded
        self.error = None  # why it failed, answered at its end
        self.partials = False
        self.last = ""
        self.open = False  # between start_utt and end_utt

    def grammar(self, words):
        dec = self.dec
        key = tuple(sorted(set(words)))
        name = self.grammars.get(key)
        if name is not None:
            return name
        vocab = [w for w in key if dec.lookup_word(w) is not None]
        unknown = [w for w in key if dec.lookup_word(w) is None]
        # Added without rebuilding the active search each time (that costs ~0.25 s a
        # word); the grammar compiled below uses them.
        for w, p in pronunciations(unknown).items():
            if p is None:
                continue
            try:
                dec.add_word(w, p, False)
            except Exception:  # noqa: BLE001 - a word it cannot take is left out
                continue
            vocab.append(w)
        if not vocab:
            raise ValueError("no usable words in the vocabulary")
        name = "g%d" % len(self.grammars)
        dec.add_jsgf_string(name, "#JSGF V1.0;\ngrammar %s;\npublic <utt> = <w>+;\n<w> = %s;\n"
                            % (name, " | ".join(vocab)))
        self.grammars[key] = name
        return name

    def start(self, stream, words, partials, cmn):
        self.close()
        self.stream, self.error, self.partials, self.last = stream, None, partials, ""
        try:
            if cmn:
                self.dec.set_cmn(cmn)
            self.dec.activate_search(self.grammar(words))
            self.dec.start_utt()
            self.open = True
        except Exception as e:  # noqa: BLE001
            self.error = "%s" % e

    def audio(self, stream, pcm):
        if stream != self.stream or self.error is not None or not self.open:
            return
        try:
            self.dec.process_raw(pcm)
            if self.partials:
                hyp = self.dec.hyp()
                text = hyp.hypstr if hyp is not None else ""
                if text != self.last:
                    self.last = text
                    say({"stream": stream, "partial": text})
        except Exception as e:  # noqa: BLE001
            self.error = "decoding failed: %s" % e

    def end(self, stream):
        if stream != self.stream:
            say({"stream": stream, "error": "no such stream"})
            return
        self.stream = None
        if self.error is None and self.open:
            try:
                self.dec.end_utt()
                self.open = False
                hyp = self.dec.hyp()
                # `hyp.prob` is the hypothesis' posterior only after the lattice pass
                # (bestpath), which is off because it cost seconds per utterance; without
                # it pocketsphinx reports 1.0 for every hypothesis. Say "unknown" (null)
                # rather than a made-up certainty.
                text = "" if hyp is None else hyp.hypstr
                say({"stream": stream, "final": True, "text": text, "confidence": None,
                     "cmn": self.dec.get_cmn()})
                return
            except Exception as e:  # noqa: BLE001
                self.error = "decoding failed: %s" % e
        self.close()
        say({"stream": stream, "error": self.error or "the stream was not started"})

    def close(self):
        if self.open:
            try:
                self.dec.end_utt()
            except Exception:  # noqa: BLE001 - a fresh start_utt follows
                pass
            self.open = False


def main():
    try:
        dec = Decoder(samprate=16000, loglevel="FATAL", bestpath=False)
    except Exception as e:  # noqa: BLE001
        say({"error": "pocketsphinx failed to start: %s" % e})
        return
    rec = Recognizer(dec)
    say({"ready": True})
    while True:
        line = inp.readline()
        if not line:
            return
        try:
            req = json.loads(line)
            stream = req["stream"]
            op = req["op"]
            if op == "audio":
                n = int(req["bytes"])
                pcm = inp.read(n)
                if len(pcm) != n:
                    return
                rec.audio(stream, pcm)
            elif op == "start":
                rec.start(stream, [str(w) for w in req.get("words", [])],
                          bool(req.get("partials", True)), req.get("cmn"))
            elif op == "end":
                rec.end(stream)
            else:
                raise ValueError("unknown op %r" % op)
        except Exception as e:  # noqa: BLE001
            say({"error": "bad request: %s" % e})
            return  # the stream is out of step; the server restarts the helper


main()
