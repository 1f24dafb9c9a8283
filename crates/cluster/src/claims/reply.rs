//! Reading Redis's replies into our types. Redis is ours, but what it
//! hands back is still checked field by field: a garbled reply (another
//! program writing our keys, a version skew between nodes) is a
//! [`ReplyError`], never a panic and never a half-read change.

use domain::AgentId;
use redis::Value;

use super::error::ReplyError;
use super::types::{
    AgentChange, AgentHold, ChangeKind, Epoch, NodeId, RedisMillis, ScriptReply, Snapshot, StreamId,
};

/// The longest agent id we accept back from Redis, in bytes.
const MAX_AGENT_LEN: usize = 256;

fn bytes<'a>(value: &'a Value, what: &str) -> Result<&'a [u8], ReplyError> {
    match value {
        Value::BulkString(data) => Ok(data),
        Value::SimpleString(text) => Ok(text.as_bytes()),
        _ => Err(ReplyError::new(format!("{what}: not a string"))),
    }
}

fn number(value: &Value, what: &str) -> Result<u64, ReplyError> {
    match value {
        Value::Int(n) => {
            u64::try_from(*n).map_err(|_| ReplyError::new(format!("{what}: negative")))
        }
        other => decimal(bytes(other, what)?, what),
    }
}

/// A decimal `u64`: digits only, no sign, at most 20 of them.
fn decimal(text: &[u8], what: &str) -> Result<u64, ReplyError> {
    if text.is_empty() || text.len() > 20 || !text.iter().all(u8::is_ascii_digit) {
        return Err(ReplyError::new(format!("{what}: not a number")));
    }
    // Digits only, so the text is UTF-8; the value may still overflow.
    std::str::from_utf8(text)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| ReplyError::new(format!("{what}: out of range")))
}

fn array<'a>(value: &'a Value, what: &str) -> Result<&'a [Value], ReplyError> {
    match value {
        Value::Array(items) | Value::Set(items) => Ok(items),
        _ => Err(ReplyError::new(format!("{what}: not an array"))),
    }
}

fn node(value: &Value, what: &str) -> Result<NodeId, ReplyError> {
    let text = std::str::from_utf8(bytes(value, what)?)
        .map_err(|_| ReplyError::new(format!("{what}: not UTF-8")))?;
    NodeId::new(text).ok_or_else(|| ReplyError::new(format!("{what}: not a node name")))
}

fn agent(value: &Value, what: &str) -> Result<AgentId, ReplyError> {
    let data = bytes(value, what)?;
    if data.is_empty() || data.len() > MAX_AGENT_LEN {
        return Err(ReplyError::new(format!("{what}: empty or too long")));
    }
    let text =
        std::str::from_utf8(data).map_err(|_| ReplyError::new(format!("{what}: not UTF-8")))?;
    Ok(AgentId::new(text))
}

fn stream_id(value: &Value) -> Result<StreamId, ReplyError> {
    let text = bytes(value, "stream id")?;
    let dash = text
        .iter()
        .position(|&b| b == b'-')
        .ok_or_else(|| ReplyError::new("stream id: no '-'"))?;
    Ok(StreamId {
        millis: decimal(&text[..dash], "stream id")?,
        sequence: decimal(&text[dash + 1..], "stream id")?,
    })
}

fn field<'a, const N: usize>(items: &'a [Value], what: &str) -> Result<&'a [Value; N], ReplyError> {
    items
        .try_into()
        .map_err(|_| ReplyError::new(format!("{what}: {} items, {N} expected", items.len())))
}

