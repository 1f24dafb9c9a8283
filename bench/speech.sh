#!/usr/bin/env bash
# Speech intent (issue 25): accuracy, decode time and the decoder's speed
# on synthesised calls. Makes the utterances with espeak-ng and sox (two
# voices, two speeds, each clean and with white noise; 8 kHz mono 16-bit,
# as a call's G.711 decodes to), decodes each with the grammar of the demo
# menu's phrases (crates/speech/examples/decode.rs, the recogniser's own
# code), and prints the confusion table, p50/p90 of the decode time and
# the real-time factor.
#
#     bench/speech.sh            # the model's 16 kHz, upsampled (what runs)
#     SPEECH_RATE=8k bench/speech.sh   # the 8 kHz audio as it is
set -euo pipefail
cd "$(dirname "$0")/.."
model=${SPEECH_MODEL:-/usr/share/pocketsphinx/model/en-us}
work=$(mktemp -d)
mkdir "$work/raw"
trap 'rm -rf "$work"' EXIT
format=(-r 8000 -c 1 -b 16 -e signed-integer)
# expected-option|text: the demo menu's options (crates/ivr/tests/speech.rs);
# "-" is on no list and must fall back to keys.
utterances=(
  "1|front desk" "1|reception please"
  "2|cardiology" "2|heart doctor" "2|cardiologist"
  "3|pediatrics" "3|my daughter" "3|my son is sick"
  "4|dermatology" "4|skin"
  "5|orthopedic" "5|my knee"
  "9|urgent care"
  "-|banana bread" "-|what is the weather"
)
n=0
for entry in "${utterances[@]}"; do
  for voice in en-us en-us+f3; do
    for speed in 130 170; do
      n=$((n + 1))
      base="$work/$(printf %03d $n)__${entry%%|*}"
      espeak-ng -v "$voice" -s "$speed" -w "$work/raw/u.wav" "${entry#*|}"
      sox "$work/raw/u.wav" "${format[@]}" "$base.wav"
      sox "$base.wav" -p synth whitenoise vol 0.02 | sox -m "$base.wav" - "${base}n.wav"
    done
  done
done
phrases="front desk|reception|cardiology|heart|cardiologist|pediatrics|my son|my daughter|child|dermatology|skin|rash|orthopedic|bones|knee|urgent care"
cargo build -q --release -p speech --example decode
target=${CARGO_TARGET_DIR:-target}
"$target/release/examples/decode" "$model" "$phrases" "$work"/*.wav > "$work/out.tsv"

python3 - "$work/out.tsv" <<'PY'
import sys, re, statistics
options = {"1": ["front desk", "reception"], "2": ["cardiology", "heart", "cardiologist"],
           "3": ["pediatrics", "my son", "my daughter", "child"], "4": ["dermatology", "skin", "rash"],
           "5": ["orthopedic", "bones", "knee"], "9": ["urgent care"]}
def choose(text):
    words = " " + " ".join(re.findall(r"[a-z0-9]+", text.lower())) + " "
    for option in sorted(options):
        if any(" " + p + " " in words for p in options[option]):
            return option
    return "-"
rows, times, confusion = [], [], {}
for line in open(sys.argv[1]):
    path, text, conf, took = line.rstrip("\n").split("\t")
    expected = path.rsplit("__", 1)[1].split(".")[0].rstrip("n")
    got = choose(text)
    ms = float(took[:-2]) if took.endswith("ms") else float(took[:-1]) * 1000 if took.endswith("s") else float(took[:-2]) / 1000
    times.append(ms)
    confusion[(expected, got)] = confusion.get((expected, got), 0) + 1
    rows.append(expected == got)
labels = sorted({e for e, _ in confusion} | {g for _, g in confusion})
print(f"utterances: {len(rows)}, right: {sum(rows)} ({100*sum(rows)/len(rows):.1f} %)")
print("| said \\ chosen | " + " | ".join(labels) + " |")
print("|---" * (len(labels) + 1) + "|")
for e in labels:
    print(f"| {e} | " + " | ".join(str(confusion.get((e, g), "")) for g in labels) + " |")
times.sort()
q = lambda p: times[min(len(times) - 1, int(p * len(times)))]
print(f"decode ms: p50 {q(0.5):.1f}, p90 {q(0.9):.1f}, max {times[-1]:.1f}")
PY
