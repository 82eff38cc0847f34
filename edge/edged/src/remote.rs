//! Remote commands: the edge long-polls the cloud for the commands operators queued for its site
//! (unlock a door, lock it, reboot a device…), runs each through the devices stage's control
//! channel, and reports the outcome. Outbound HTTPS only, so an edge behind NAT still gets them.
//!
//! A command is run at most once per id (the cloud re-delivers one whose acknowledgement was lost),
//! never after its `expires_at` (an unlock queued during a WAN cut must not happen hours later), and
//! its outcome is acknowledged until the cloud has it.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use edge_core::Backoff;
use edge_uplink::{RemoteCommand, Uplink, UplinkError};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::devices::{Control, ControlReply};

/// How one command maps onto the site's doors and devices.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Run(Control),
    /// Start or stop analysing a camera.
    Stream {
        camera: String,
        on: bool,
    },
    Refuse(String),
}

/// `(door id, lock device id)` of every door of the site document.
pub type DoorLocks = Vec<(String, String)>;

/// Pure mapping from a cloud command to a control order (table-tested).
pub fn plan(cmd: &RemoteCommand, doors: &DoorLocks) -> Plan {
    let by = format!("operator:{}", cmd.id);
    if cmd.kind == "camera" {
        return match cmd.command.as_str() {
            "stream_start" => Plan::Stream { camera: cmd.device.clone(), on: true },
            "stream_stop" => Plan::Stream { camera: cmd.device.clone(), on: false },
            other => Plan::Refuse(format!("unknown camera command {other}")),
        };
    }
    let door = match cmd.kind.as_str() {
        "door" => doors.iter().find(|(d, _)| *d == cmd.device),
        _ => doors.iter().find(|(_, l)| *l == cmd.device),
    };
    match (cmd.command.as_str(), door) {
        ("unlock" | "open", Some((door, _))) => Plan::Run(Control::Unlock { doors: Some(vec![door.clone()]), by }),
        ("unlock" | "open", None) => {
            Plan::Refuse(format!("{} is not a door or a door's lock at this site", cmd.device))
        }
        ("lock", Some((_, lock))) => {
            Plan::Run(Control::DeviceCommand { device: lock.clone(), action: "lock".into(), params: None, by })
        }
        (action @ ("lock" | "reboot" | "refresh_status"), _) => {
            let device = door.map_or_else(|| cmd.device.clone(), |(_, lock)| lock.clone());
            let params = cmd.params.as_object().filter(|p| !p.is_empty()).map(|_| cmd.params.clone());
            Plan::Run(Control::DeviceCommand { device, action: action.into(), params, by })
        }
        (other, _) => Plan::Refuse(format!("unknown command {other}")),
    }
}

#[derive(Debug)]
pub struct RemoteStage {
    pub uplink: Uplink,
    pub control: Option<mpsc::Sender<(Control, ControlReply)>>,
    pub doors: crate::devices::SiteDoors,
    pub backoff: Backoff,
    /// The cameras' analysis slots, for stream start/stop.
    pub slots: Option<std::sync::Arc<crate::detect::FrameSlots>>,
}

/// Ids already run (and their outcome), so a re-delivered command is acknowledged, not re-run.
const REMEMBERED: usize = 1024;

