//! Fault injection, for tests only: off unless asked for, and loud in the log when on.

use std::str::FromStr;
use std::time::Duration;

/// One injected fault.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Drop each incoming shred with this probability.
    DropShreds(f64),
    /// Hold every outgoing shred and vote this long before sending.
    DelayMs(u64),
    /// Serve catch-up clients corrupted data: one changed byte in every block body the
    /// rooted-block stream sends, and one in every snapshot download.
    ServeTampered,
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, arg) = s.split_once(':').unwrap_or((s, ""));
        match kind {
            "drop-shreds" => {
                let p: f64 = arg.parse().map_err(|_| {
                    format!("drop-shreds needs a probability, like drop-shreds:0.33 (got '{arg}')")
                })?;
                if !(0.0..=1.0).contains(&p) {
                    return Err(format!("drop-shreds probability {p} is not within 0..=1"));
                }
                Ok(Fault::DropShreds(p))
            }
            "delay-ms" => {
                let ms: u64 = arg.parse().map_err(|_| {
                    format!("delay-ms needs milliseconds, like delay-ms:50 (got '{arg}')")
                })?;
                Ok(Fault::DelayMs(ms))
            }
            "serve-tampered" if arg.is_empty() => Ok(Fault::ServeTampered),
            "serve-tampered" => Err(format!("serve-tampered takes no argument (got '{arg}')")),
            other => Err(format!(
                "unknown fault '{other}' (this build knows drop-shreds:P, delay-ms:D and serve-tampered)"
            )),
        }
    }
}

/// The faults a node runs with.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub drop_shreds: f64,
    pub delay: Option<Duration>,
    pub serve_tampered: bool,
}

impl Faults {
    pub fn from_list(list: &[Fault]) -> Faults {
        let mut f = Faults::default();
        for fault in list {
            match *fault {
                Fault::DropShreds(p) => f.drop_shreds = p,
                Fault::DelayMs(ms) => f.delay = Some(Duration::from_millis(ms)),
                Fault::ServeTampered => f.serve_tampered = true,
            }
        }
        f
    }

    pub fn any(&self) -> bool {
        self.drop_shreds > 0.0 || self.delay.is_some() || self.serve_tampered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_faults_and_names_bad_ones() {
        assert_eq!(
            "drop-shreds:0.33".parse::<Fault>(),
            Ok(Fault::DropShreds(0.33))
        );
        assert_eq!("delay-ms:50".parse::<Fault>(), Ok(Fault::DelayMs(50)));
        assert!("drop-shreds:2".parse::<Fault>().is_err());
        assert_eq!("serve-tampered".parse::<Fault>(), Ok(Fault::ServeTampered));
        assert!("serve-tampered:1".parse::<Fault>().is_err());
        assert!("explode".parse::<Fault>().unwrap_err().contains("explode"));
    }
}
