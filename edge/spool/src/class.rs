use vigil_proto::EventKind;

/// Priority class of a spooled event; lower value = sent first, evicted last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Class {
    /// `alert.triggered`: never evicted, sent first.
    Alarm = 0,
    /// `access.granted` / `access.denied`: never evicted.
    Access = 1,
    /// `detection.*` and the video analytics built on them (`motion.*`, `object.*`, `line.*`, `zone.*`):
    /// evicted last among the evictable classes.
    Detection = 2,
    /// `sensor.reading`, `device.status`.
    Telemetry = 3,
    /// Clip and snapshot notices (`media.saved`): evicted first.
    Clip = 4,
}

impl Class {
    pub const COUNT: usize = 5;
    /// Sending order.
    pub const ALL: [Class; Class::COUNT] =
        [Class::Alarm, Class::Access, Class::Detection, Class::Telemetry, Class::Clip];
    /// Eviction order; alarm and access are absent on purpose.
    pub const EVICTION_ORDER: [Class; 3] = [Class::Clip, Class::Telemetry, Class::Detection];

    /// The class an event kind travels in.
    pub fn of(kind: EventKind) -> Class {
        match kind {
            EventKind::AlertTriggered => Class::Alarm,
            EventKind::AccessGranted | EventKind::AccessDenied => Class::Access,
            EventKind::DetectionPerson
            | EventKind::DetectionVehicle
            | EventKind::MotionDetected
            | EventKind::ObjectUpdated
            | EventKind::ObjectEnded
            | EventKind::LineCrossed
            | EventKind::ZoneEntered
            | EventKind::ZoneExited
            | EventKind::ZoneLoitering => Class::Detection,
            EventKind::SensorReading | EventKind::DeviceStatus => Class::Telemetry,
            EventKind::MediaSaved => Class::Clip,
            // Unknown kinds are kept like alarms: never evicted, so nothing is lost by accident.
            EventKind::Unknown => Class::Alarm,
        }
    }

    pub fn is_evictable(self) -> bool {
        Class::EVICTION_ORDER.contains(&self)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Alarm => "alarm",
            Class::Access => "access",
            Class::Detection => "detection",
            Class::Telemetry => "telemetry",
            Class::Clip => "clip",
        }
    }

    pub(crate) fn tree_name(self) -> &'static str {
        match self {
            Class::Alarm => "c0-alarm",
            Class::Access => "c1-access",
            Class::Detection => "c2-detection",
            Class::Telemetry => "c3-telemetry",
            Class::Clip => "c4-clip",
        }
    }
}

/// A number per class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassCounts(pub [u64; Class::COUNT]);

impl ClassCounts {
    pub fn get(&self, class: Class) -> u64 {
        self.0[class as usize]
    }

    pub fn get_mut(&mut self, class: Class) -> &mut u64 {
        &mut self.0[class as usize]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// `(class, count)` for non-zero counts.
    pub fn non_zero(&self) -> impl Iterator<Item = (Class, u64)> + '_ {
        Class::ALL.into_iter().map(|c| (c, self.get(c))).filter(|(_, n)| *n > 0)
    }
}
