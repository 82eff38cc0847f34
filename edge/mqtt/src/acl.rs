//! Topic ACLs, pure: what a device may publish and subscribe to.
//!
//! A device publishes only to its own `telemetry`, `status` and `events` topics and subscribes only
//! to its own `command` topic, written out in full (no wildcards). Everything else is refused.

use crate::registry::Device;
use crate::topics::{self, Channel};

/// Whether `device` of `site` may publish to `topic`.
pub fn may_publish(site: &str, device: &Device, topic: &str) -> bool {
    match topics::parse_device(topic) {
        Some(t) => t.site == site && t.zone == device.zone && t.device == device.id && t.channel != Channel::Command,
        None => false,
    }
}

/// Whether `device` of `site` may subscribe to `filter`.
pub fn may_subscribe(site: &str, device: &Device, filter: &str) -> bool {
    filter == topics::device_command(site, &device.zone, &device.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::DeviceKind;

    fn dev(id: &str, zone: &str) -> Device {
        Device {
            id: id.into(),
            zone: zone.into(),
            kind: DeviceKind::Temperature,
            password_sha256: String::new(),
            config: None,
            firmware: None,
        }
    }

    #[track_caller]
    fn check(topic: &str, publish: bool, subscribe: bool) {
        let d = dev("t1", "lobby");
        assert_eq!(may_publish("hq", &d, topic), publish, "publish {topic}");
        assert_eq!(may_subscribe("hq", &d, topic), subscribe, "subscribe {topic}");
    }

    #[test]
    fn a_device_owns_its_topics_only() {
        check("devices/hq/lobby/t1/telemetry", true, false);
        check("devices/hq/lobby/t1/status", true, false);
        check("devices/hq/lobby/t1/events", true, false);
        check("devices/hq/lobby/t1/command", false, true);
        check("devices/hq/lobby/lock-1/command", false, false);
        check("devices/hq/lobby/lock-1/telemetry", false, false);
        check("devices/hq/other/t1/telemetry", false, false);
        check("devices/other/lobby/t1/telemetry", false, false);
        check("devices/hq/lobby/+/command", false, false);
        check("devices/hq/lobby/t1/+", false, false);
        check("devices/hq/#", false, false);
        check("#", false, false);
        check("events/hq/lobby/alarm", false, false);
        check("$SYS/broker", false, false);
        check("", false, false);
    }
}
