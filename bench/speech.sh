#!/usr/bin/env bash
# Speech intent (issue 25): accuracy, decode time and the pool's speed on
# synthesised calls. Makes the utterances with espeak-ng and sox (two
# voices, two speeds, each clean and with white noise from a fixed seed,
# `sox -R`; 8 kHz mono, through G.711 µ-law and back, as a call's audio
# reaches the recogniser), decodes each with the grammar of the demo
# menu's phrases (crates/speech/examples/decode.rs, the recogniser's own
# code), and prints the confusion table and p50/p90 of the decode time;
# then hands 200 utterances at once to pools of 1 and 2 workers
# (crates/speech/examples/load.rs).
#
#     bench/speech.sh                       # the grammar, upsampled to 16 kHz (what runs)
#     SPEECH_SEARCH=kws:-20 bench/speech.sh # keyword spotting, threshold 1e-20
#     SPEECH_RATE=8k bench/speech.sh        # the 8 kHz audio as it is (a copy of
#                                           # the model whose feat.params says 8 kHz)
#     SPEECH_LOAD=0 bench/speech.sh         # accuracy only
set -euo pipefail
cd "$(dirname "$0")/.."
model=${SPEECH_MODEL:-/usr/share/pocketsphinx/model/en-us}
work=$(mktemp -d)
mkdir "$work/raw" "$work/utt"
trap 'rm -rf "$work"' EXIT
format=(-r 8000 -c 1 -b 16 -e signed-integer)
# expected-option|text: the demo menu's options (dialplans/README.md,
# "Speech menus"); "-" is on no list and must fall back to keys.
utterances=(
  "1|appointment" "1|i need an appointment" "1|front desk"
  "2|cardiology" "2|heart doctor" "2|cardiologist"
  "3|pediatrics" "3|my daughter" "3|my son is sick"
  "4|dermatology" "4|a rash" "4|skin"
  "5|orthopedic" "5|bones"
  "9|urgent care"
  "-|banana bread"
)
n=0
for entry in "${utterances[@]}"; do
  for voice in en-us en-us+f3; do
    for speed in 130 170; do
      n=$((n + 1))
      base="$work/utt/$(printf %03d $n)__${entry%%|*}"
      espeak-ng -v "$voice" -s "$speed" -w "$work/raw/u.wav" "${entry#*|}"
      sox -R "$work/raw/u.wav" "${format[@]}" "$work/raw/clean.wav"
      sox -R "$work/raw/clean.wav" -p synth whitenoise vol 0.02 |
        sox -R -m "$work/raw/clean.wav" - -t raw -e u-law -r 8000 -c 1 "$work/raw/noisy.ul"
      sox -R "$work/raw/clean.wav" -t raw -e u-law -r 8000 -c 1 "$work/raw/clean.ul"
      sox -R -t raw -e u-law -r 8000 -c 1 "$work/raw/clean.ul" "${format[@]}" "$base.wav"
      sox -R -t raw -e u-law -r 8000 -c 1 "$work/raw/noisy.ul" "${format[@]}" "${base}n.wav"
    done
  done
done
phrases="appointment|front desk|reception|cardiology|heart|cardiologist|pediatrics|my son|my daughter|child|dermatology|skin|rash|orthopedic|bones|urgent care"
cargo build -q --release -p speech --example decode --example load
target=${CARGO_TARGET_DIR:-target}
decode_model=$model
if [ "${SPEECH_RATE:-}" = 8k ]; then
  # The decoder takes the model's feat.params over its own arguments
  # (-upperf 6800 > 4000 Hz refuses 8 kHz): a copy that says 3500 Hz.
  decode_model="$work/model8k"
  mkdir -p "$decode_model/en-us"
  ln -s "$model"/*.dict "$model"/*.bin "$decode_model/"
  ln -s "$model"/en-us/* "$decode_model/en-us/"
  rm "$decode_model/en-us/feat.params"
  sed 's/^-upperf .*/-upperf 3500/; s/^-nfilt .*/-nfilt 20/' "$model/en-us/feat.params" > "$decode_model/en-us/feat.params"
  echo >> "$decode_model/en-us/feat.params"
fi
"$target/release/examples/decode" "$decode_model" "$phrases" "$work"/utt/*.wav > "$work/out.tsv" 2> "$work/err.txt" ||
  { cat "$work/err.txt" >&2; exit 1; }

python3 - "$work/out.tsv" <<'PY'
import sys, re
options = {"1": ["appointment", "front desk", "reception"], "2": ["cardiology", "heart", "cardiologist"],
           "3": ["pediatrics", "my son", "my daughter", "child"], "4": ["dermatology", "skin", "rash"],
           "5": ["orthopedic", "bones"], "9": ["urgent care"]}
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
    ms = float(took[:-2]) if took.endswith("ms") else float(took[:-2]) / 1000 if took.endswith("µs") else float(took[:-1]) * 1000
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
if [ "${SPEECH_LOAD:-1}" != 0 ]; then
  for workers in 1 2; do
    "$target/release/examples/load" "$model" "$phrases" "$workers" 200 "$work"/utt/*.wav
  done
fi
