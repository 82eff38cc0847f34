//! JSON payloads of device topics (documented in the README), parsed with a size bound.
//!
//! Parsing never panics: anything malformed or oversized is a [`PayloadError`] that the caller
//! logs and counts.

use serde::{Deserialize, Serialize};

use crate::topics::Channel;

/// `devices/…/telemetry`: one reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    /// e.g. `temperature`, `humidity`, `co2`.
    pub metric: String,
    pub value: f64,
    /// e.g. `celsius`, `percent`, `ppm`.
    pub unit: String,
}

/// `devices/…/status`: online state (also the last will), firmware, free text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Status {
    pub online: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `devices/…/events`: what a device reports happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DeviceEvent {
    /// Reader: a badge and/or PIN was presented.
    Credential {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        badge: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pin: Option<String>,
    },
    /// Lock: a command was carried out (`ok`) or failed.
    Ack { command_id: String, ok: bool },
    /// Lock: its bolt state changed.
    LockState { locked: bool },
    /// Door contact: opened or closed.
    Contact { open: bool },
    /// Motion sensor.
    Motion { active: bool },
    /// Panic button pressed.
    Panic,
    /// Security panel (device kind `panel` only): lock every door; auto-revert after `minutes`.
    Lockdown {
        id: String,
        priority: u8,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        minutes: Option<u32>,
    },
    /// Security panel: end a lockdown (refused below the lockdown's own priority).
    LockdownClear { id: String, priority: u8 },
}

/// `devices/…/command`: what the edge asks a device to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// Echoed in the device's `ack`.
    pub id: String,
    /// `unlock`, `lock`, `hold_unlocked`, or a device-specific action (`ac_on`, …).
    pub action: String,
    /// For `unlock`: seconds before relocking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secs: Option<u32>,
    /// Device-specific arguments (`{"setpoint": 22}`), from rules or operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<serde_json::Value>,
}

/// A parsed message from a device.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceMessage {
    Telemetry(Telemetry),
    Status(Status),
    Event(DeviceEvent),
}

#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// Longer than the configured bound.
    #[error("payload of {len} bytes exceeds {max}")]
    TooLarge { len: usize, max: usize },
    /// Not JSON, or not the shape of its channel.
    #[error("malformed {channel} payload: {source}")]
    Malformed { channel: &'static str, source: serde_json::Error },
    /// Devices never publish on `command`.
    #[error("devices do not publish commands")]
    NotFromDevice,
}

/// Parses what a device published on `channel`.
pub fn parse(channel: Channel, payload: &[u8], max: usize) -> Result<DeviceMessage, PayloadError> {
    if payload.len() > max {
        return Err(PayloadError::TooLarge { len: payload.len(), max });
    }
    let malformed = |source| PayloadError::Malformed { channel: channel.as_str(), source };
    Ok(match channel {
        Channel::Telemetry => DeviceMessage::Telemetry(serde_json::from_slice(payload).map_err(malformed)?),
        Channel::Status => DeviceMessage::Status(serde_json::from_slice(payload).map_err(malformed)?),
        Channel::Events => DeviceMessage::Event(serde_json::from_slice(payload).map_err(malformed)?),
        Channel::Command => return Err(PayloadError::NotFromDevice),
    })
}

/// Checks what a device published on `channel` exactly as [`parse`] does, without keeping it: the
/// front's check on every message, so telemetry and status are read without allocating.
pub fn validate(channel: Channel, payload: &[u8], max: usize) -> Result<(), PayloadError> {
    if payload.len() > max {
        return Err(PayloadError::TooLarge { len: payload.len(), max });
    }
    let malformed = |source| PayloadError::Malformed { channel: channel.as_str(), source };
    match channel {
        Channel::Telemetry => serde_json::from_slice::<shape::Telemetry>(payload).map(drop).map_err(malformed),
        Channel::Status => serde_json::from_slice::<shape::Status>(payload).map(drop).map_err(malformed),
        Channel::Events | Channel::Command => parse(channel, payload, max).map(drop),
    }
}

/// The shapes of [`Telemetry`] and [`Status`], field for field, with strings checked and not kept.
mod shape {
    use serde::Deserialize;

    /// A JSON string, as `String` reads one, not kept.
    pub struct Str;

