//! Constant-time comparison for anything secret (MACs, passwords, keys).
//!
//! coturn compared MESSAGE-INTEGRITY with `memcmp` until 4.11 (#1869); a timing
//! difference per byte lets an attacker forge a MAC one byte at a time.

use subtle::ConstantTimeEq;

/// True when `a` and `b` are equal, taking the same time wherever they differ.
///
/// Lengths are not secret (MACs and keys have fixed sizes), so a length mismatch
/// returns early.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::ct_eq;

    #[test]
    fn equal_and_different() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"secret", b"secret"));
        assert!(!ct_eq(b"secret", b"secreT"));
        assert!(!ct_eq(b"Secret", b"secret"));
        assert!(!ct_eq(b"secret", b"secret1"));
        assert!(!ct_eq(b"secret", b""));
    }
}
