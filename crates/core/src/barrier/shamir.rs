//! Shamir's secret sharing over GF(256) for unseal keys, via the `blahaj`
//! crate (the maintained fork of `sharks`).
//!
//! With a single share the share *is* the secret, as in Vault: a dev server's
//! one unseal key is the 32-byte key-encryption key itself.

use blahaj::{Share, Sharks};

/// Why a split or combine was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShamirError {
    /// `secret_shares`/`secret_threshold` break Vault's rules.
    #[error("{0}")]
    InvalidParameters(String),
    /// The shares given cannot be combined.
    #[error("invalid unseal keys: {0}")]
    InvalidShares(String),
}

/// Checks `secret_shares` and `secret_threshold` the way Vault does.
pub fn validate(shares: u32, threshold: u32) -> Result<(), ShamirError> {
    let bad = |m: &str| Err(ShamirError::InvalidParameters(m.to_string()));
    if shares == 0 {
        return bad("secret_shares must be at least 1");
    }
    if shares > 255 {
        return bad("secret_shares must be at most 255");
    }
    if threshold == 0 {
        return bad("secret_threshold must be at least 1");
    }
    if threshold > shares {
        return bad("secret_threshold cannot be larger than secret_shares");
    }
    if shares > 1 && threshold < 2 {
        return bad(
            "secret_threshold must be greater than one when secret_shares is more than one",
        );
    }
    Ok(())
}

/// Splits `secret` into `shares` parts of which `threshold` recover it.
pub fn split(secret: &[u8], shares: u32, threshold: u32) -> Result<Vec<Vec<u8>>, ShamirError> {
    validate(shares, threshold)?;
    if shares == 1 {
        return Ok(vec![secret.to_vec()]);
    }
    // validate() bounds both to 1..=255.
    let dealer = Sharks(threshold as u8).dealer(secret);
    Ok(dealer
        .take(shares as usize)
        .map(|s| Vec::from(&s))
        .collect())
}

/// Recombines parts produced by [`split`]. `secret_len` tells a single raw
/// key (threshold 1) from a share (one byte longer).
pub fn combine(
    parts: &[Vec<u8>],
    threshold: u32,
    secret_len: usize,
) -> Result<Vec<u8>, ShamirError> {
    if threshold <= 1 {
        return match parts {
            [one] if one.len() == secret_len => Ok(one.clone()),
            [one] => Err(ShamirError::InvalidShares(format!(
                "expected a {secret_len}-byte key, got {} bytes",
                one.len()
            ))),
            _ => Err(ShamirError::InvalidShares(
                "expected exactly one key".into(),
            )),
        };
    }
    let mut shares = Vec::with_capacity(parts.len());
    for part in parts {
        if part.len() != secret_len + 1 {
            return Err(ShamirError::InvalidShares(format!(
                "each unseal key must be {} bytes, got {}",
                secret_len + 1,
                part.len()
            )));
        }
        let share = Share::try_from(part.as_slice())
            .map_err(|e| ShamirError::InvalidShares(e.to_string()))?;
        shares.push(share);
    }
    let threshold = u8::try_from(threshold)
        .map_err(|_| ShamirError::InvalidShares("threshold above 255".into()))?;
    Sharks(threshold)
        .recover(&shares)
        .map_err(|e| ShamirError::InvalidShares(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_combine_any_threshold_subset() {
        let secret = [7u8; 32];
        let parts = split(&secret, 5, 3).unwrap();
        assert_eq!(parts.len(), 5);
        assert_eq!(combine(&parts[1..4], 3, 32).unwrap(), secret);
        assert_eq!(
            combine(
                &[parts[0].clone(), parts[4].clone(), parts[2].clone()],
                3,
                32
            )
            .unwrap(),
            secret
        );
        // Too few shares cannot recover.
        assert!(combine(&parts[..2], 3, 32).is_err());
    }

    #[test]
    fn single_share_is_the_secret() {
        let secret = [9u8; 32];
        assert_eq!(split(&secret, 1, 1).unwrap(), vec![secret.to_vec()]);
        assert_eq!(combine(&[secret.to_vec()], 1, 32).unwrap(), secret);
        assert!(combine(&[vec![1; 31]], 1, 32).is_err());
    }

    #[test]
    fn vault_parameter_rules() {
        assert!(validate(0, 0).is_err());
        assert!(validate(3, 4).is_err());
        assert!(validate(3, 1).is_err());
        assert!(validate(256, 2).is_err());
        assert!(validate(1, 1).is_ok());
        assert!(validate(5, 3).is_ok());
    }
}
