#!/usr/bin/env bash
# Makes the demo clinic's prompts: 8 kHz mono 16-bit PCM WAV, the format
# `frontdesk check` requires and the media crate plays without resampling.
#
# Needs espeak-ng (speech) and sox (resampling, hold music). Run it from
# anywhere; it writes next to itself. The WAVs are committed, so this only
# needs running again after a wording change:
#
#     dialplans/prompts/make-prompts.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
command -v espeak-ng >/dev/null || { echo "make-prompts: espeak-ng is not installed" >&2; exit 1; }
command -v sox >/dev/null || { echo "make-prompts: sox is not installed" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The output format every prompt must have.
format=(-r 8000 -c 1 -b 16 -e signed-integer)

# say NAME TEXT: speak TEXT into NAME.wav (US English voice, calm pace),
# resample to 8 kHz, trim the synthesiser's leading silence, normalise.
say() {
    local name="$1" text="$2"
    espeak-ng -v en-us -s 150 -w "$work/$name.raw.wav" "$text"
    sox "$work/$name.raw.wav" "${format[@]}" "$name.wav" \
        silence 1 0.02 0.5% gain -n -3
}

say emergency-notice "If this is a medical emergency, hang up and dial 9 1 1."
say main-menu "Thank you for calling Riverside Family Health. \
For the front desk, press 1. For cardiology, press 2. For pediatrics, press 3. \
For dermatology, press 4. For orthopedics, press 5. For urgent care, press 9. \
To reach the front desk at any time, press 0."
say invalid-choice "Sorry, that is not a valid choice."
say after-hours "Riverside Family Health is closed right now. \
Our hours are Monday to Friday, 8 A M to 6 P M, and Saturday, 9 A M to 1 P M. \
Please hold for the nurse line."
say please-hold "Please hold. The next available person will be with you shortly."
say call-back-later "We are sorry, everyone is still busy. Please call back later. Goodbye."
say you-are-caller-number "You are caller number"
say most-callers-reach-someone-within "Most callers reach someone within"
say minutes "minutes."

# Callbacks (a queue's `callback = { … }`, issue 22).
say callback-offer "To keep your place in line and have us call you back, press 1."
say callback-number "To be called back at the number you are calling from, press pound. \
To use another number, enter it now, then press pound."
say callback-accepted "Thank you. You keep your place in line, and we will call you back at that number when it is your turn. Goodbye."
say callback-refused "Sorry, we cannot call that number back. Please stay on the line."
# The whisper the agent hears before the patient is dialed: the default,
# and one per demo department (a queue's `callback = { whisper = … }`).
say callback-whisper "Callback. The patient is being called now."
for department in front-desk cardiology pediatrics dermatology orthopedics urgent-care nurse-line; do
    say "callback-whisper-$department" "Callback, ${department//-/ }."
done
# Voicemail ([voicemail]): the greeting, then a 1 kHz tone of 0.4 s after
# which recording starts.
say voicemail-greeting "Sorry, nobody can take your call right now. \
Please leave your name, your number and a short message after the tone, \
and we will call you back. Press the pound key when you are done."
sox -n "${format[@]}" voicemail-beep.wav synth 0.4 sine 1000 fade q 0.02 0.4 0.02 gain -n -6

# Agent feature codes ([features]): confirmations and "what's waiting".
say agent-away "You are away. No calls will be offered to you."
say agent-available "You are available for calls."
say callers-waiting "Callers waiting in your queues:"

# Speech menus (issue 25, `speech = { … }` in a menu, `[speech]`): a menu
# prompt that says callers may say it or press it (naming the phrases the
# recogniser tells apart best: BENCHMARKS.md, "Speech intent"), the keys
# fall-back, and a "did you say …?" confirm per department.
say speech-main-menu "Thank you for calling Riverside Family Health. \
Say what you need, or press a key. \
For an appointment or the front desk, say appointment, or press 1. \
For cardiology, say cardiology, or press 2. For pediatrics, say pediatrics, or press 3. \
For dermatology, say dermatology, or press 4. For orthopedics, say orthopedic, or press 5. \
For urgent care, say urgent care, or press 9."
say speech-use-keys "Sorry, I could not take that by voice. Please use your keypad."
for department in front-desk cardiology pediatrics dermatology orthopedics urgent-care; do
    say "confirm-$department" "Did you say ${department//-/ }? Press 1 for yes."
done

digits=(zero one two three four five six seven eight nine)
for n in "${!digits[@]}"; do
    say "digit-$n" "${digits[$n]}"
done

# Hold music: a gentle C - A minor - F - G progression of soft sine chords,
# each 3 s with a slow swell and fade, played twice (24 s). Made from sox's
# synthesiser, so it is ours and royalty-free.
chord() {
    local name="$1"; shift
    local tones=()
    for f in "$@"; do tones+=(sine "$f"); done
    sox -n "${format[@]}" "$work/$name.wav" synth 3 "${tones[@]}" \
        remix - fade q 0.6 3 0.9 gain -n -14
}
chord c 261.63 329.63 392.00 523.25
chord am 220.00 261.63 329.63 440.00
chord f 174.61 220.00 261.63 349.23
chord g 196.00 246.94 293.66 392.00
sox "$work"/{c,am,f,g,c,am,f,g}.wav "${format[@]}" hold-music.wav

echo "make-prompts: wrote $(ls -1 "$here"/*.wav | wc -l) prompts to $here"
