//! Bearer credentials: generation and hashing.
//!
//! A credential is 32 random bytes from the thread-local CSPRNG, written as 64 lowercase hex
//! characters. The database stores only SHA-256 of that string; with 256 bits of entropy a fast
//! hash is enough (no password-style stretching needed).

use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

/// A fresh credential and its hash.
pub(crate) fn generate() -> (String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let hash = hash(&token);
    (token, hash)
}

/// The stored form of a presented credential.
pub(crate) fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_and_hash_matches() {
        let (a, ha) = generate();
        let (b, _) = generate();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(hash(&a), ha);
        assert_eq!(hex::encode(hash("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
