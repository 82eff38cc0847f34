//! Record encoding: `0x01` + CRC32 (LE) of the CBOR + CBOR of the event.

use vigil_proto::{Event, codec};

const VERSION: u8 = 1;
const HEADER: usize = 5;

pub fn encode(event: &Event) -> Result<Vec<u8>, codec::EncodeError> {
    let cbor = codec::encode(event)?;
    let mut out = Vec::with_capacity(HEADER + cbor.len());
    out.push(VERSION);
    out.extend_from_slice(&crc32fast::hash(&cbor).to_le_bytes());
    out.extend_from_slice(&cbor);
    Ok(out)
}

/// Decodes a record; the error says why it is corrupt.
pub fn decode(value: &[u8]) -> Result<Event, String> {
    if value.len() < HEADER {
        return Err("record too short".into());
    }
    if value[0] != VERSION {
        return Err(format!("unknown record version {}", value[0]));
    }
    let crc = u32::from_le_bytes([value[1], value[2], value[3], value[4]]);
    let body = &value[HEADER..];
    if crc32fast::hash(body) != crc {
        return Err("checksum mismatch".into());
    }
    codec::decode(body).map_err(|e| e.to_string())
}

pub fn key_to_seq(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}
