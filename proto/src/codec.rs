//! The one place that knows the wire encoding (CBOR via `serde_cbor`).
//!
//! `serde_cbor` is unmaintained upstream; keeping it behind [`encode`] and [`decode`] means a
//! replacement touches this file only. Decoding arbitrary bytes returns an error, never panics
//! (see the tests, which feed it garbage and truncations).

use serde::{Serialize, de::DeserializeOwned};

/// Bytes could not be turned into the requested type.
#[derive(Debug, thiserror::Error)]
#[error("undecodable cbor: {0}")]
pub struct DecodeError(#[from] serde_cbor::Error);

/// A value could not be encoded (only possible for types with failing `Serialize` impls).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode cbor: {0}")]
pub struct EncodeError(#[from] serde_cbor::Error);

/// Encodes `value` as CBOR.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, EncodeError> {
    Ok(serde_cbor::to_vec(value)?)
}

/// Decodes CBOR bytes, rejecting trailing data.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    Ok(serde_cbor::from_slice(bytes)?)
}
