#!/usr/bin/env python3
"""The offline recognizer's helper measured on its own: espeak-ng phrases (with the
voice activity detector's 320 ms pre-roll and 560 ms hangover of silence around them)
decoded with the demo restaurant's vocabulary, one after another on one helper.

Reports per phrase what was heard and the latency from the end of the audio to the final
transcript, then word accuracy over the set, CPU per second of audio, the helper's load
time and resident memory. Two protocols:

  --protocol stream  (today's recognizer.py) audio sent in 160 ms batches at real time
                     as the server does, then `end`: the latency is the final's.
  --protocol whole   (the helper before streaming) the whole utterance in one request
                     after it ended: the latency is its decoding.

  python3 bench/offline_stt.py --helper crates/voice/src/recognizer.py --protocol stream
  git show 18bbd00:crates/voice/src/recognizer.py > /tmp/old_recognizer.py
  python3 bench/offline_stt.py --helper /tmp/old_recognizer.py --protocol whole

The vocabulary is built as stonepot-voice's `vocabulary()` builds it (ordering words,
then the words of the demo menu's sections, items, aliases and modifiers), read from
the sources with regular expressions.
"""
import argparse
import io
import json
import os
import re
import subprocess
import sys
import time
import warnings
import wave

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # deprecated in 3.11, gone in 3.13: this measurement runs on 3.11/3.12

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PHRASES = [
    "I'd like a margherita pizza",
    "two margherita pizzas please",
    "pepperoni pizza",
    "can I have two pepperoni pizzas and a tiramisu",
    "yes please",
    "three espressos",
    "I want to add a caesar salad",
    "that's all thank you",
    "one lasagna and two lemonades",
    "remove the garlic bread",
]


def vocabulary():
    stt = open(os.path.join(ROOT, "crates/voice/src/stt.rs")).read()
    order = re.search(r'const ORDER_WORDS: &str = "(.*?)";', stt, re.S).group(1)
    demo = open(os.path.join(ROOT, "crates/domain/src/demo.rs")).read()
    menu = demo[demo.index("pub fn restaurant_menu"):demo.index("fn client(")]
    phrases = re.findall(r'\("[a-z-]+", "([^"]+)"\)', menu)  # sections
    phrases += re.findall(r'name: "([^"]+)"', menu)
    for group in re.findall(r"aliases: &\[(.*?)\]", menu):
        phrases += re.findall(r'"([^"]+)"', group)
    phrases += re.findall(r'm\("[^"]*", "([^"]+)"', menu)
    words, seen = [], set()
    for p in order.replace("\\", " ").split() + [
        w for p in phrases for w in re.split(r"[^A-Za-z']", p)
    ]:
        w = p.strip("'").lower()
        if w and re.fullmatch(r"[a-z']+", w) and w not in seen:
            seen.add(w)
            words.append(w)
    return words


def speech(text):
    out = subprocess.run(["espeak-ng", "--stdout", "-v", "en-us", "-s", "160", text],
                         capture_output=True, check=True).stdout
    w = wave.open(io.BytesIO(out))
    pcm, _ = audioop.ratecv(w.readframes(w.getnframes()), 2, 1, w.getframerate(), 16000, None)
    return bytes(10240) + pcm + bytes(17920)


def proc_cpu(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def norm(text):
    return re.sub(r"[^a-z' ]", " ", text.lower().replace("margarita", "margherita")).split()


def word_errors(ref, hyp):
    """Levenshtein distance over words."""
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--helper", default=os.path.join(ROOT, "crates/voice/src/recognizer.py"))
    ap.add_argument("--protocol", choices=["stream", "whole"], default="stream")
    a = ap.parse_args()
    words = vocabulary()
    audio = [speech(p) for p in PHRASES]
    t = time.time()
    p = subprocess.Popen([sys.executable, a.helper], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    hello = json.loads(p.stdout.readline())
    assert hello.get("ready"), hello
    print("helper: %d words; loaded in %.2f s, %.0f MB resident" % (len(words), time.time() - t, rss_mb(p.pid)))

    def send(obj, data=b""):
        p.stdin.write((json.dumps(obj) + "\n").encode() + data)
        p.stdin.flush()

    errors = total = 0
    seconds = sum(len(x) for x in audio) / 32000
    cpu0 = proc_cpu(p.pid)
    latencies = []
    for n, (phrase, pcm) in enumerate(zip(PHRASES, audio), 1):
        if a.protocol == "whole":
            t = time.time()
            send({"words": words, "bytes": len(pcm)}, pcm)
            r = json.loads(p.stdout.readline())
        else:
            send({"stream": n, "op": "start", "words": words})
            for i in range(0, len(pcm), 5120):
                send({"stream": n, "op": "audio", "bytes": len(pcm[i:i + 5120])}, pcm[i:i + 5120])
                time.sleep(0.16)
            t = time.time()
            send({"stream": n, "op": "end"})
            while True:
                r = json.loads(p.stdout.readline())
                if "final" in r or "error" in r:
                    break
        latencies.append((time.time() - t) * 1000)
        heard = r.get("text", "")
        e = word_errors(norm(phrase), norm(heard))
        errors, total = errors + e, total + len(norm(phrase))
        print("  %-48s %7.0f ms  %-45s %d/%d words wrong" % (phrase, latencies[-1], heard, e, len(norm(phrase))))
    cpu = proc_cpu(p.pid) - cpu0
    print("word accuracy %.0f%% (%d errors in %d words); end of audio -> final: median %.0f ms, max %.0f ms"
          % (100 * (1 - errors / total), errors, total, sorted(latencies)[len(latencies) // 2], max(latencies)))
    print("decoding CPU %.0f ms per second of audio; %.0f MB resident after" % (cpu / seconds * 1000, rss_mb(p.pid)))
    p.stdin.close()
    p.wait()


main()
