#!/bin/sh
# Seeds the fuzz corpora from the RFC 4475 torture messages and the golden
# messages. Run from anywhere: `fuzz/seed.sh`. The corpora (fuzz/corpus/)
# are not committed; libFuzzer adds what it finds there.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data="$here/../crates/sip/tests/data"
mkdir -p "$here/corpus/parse_datagram" "$here/corpus/stream_framer"
count=0
for file in "$data"/rfc4475/*.dat "$data"/golden/*.sip; do
    name=$(basename "$file")
    # parse_datagram: the message as one datagram.
    cp "$file" "$here/corpus/parse_datagram/$name"
    # stream_framer: byte 0 = how many read sizes follow (2), then the read
    # sizes minus one (7 and 32 bytes), then the stream: the message twice,
    # pipelined, with a CRLF ping between.
    {
        printf '\002\006\037'
        cat "$file"
        printf '\r\n\r\n'
        cat "$file"
    } > "$here/corpus/stream_framer/$name"
    count=$((count + 1))
done
echo "seeded $count messages into $here/corpus/{parse_datagram,stream_framer}"
