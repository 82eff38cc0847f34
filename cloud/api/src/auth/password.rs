//! Password hashing: Argon2id (RFC 9106) in PHC string format, on the blocking thread pool.
//!
//! Verification always does the same work whether or not the account exists: an unknown email is
//! checked against a dummy hash made with the same parameters, so timing does not reveal accounts.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore as _;

/// Shortest accepted password (NIST SP 800-63B allows 8; we ask for 12).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted password, in bytes (bounds the hashing work a request can cause).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl HashCost {
    /// OWASP's recommendation for Argon2id: 19 MiB, 2 passes, 1 lane.
    pub const OWASP: HashCost = HashCost { memory_kib: 19 * 1024, iterations: 2, parallelism: 1 };
    /// Cheap parameters for tests only (the hashes are still real Argon2id).
    pub const TEST: HashCost = HashCost { memory_kib: 1024, iterations: 1, parallelism: 1 };
}

/// Hashes and verifies passwords with one set of parameters.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    cost: HashCost,
    /// A hash of a random password, verified against when an account does not exist.
    dummy: String,
}

impl PasswordHasher {
    /// Checks `cost` and prepares the dummy hash.
    pub fn new(cost: HashCost) -> anyhow::Result<PasswordHasher> {
        let mut hasher = PasswordHasher { cost, dummy: String::new() };
        let mut random = [0u8; 24];
        rand::rng().fill_bytes(&mut random);
        hasher.dummy = hasher.hash_blocking(&hex_string(&random))?;
        Ok(hasher)
    }

    fn argon2(&self) -> anyhow::Result<Argon2<'static>> {
        let params = Params::new(self.cost.memory_kib, self.cost.iterations, self.cost.parallelism, None)
            .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    fn hash_blocking(&self, password: &str) -> anyhow::Result<String> {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
        let hash =
            self.argon2()?.hash_password(password.as_bytes(), &salt).map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
        Ok(hash.to_string())
    }

    /// The PHC string of `password` (computed off the async threads).
    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.hash_blocking(&password)).await?
    }

    /// Whether `password` matches `hash` (`None`: the dummy, always false, same cost).
    pub async fn verify(&self, password: String, hash: Option<String>) -> anyhow::Result<bool> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let real = hash.is_some();
            let phc = hash.unwrap_or_else(|| this.dummy.clone());
            let parsed = PasswordHash::new(&phc).map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
            // Verification uses the parameters stored in the hash, so old hashes keep working after a cost change.
            let ok = this.argon2()?.verify_password(password.as_bytes(), &parsed).is_ok();
            Ok(real && ok)
        })
        .await?
    }
}

/// Why a new password is refused, if it is.
pub fn check_new_password(password: &str, email: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!("must be at least {MIN_PASSWORD_CHARS} characters"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("must be at most {MAX_PASSWORD_BYTES} bytes"));
    }
    if password.trim().eq_ignore_ascii_case(email.trim()) {
        return Err("must not be the email address".into());
    }
    Ok(())
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_use_argon2id() {
        let hasher = PasswordHasher::new(HashCost::TEST).unwrap();
        let hash = hasher.hash("correct horse battery".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
        assert!(hasher.verify("correct horse battery".into(), Some(hash.clone())).await.unwrap());
        assert!(!hasher.verify("wrong horse battery".into(), Some(hash.clone())).await.unwrap());
        assert!(!hasher.verify("correct horse battery".into(), None).await.unwrap());
        // A different salt every time.
        assert_ne!(hash, hasher.hash("correct horse battery".into()).await.unwrap());
    }

    #[test]
    fn new_password_rules() {
        assert!(check_new_password("short", "a@b.c").is_err());
        assert!(check_new_password("alice@example.com", "Alice@Example.com").is_err());
        assert!(check_new_password(&"x".repeat(1025), "a@b.c").is_err());
        assert!(check_new_password("long enough pass", "a@b.c").is_ok());
    }
}