/// The change script's reply.
pub(crate) fn parse_script_reply(value: &Value) -> Result<ScriptReply, ReplyError> {
    let items = array(value, "script reply")?;
    let (head, rest) = items
        .split_first()
        .ok_or_else(|| ReplyError::new("script reply: empty"))?;
    match bytes(head, "script reply")? {
        b"ok" => {
            let [epoch, until, at, seq] = field(rest, "ok")?;
            Ok(ScriptReply::Ok {
                epoch: Epoch(number(epoch, "epoch")?),
                until: RedisMillis(number(until, "until")?),
                at: RedisMillis(number(at, "at")?),
                seq: number(seq, "seq")?,
            })
        }
        b"taken" => {
            let [by, epoch, until] = field(rest, "taken")?;
            Ok(ScriptReply::Taken {
                by: node(by, "holder")?,
                epoch: Epoch(number(epoch, "epoch")?),
                until: RedisMillis(number(until, "until")?),
            })
        }
        b"stale" => {
            let [epoch] = field(rest, "stale")?;
            Ok(ScriptReply::Stale {
                epoch: Epoch(number(epoch, "epoch")?),
            })
        }
        b"lapsed" => {
            let [epoch] = field(rest, "lapsed")?;
            Ok(ScriptReply::Lapsed {
                epoch: Epoch(number(epoch, "epoch")?),
            })
        }
        b"behind" => {
            let [ahead, epoch] = field(rest, "behind")?;
            let ahead = std::str::from_utf8(bytes(ahead, "member")?)
                .ok()
                .filter(|text| text.len() <= 2 * NodeId::MAX_LEN)
                .ok_or_else(|| ReplyError::new("behind: not a member"))?;
            Ok(ScriptReply::Behind {
                ahead: ahead.to_string(),
                epoch: Epoch(number(epoch, "epoch")?),
            })
        }
        b"reaped" => {
            let [lapsed] = field(rest, "reaped")?;
            match number(lapsed, "reaped")? {
                0 => Ok(ScriptReply::Reaped(false)),
                1 => Ok(ScriptReply::Reaped(true)),
                _ => Err(ReplyError::new("reaped: not 0 or 1")),
            }
        }
        _ => Err(ReplyError::new("script reply: unknown status")),
    }
}

/// One stream entry: `[id, [field, value, ...]]`. Every field the script
/// writes must be there exactly once, `by` at most once (empty or absent:
/// `None`); others are ignored.
pub(crate) fn parse_entry(value: &Value) -> Result<AgentChange, ReplyError> {
    let [id, fields] = field(array(value, "entry")?, "entry")?;
    let id = stream_id(id)?;
    let fields = array(fields, "entry fields")?;
    if fields.len() % 2 != 0 {
        return Err(ReplyError::new("entry fields: odd count"));
    }
    let mut found: [Option<&Value>; 8] = [None; 8];
    const NAMES: [&[u8]; 8] = [
        b"seq", b"agent", b"node", b"epoch", b"kind", b"at", b"until", b"by",
    ];
    for pair in fields.chunks_exact(2) {
        let name = bytes(&pair[0], "field name")?;
        if let Some(slot) = NAMES.iter().position(|known| *known == name)
            && found[slot].replace(&pair[1]).is_some()
        {
            return Err(ReplyError::new("entry: a field twice"));
        }
    }
    let get = |slot: usize| {
        found[slot].ok_or_else(|| {
            ReplyError::new(format!(
                "entry: no field {}",
                String::from_utf8_lossy(NAMES[slot])
            ))
        })
    };
    let kind = ChangeKind::parse(bytes(get(4)?, "kind")?)
        .ok_or_else(|| ReplyError::new("kind: unknown"))?;
    let by = match found[7] {
        None => None,
        Some(value) if bytes(value, "by")?.is_empty() => None,
        Some(value) => Some(node(value, "by")?),
    };
    Ok(AgentChange {
        id,
        seq: number(get(0)?, "seq")?,
        agent: agent(get(1)?, "agent")?,
        node: node(get(2)?, "node")?,
        epoch: Epoch(number(get(3)?, "epoch")?),
        kind,
        at: RedisMillis(number(get(5)?, "at")?),
        until: RedisMillis(number(get(6)?, "until")?),
        by,
    })
}

/// `XREAD ... STREAMS key id` for one key: nil (nothing new) or
/// `[[key, [entry, ...]]]` (RESP3 may give a map `{key: [entry, ...]}`).
pub(crate) fn parse_xread(value: &Value) -> Result<Vec<AgentChange>, ReplyError> {
    let entries = match value {
        Value::Nil => return Ok(Vec::new()),
        Value::Map(streams) => match streams.as_slice() {
            [] => return Ok(Vec::new()),
            [(_, entries)] => entries,
            _ => return Err(ReplyError::new("xread: more than one stream")),
        },
        other => match array(other, "xread")? {
            [] => return Ok(Vec::new()),
            [stream] => {
                let [_, entries] = field(array(stream, "xread stream")?, "xread stream")?;
                entries
            }
            _ => return Err(ReplyError::new("xread: more than one stream")),
        },
    };
    array(entries, "xread entries")?
        .iter()
        .map(parse_entry)
        .collect()
}