impl RemoteStage {
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut done: HashMap<String, (String, String)> = HashMap::new();
        let mut order: VecDeque<String> = VecDeque::new();
        let mut unacked: Vec<(String, String, String)> = Vec::new();
        loop {
            // Outcomes the cloud has not confirmed yet go first.
            let mut still = Vec::new();
            for (id, status, result) in unacked.drain(..) {
                match self.uplink.ack_command(&id, &status, &result).await {
                    Ok(()) | Err(UplinkError::Refused { .. }) => {}
                    Err(_) => still.push((id, status, result)),
                }
            }
            unacked = still;
            let fetched = tokio::select! {
                _ = cancel.cancelled() => return,
                r = self.uplink.fetch_commands(Duration::from_secs(25)) => r,
            };
            let commands = match fetched {
                Ok(c) => {
                    self.backoff.reset();
                    c
                }
                Err(error) => {
                    let wait = self.backoff.next_delay(rand::random::<f64>());
                    tracing::debug!(%error, ?wait, "Cannot fetch remote commands; retrying.");
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(wait) => continue,
                    }
                }
            };
            for cmd in commands {
                let (status, result) = match done.get(&cmd.id) {
                    Some(outcome) => outcome.clone(),
                    None => {
                        let outcome = self.execute(&cmd).await;
                        done.insert(cmd.id.clone(), outcome.clone());
                        order.push_back(cmd.id.clone());
                        if order.len() > REMEMBERED
                            && let Some(old) = order.pop_front()
                        {
                            done.remove(&old);
                        }
                        outcome
                    }
                };
                match self.uplink.ack_command(&cmd.id, &status, &result).await {
                    Ok(()) | Err(UplinkError::Refused { .. }) => {}
                    Err(_) => unacked.push((cmd.id.clone(), status, result)),
                }
            }
        }
    }

    async fn execute(&self, cmd: &RemoteCommand) -> (String, String) {
        if cmd.expires_at <= chrono::Utc::now() {
            tracing::warn!(id = %cmd.id, device = %cmd.device, command = %cmd.command, "Remote command expired before it arrived; not run.");
            return ("expired".into(), format!("arrived after {}", cmd.expires_at.to_rfc3339()));
        }
        let doors: DoorLocks = self.doors.snapshot().into_iter().map(|d| (d.id, d.lock)).collect();
        let order = match plan(cmd, &doors) {
            Plan::Run(order) => order,
            Plan::Refuse(why) => return ("failed".into(), why),
            Plan::Stream { camera, on } => {
                let known = match self.slots.clone() {
                    Some(slots) => {
                        let camera = camera.clone();
                        tokio::task::spawn_blocking(move || slots.set_analysis(&camera, on)).await.unwrap_or(false)
                    }
                    None => false,
                };
                let verb = if on { "started" } else { "stopped" };
                tracing::info!(id = %cmd.id, %camera, on, known, "Remote stream command.");
                return if known {
                    ("done".into(), format!("analysis of {camera} {verb}"))
                } else {
                    ("failed".into(), format!("no camera {camera} at this edge"))
                };
            }
        };
        let Some(tx) = &self.control else {
            return ("failed".into(), "this edge has no doors or devices ([mqtt])".into());
        };
        let (reply, rx) = oneshot::channel();
        if tx.send((order, reply)).await.is_err() {
            return ("failed".into(), "the devices stage is not running".into());
        }
        let outcome = match tokio::time::timeout(Duration::from_secs(5), rx).await {
            Ok(Ok(Ok(summary))) => ("done".into(), summary),
            Ok(Ok(Err(error))) => ("failed".into(), error),
            _ => ("failed".into(), "no answer from the devices stage".into()),
        };
        tracing::info!(id = %cmd.id, device = %cmd.device, command = %cmd.command, status = %outcome.0, result = %outcome.1, "Remote command run.");
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(device: &str, kind: &str, command: &str) -> RemoteCommand {
        RemoteCommand {
            id: "c1".into(),
            device: device.into(),
            kind: kind.into(),
            command: command.into(),
            params: serde_json::json!({}),
            expires_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn commands_map_to_doors_and_devices() {
        let doors: DoorLocks = vec![("front".into(), "lock-1".into())];
        let by = || "operator:c1".to_owned();
        let unlock_front = Plan::Run(Control::Unlock { doors: Some(vec!["front".into()]), by: by() });
        let table = [
            (cmd("front", "door", "unlock"), unlock_front.clone()),
            (cmd("lock-1", "lock", "unlock"), unlock_front.clone()),
            (cmd("lock-1", "lock", "open"), unlock_front),
            (
                cmd("front", "door", "lock"),
                Plan::Run(Control::DeviceCommand {
                    device: "lock-1".into(),
                    action: "lock".into(),
                    params: None,
                    by: by(),
                }),
            ),
            (
                cmd("temp-1", "sensor", "reboot"),
                Plan::Run(Control::DeviceCommand {
                    device: "temp-1".into(),
                    action: "reboot".into(),
                    params: None,
                    by: by(),
                }),
            ),
            (
                cmd("temp-1", "sensor", "unlock"),
                Plan::Refuse("temp-1 is not a door or a door's lock at this site".into()),
            ),
            (cmd("front", "door", "self_destruct"), Plan::Refuse("unknown command self_destruct".into())),
            (cmd("cam-1", "camera", "stream_stop"), Plan::Stream { camera: "cam-1".into(), on: false }),
            (cmd("cam-1", "camera", "stream_start"), Plan::Stream { camera: "cam-1".into(), on: true }),
        ];
        for (c, want) in table {
            assert_eq!(plan(&c, &doors), want, "{} {}", c.device, c.command);
        }
    }
}