    impl<'de> Deserialize<'de> for Str {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Str, D::Error> {
            struct Visitor;
            impl serde::de::Visitor<'_> for Visitor {
                type Value = Str;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a string")
                }
                fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Str, E> {
                    Ok(Str)
                }
                fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Str, E> {
                    match std::str::from_utf8(v) {
                        Ok(_) => Ok(Str),
                        Err(_) => Err(E::invalid_value(serde::de::Unexpected::Bytes(v), &self)),
                    }
                }
            }
            d.deserialize_string(Visitor)
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    pub struct Telemetry {
        metric: Str,
        value: f64,
        unit: Str,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    pub struct Status {
        online: bool,
        #[serde(default)]
        firmware: Option<Str>,
        #[serde(default)]
        detail: Option<Str>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(channel: Channel, payload: &str, expect: Result<DeviceMessage, &str>) {
        let validated = validate(channel, payload.as_bytes(), 256);
        assert_eq!(validated.is_ok(), expect.is_ok(), "validate {payload}: {validated:?}");
        match (parse(channel, payload.as_bytes(), 256), expect) {
            (Ok(got), Ok(want)) => assert_eq!(got, want),
            (Err(got), Err(want)) => assert!(got.to_string().contains(want), "{got} does not contain {want}"),
            (got, want) => panic!("{payload}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn payloads() {
        use DeviceEvent as E;
        check(
            Channel::Telemetry,
            r#"{"metric":"temperature","value":31.5,"unit":"celsius"}"#,
            Ok(DeviceMessage::Telemetry(Telemetry {
                metric: "temperature".into(),
                value: 31.5,
                unit: "celsius".into(),
            })),
        );
        check(
            Channel::Status,
            r#"{"online":false}"#,
            Ok(DeviceMessage::Status(Status { online: false, firmware: None, detail: None })),
        );
        check(
            Channel::Events,
            r#"{"type":"credential","badge":"A1"}"#,
            Ok(DeviceMessage::Event(E::Credential { badge: Some("A1".into()), pin: None })),
        );
        check(
            Channel::Events,
            r#"{"type":"ack","command_id":"c1","ok":true}"#,
            Ok(DeviceMessage::Event(E::Ack { command_id: "c1".into(), ok: true })),
        );
        check(
            Channel::Events,
            r#"{"type":"contact","open":true}"#,
            Ok(DeviceMessage::Event(E::Contact { open: true })),
        );
        check(
            Channel::Events,
            r#"{"type":"lock_state","locked":false}"#,
            Ok(DeviceMessage::Event(E::LockState { locked: false })),
        );
        check(Channel::Events, r#"{"type":"panic"}"#, Ok(DeviceMessage::Event(E::Panic)));
        check(
            Channel::Events,
            r#"{"type":"motion","active":true}"#,
            Ok(DeviceMessage::Event(E::Motion { active: true })),
        );
        check(
            Channel::Events,
            r#"{"type":"lockdown","id":"l1","priority":5,"minutes":30}"#,
            Ok(DeviceMessage::Event(E::Lockdown { id: "l1".into(), priority: 5, minutes: Some(30) })),
        );
        check(
            Channel::Events,
            r#"{"type":"lockdown_clear","id":"l1","priority":5}"#,
            Ok(DeviceMessage::Event(E::LockdownClear { id: "l1".into(), priority: 5 })),
        );
        check(Channel::Events, r#"{"type":"teleport"}"#, Err("malformed events payload"));
        check(Channel::Events, r#"{"type":"contact","open":"yes"}"#, Err("malformed events payload"));
        check(Channel::Telemetry, r#"{"metric":"t","value":1,"unit":"c","extra":1}"#, Err("malformed telemetry"));
        check(Channel::Telemetry, "\u{0}\u{1}garbage", Err("malformed telemetry"));
        check(Channel::Telemetry, "", Err("malformed telemetry"));
        check(Channel::Telemetry, &" ".repeat(257), Err("257 bytes exceeds 256"));
        check(Channel::Command, r#"{"id":"1","action":"unlock"}"#, Err("do not publish commands"));
    }

    #[test]
    fn validate_accepts_what_parse_accepts() {
        let cases: &[(Channel, &[u8])] = &[
            (Channel::Telemetry, br#"{"metric":"t","value":1,"unit":"c"}"#),
            (Channel::Telemetry, br#"{"unit":"c","value":-1.5e3,"metric":"t\u00e9\n"}"#),
            (Channel::Telemetry, br#"{"metric":"t","value":"1","unit":"c"}"#),
            (Channel::Telemetry, br#"{"metric":1,"value":1,"unit":"c"}"#),
            (Channel::Telemetry, br#"{"metric":null,"value":1,"unit":"c"}"#),
            (Channel::Telemetry, br#"{"metric":"t","value":1}"#),
            (Channel::Telemetry, br#"{"metric":"t","metric":"u","value":1,"unit":"c"}"#),
            (Channel::Telemetry, br#"{"metric":"t","value":1,"unit":"c"} x"#),
            (Channel::Telemetry, br#"{"metric":"t","value":1,"unit":"c"}  "#),
            (Channel::Telemetry, br#"["t",1,"c"]"#),
            (Channel::Telemetry, b"{\"metric\":\"\xff\",\"value\":1,\"unit\":\"c\"}"),
            (Channel::Telemetry, br#"{"metric":"\ud800","value":1,"unit":"c"}"#),
            (Channel::Status, br#"{"online":true,"firmware":null,"detail":"x"}"#),
            (Channel::Status, br#"{"online":true,"firmware":1}"#),
            (Channel::Status, br#"{"online":1}"#),
            (Channel::Status, br#"{"firmware":"1.0"}"#),
            (Channel::Status, br#"{"online":false,"other":1}"#),
            (Channel::Status, br#"[false]"#),
            (Channel::Events, br#"{"type":"panic"}"#),
            (Channel::Events, br#"{"type":"panic","x":1}"#),
            (Channel::Command, br#"{"id":"1","action":"unlock"}"#),
        ];
        for (channel, payload) in cases {
            let parsed = parse(*channel, payload, 256).map(drop).map_err(|e| e.to_string());
            let validated = validate(*channel, payload, 256).map_err(|e| e.to_string());
            assert_eq!(validated, parsed, "{}", String::from_utf8_lossy(payload));
        }
    }

    #[test]
    fn commands_serialize_compactly() {
        let c = Command { id: "c1".into(), action: "unlock".into(), secs: Some(5), params: None };
        assert_eq!(serde_json::to_string(&c).unwrap(), r#"{"id":"c1","action":"unlock","secs":5}"#);
        let c = Command { id: "c2".into(), action: "lock".into(), secs: None, params: None };
        assert_eq!(serde_json::to_string(&c).unwrap(), r#"{"id":"c2","action":"lock"}"#);
    }
}