/// The snapshot script's reply.
pub(crate) fn parse_snapshot(value: &Value) -> Result<Snapshot, ReplyError> {
    let items = array(value, "snapshot")?;
    let [seq, position, now] = items
        .get(..3)
        .ok_or_else(|| ReplyError::new("snapshot: too short"))
        .and_then(|head| field(head, "snapshot"))?;
    let now = RedisMillis(number(now, "now")?);
    let agents = items[3..]
        .iter()
        .map(|item| {
            let [id, holder, epoch, until] =
                field(array(item, "snapshot agent")?, "snapshot agent")?;
            let until = RedisMillis(number(until, "until")?);
            let holder = match bytes(holder, "holder")? {
                [] => None,
                _ if until <= now => None,
                _ => Some(node(holder, "holder")?),
            };
            Ok(AgentHold {
                agent: agent(id, "agent")?,
                holder,
                epoch: Epoch(number(epoch, "epoch")?),
                until,
            })
        })
        .collect::<Result<_, ReplyError>>()?;
    Ok(Snapshot {
        seq: number(seq, "seq")?,
        position: stream_id(position)?,
        now,
        agents,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn entry(fields: &[(&str, &str)]) -> Value {
        Value::Array(vec![
            bulk("1700000000000-3"),
            Value::Array(
                fields
                    .iter()
                    .flat_map(|(k, v)| [bulk(k), bulk(v)])
                    .collect(),
            ),
        ])
    }

    const GOOD: [(&str, &str); 7] = [
        ("seq", "12"),
        ("agent", "1003"),
        ("node", "node-a"),
        ("epoch", "4"),
        ("kind", "claimed"),
        ("at", "1700000000000"),
        ("until", "1700000030000"),
    ];

    #[test]
    fn a_good_entry_reads_back() {
        let change = parse_entry(&entry(&GOOD)).unwrap();
        assert_eq!(
            change.id,
            StreamId {
                millis: 1_700_000_000_000,
                sequence: 3
            }
        );
        assert_eq!(change.seq, 12);
        assert_eq!(change.agent, AgentId::new("1003"));
        assert_eq!(change.node.as_str(), "node-a");
        assert_eq!(change.epoch, Epoch(4));
        assert_eq!(change.kind, ChangeKind::Claimed);
        assert_eq!(change.until, RedisMillis(1_700_000_030_000));
    }

    #[test]
    fn each_missing_or_garbled_field_is_an_error() {
        for (skip, (name, _)) in GOOD.iter().enumerate() {
            let fields: Vec<_> = GOOD
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, f)| *f)
                .collect();
            assert!(parse_entry(&entry(&fields)).is_err(), "without {name}");
        }
        for (slot, bad) in [
            (0, "-1"),
            (2, ""),
            (2, "a b"),
            (3, "x"),
            (4, "stolen"),
            (5, "1e12"),
            (6, ""),
        ] {
            let mut fields = GOOD;
            fields[slot].1 = bad;
            assert!(
                parse_entry(&entry(&fields)).is_err(),
                "{} = {bad:?}",
                GOOD[slot].0
            );
        }
        let mut twice = GOOD.to_vec();
        twice.push(("epoch", "5"));
        assert!(parse_entry(&entry(&twice)).is_err());
    }

    #[test]
    fn an_expiry_names_who_recorded_it() {
        let mut fields = GOOD.to_vec();
        fields[4].1 = "expired";
        assert_eq!(
            parse_entry(&entry(&fields)).unwrap().by,
            None,
            "an older build's"
        );
        fields.push(("by", ""));
        assert_eq!(
            parse_entry(&entry(&fields)).unwrap().by,
            None,
            "a reap naming no node"
        );
        fields.pop();
        fields.push(("by", "node-b"));
        let change = parse_entry(&entry(&fields)).unwrap();
        assert_eq!(change.by.as_ref().map(NodeId::as_str), Some("node-b"));
        fields.push(("by", "node-c"));
        assert!(parse_entry(&entry(&fields)).is_err(), "by twice");
        fields.truncate(7);
        fields.push(("by", "a b"));
        assert!(parse_entry(&entry(&fields)).is_err(), "not a node name");
    }

    #[test]
    fn script_replies_read_back() {
        let ok = Value::Array(vec![
            bulk("ok"),
            bulk("2"),
            bulk("30"),
            bulk("10"),
            bulk("7"),
        ]);
        assert_eq!(
            parse_script_reply(&ok).unwrap(),
            ScriptReply::Ok {
                epoch: Epoch(2),
                until: RedisMillis(30),
                at: RedisMillis(10),
                seq: 7
            }
        );
        let reaped = Value::Array(vec![bulk("reaped"), Value::Int(1)]);
        assert_eq!(
            parse_script_reply(&reaped).unwrap(),
            ScriptReply::Reaped(true)
        );
        let short = Value::Array(vec![bulk("taken"), bulk("node-b")]);
        assert!(parse_script_reply(&short).is_err());
        let behind = Value::Array(vec![bulk("behind"), bulk("node-b/17"), bulk("4")]);
        assert_eq!(
            parse_script_reply(&behind).unwrap(),
            ScriptReply::Behind {
                ahead: "node-b/17".into(),
                epoch: Epoch(4)
            }
        );
        let long = Value::Array(vec![bulk("behind"), bulk(&"x".repeat(200)), bulk("4")]);
        assert!(parse_script_reply(&long).is_err());
    }

    fn any_value() -> impl Strategy<Value = Value> {
        let words = [
            "ok", "taken", "stale", "lapsed", "reaped", "seq", "agent", "node", "epoch", "kind",
            "at", "until", "claimed", "0-0", "1-1", "7",
        ];
        let leaf = prop_oneof![
            Just(Value::Nil),
            Just(Value::Okay),
            any::<i64>().prop_map(Value::Int),
            proptest::collection::vec(any::<u8>(), 0..24).prop_map(Value::BulkString),
            "[a-z0-9-]{0,12}".prop_map(|s| Value::BulkString(s.into_bytes())),
            prop::sample::select(words.to_vec()).prop_map(bulk),
        ];
        leaf.prop_recursive(4, 64, 10, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..10).prop_map(Value::Array),
                proptest::collection::vec((inner.clone(), inner), 0..3).prop_map(Value::Map),
            ]
        })
    }

    /// Whether `value` is a valid text for field `slot` of [`GOOD`]: the
    /// oracle the garbling proptest checks the parser against.
    fn valid(slot: usize, value: &[u8]) -> bool {
        match slot {
            1 => {
                !value.is_empty()
                    && value.len() <= MAX_AGENT_LEN
                    && std::str::from_utf8(value).is_ok()
            }
            2 => std::str::from_utf8(value)
                .ok()
                .and_then(NodeId::new)
                .is_some(),
            4 => ChangeKind::parse(value).is_some(),
            _ => decimal(value, "test").is_ok(),
        }
    }

    proptest! {
        #[test]
        fn any_reply_parses_or_errs_without_panic(value in any_value()) {
            let _ = parse_script_reply(&value);
            let _ = parse_xread(&value);
            let _ = parse_snapshot(&value);
            let _ = parse_entry(&value);
        }

        #[test]
        fn an_entry_reads_exactly_when_every_field_is_there_and_valid(
            drop in proptest::collection::vec(proptest::bool::weighted(0.1), 7),
            garble in proptest::collection::vec(
                proptest::option::weighted(0.3, prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..8),
                    "[0-9]{0,22}".prop_map(String::into_bytes),
                    "[a-z:-]{0,70}".prop_map(String::into_bytes),
                ]),
                7,
            ),
        ) {
            let mut fields = Vec::new();
            let mut readable = true;
            for (slot, (name, good)) in GOOD.iter().enumerate() {
                if drop[slot] {
                    readable = false;
                    continue;
                }
                let value = garble[slot].clone().unwrap_or_else(|| good.as_bytes().to_vec());
                readable &= valid(slot, &value);
                fields.push(bulk(name));
                fields.push(Value::BulkString(value));
            }
            let value = Value::Array(vec![bulk("5-0"), Value::Array(fields)]);
            prop_assert_eq!(parse_entry(&value).is_ok(), readable);
        }

        #[test]
        fn an_entry_missing_any_field_is_an_error(drop in 0usize..7) {
            let fields: Vec<_> = GOOD.iter().enumerate().filter(|(i, _)| *i != drop).map(|(_, f)| *f).collect();
            prop_assert!(parse_entry(&entry(&fields)).is_err());
        }
    }
}
