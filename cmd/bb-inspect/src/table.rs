//! Tables and short forms for people to read: `bb_cli::table`'s, and the few more this
//! tool needs.

pub use bb_cli::table::{opt, short_addr, table};

/// The first 8 base58 characters of a hash; "-" for none.
pub fn short_hash(hash: &str) -> String {
    if hash.is_empty() {
        return "-".into();
    }
    hash.chars().take(8).collect()
}

/// A percentage with one decimal, e.g. "66.7%".
pub fn percent(part: u64, whole: u64) -> String {
    format!("{:.1}%", share(part, whole) * 100.0)
}

/// `part / whole` as a fraction (0 when `whole` is 0).
pub fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms() {
        assert_eq!(
            short_addr("bb_4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi"),
            "bb_4vJ9JU"
        );
        assert_eq!(short_addr(""), "-");
        assert_eq!(short_hash("4vJ9JU1bJJE96FWSJKvHsmm"), "4vJ9JU1b");
        assert_eq!(percent(2, 3), "66.7%");
        assert_eq!(percent(1, 0), "0.0%");
        assert_eq!(opt(None::<u64>), "-");
        assert_eq!(opt(Some(3)), "3");
    }
}
