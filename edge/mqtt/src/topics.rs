//! Every MQTT topic is built and parsed here, and nowhere else.
//!
//! Scheme (from the seed): `devices/{site}/{zone}/{device}/{telemetry,status,command,events}` and
//! `events/{site}/{zone}/{type}`. Segments are ids checked by [`valid_segment`], so they never contain
//! `/`, `+` or `#`.

/// The four per-device channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Telemetry,
    Status,
    Command,
    Events,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Telemetry => "telemetry",
            Channel::Status => "status",
            Channel::Command => "command",
            Channel::Events => "events",
        }
    }

    fn parse(s: &str) -> Option<Channel> {
        Some(match s {
            "telemetry" => Channel::Telemetry,
            "status" => Channel::Status,
            "command" => Channel::Command,
            "events" => Channel::Events,
            _ => return None,
        })
    }
}

/// `devices/{site}/{zone}/{device}/{channel}`.
pub fn device(site: &str, zone: &str, device: &str, channel: Channel) -> String {
    format!("devices/{site}/{zone}/{device}/{}", channel.as_str())
}

/// `devices/{site}/{zone}/{device}/command`.
pub fn device_command(site: &str, zone: &str, dev: &str) -> String {
    device(site, zone, dev, Channel::Command)
}

/// `events/{site}/{zone}/{event_type}`: site events the edge publishes for local consumers.
pub fn site_event(site: &str, zone: &str, event_type: &str) -> String {
    format!("events/{site}/{zone}/{event_type}")
}

/// Everything devices of a site publish: the edge's own subscription.
pub fn all_devices(site: &str) -> String {
    format!("devices/{site}/#")
}

/// A parsed device topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceTopic<'a> {
    pub site: &'a str,
    pub zone: &'a str,
    pub device: &'a str,
    pub channel: Channel,
}

/// Parses `devices/{site}/{zone}/{device}/{channel}`; `None` for anything else.
pub fn parse_device(topic: &str) -> Option<DeviceTopic<'_>> {
    let mut it = topic.split('/');
    let (Some("devices"), Some(site), Some(zone), Some(device), Some(channel), None) =
        (it.next(), it.next(), it.next(), it.next(), it.next(), it.next())
    else {
        return None;
    };
    if ![site, zone, device].iter().all(|s| valid_segment(s)) {
        return None;
    }
    Some(DeviceTopic { site, zone, device, channel: Channel::parse(channel)? })
}

/// An id usable as one topic segment: 1..=64 of `[A-Za-z0-9_.-]`.
pub fn valid_segment(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(topic: &str, expect: Option<(&str, &str, &str, Channel)>) {
        let got = parse_device(topic).map(|t| (t.site, t.zone, t.device, t.channel));
        assert_eq!(got, expect, "{topic}");
    }

    #[test]
    fn parse_and_build_round_trip() {
        check("devices/hq/lobby/lock-1/command", Some(("hq", "lobby", "lock-1", Channel::Command)));
        check("devices/hq/lobby/t1/telemetry", Some(("hq", "lobby", "t1", Channel::Telemetry)));
        check("devices/hq/lobby/t1/telemetry/x", None);
        check("devices/hq/lobby/t1/other", None);
        check("devices/hq/lobby/+/command", None);
        check("devices/hq/#", None);
        check("events/hq/lobby/alarm", None);
        check("devices/hq//t1/status", None);
        assert_eq!(device_command("hq", "lobby", "lock-1"), "devices/hq/lobby/lock-1/command");
        assert_eq!(site_event("hq", "lobby", "access"), "events/hq/lobby/access");
        assert_eq!(all_devices("hq"), "devices/hq/#");
        for c in [Channel::Telemetry, Channel::Status, Channel::Command, Channel::Events] {
            let t = device("hq", "z", "d", c);
            assert_eq!(parse_device(&t).map(|p| p.channel), Some(c));
        }
    }
}
