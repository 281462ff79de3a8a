# The offline recognizer's helper: pocketsphinx (the PyPI wheel, which bundles its US
# English model) behind a line protocol on stdin/stdout, started once and kept running
# by stonepot-voice's `Pocketsphinx`.
#
# Start-up prints one JSON line: {"ready": true} or {"error": "..."}.
# Each request is one JSON line {"words": [...], "bytes": N} followed by N bytes of
# 16 kHz PCM16 mono; each answer is one JSON line {"text": "...", "confidence": p} or
# {"error": "..."}. The words become a grammar (any sequence of them), so the decoder
# only hears the tenant's menu and ordering words; words missing from the dictionary
# get a pronunciation from espeak-ng's phonemes.
import json
import subprocess
import sys

out = sys.stdout
inp = sys.stdin.buffer


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


def main():
    try:
        dec = Decoder(samprate=16000, loglevel="FATAL")
    except Exception as e:  # noqa: BLE001
        say({"error": "pocketsphinx failed to start: %s" % e})
        return
    grammars = {}
    say({"ready": True})
    while True:
        line = inp.readline()
        if not line:
            return
        try:
            req = json.loads(line)
            n = int(req["bytes"])
            words = [str(w) for w in req.get("words", [])]
        except Exception as e:  # noqa: BLE001
            say({"error": "bad request: %s" % e})
            return  # the stream is out of step; the server restarts the helper
        audio = inp.read(n)
        if len(audio) != n:
            return
        try:
            key = tuple(sorted(set(words)))
            name = grammars.get(key)
            if name is None:
                vocab = [w for w in key if dec.lookup_word(w) is not None]
                unknown = [w for w in key if dec.lookup_word(w) is None]
                # Added without rebuilding the active search each time (that costs
                # ~0.25 s a word); the grammar compiled below uses them.
                for w, p in pronunciations(unknown).items():
                    if p is None:
                        continue
                    try:
                        dec.add_word(w, p, False)
                    except Exception:  # noqa: BLE001 - a word it cannot take is left out
                        continue
                    vocab.append(w)
                if not vocab:
                    say({"error": "no usable words in the vocabulary"})
                    continue
                name = "g%d" % len(grammars)
                dec.add_jsgf_string(name, "#JSGF V1.0;\ngrammar %s;\npublic <utt> = <w>+;\n<w> = %s;\n"
                                    % (name, " | ".join(vocab)))
                grammars[key] = name
            dec.activate_search(name)
            dec.start_utt()
            dec.process_raw(audio, full_utt=True)
            dec.end_utt()
            hyp = dec.hyp()
            if hyp is None:
                say({"text": "", "confidence": 0.0})
            else:
                say({"text": hyp.hypstr, "confidence": float(dec.get_logmath().exp(hyp.prob))})
        except Exception as e:  # noqa: BLE001
            say({"error": "decoding failed: %s" % e})


main()
