//! A small command-line parser: `--name value`, `--name=value` and boolean `--flag`s,
//! with every flag checked so a typo is an error rather than a silently ignored option.

use std::collections::BTreeMap;
use std::str::FromStr;

/// Parsed flags of one mode.
#[derive(Debug, Default)]
pub struct Args {
    values: BTreeMap<String, String>,
    flags: Vec<String>,
    used: std::cell::RefCell<Vec<String>>,
}

impl Args {
    /// Parses `argv` (after the mode name). `booleans` lists flags that take no value.
    pub fn parse(argv: &[String], booleans: &[&str]) -> Result<Self, String> {
        let mut out = Self::default();
        let mut it = argv.iter();
        while let Some(arg) = it.next() {
            let Some(name) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument {arg:?} (flags start with --)"));
            };
            if let Some((k, v)) = name.split_once('=') {
                if booleans.contains(&k) {
                    return Err(format!("--{k} takes no value"));
                }
                out.values.insert(k.to_string(), v.to_string());
            } else if booleans.contains(&name) {
                out.flags.push(name.to_string());
            } else {
                // No value starts with "--": `--typo --rounds 2` must not read as
                // typo="--rounds", which would hide both the typo and --rounds.
                let v = it.next().filter(|v| !v.starts_with("--")).ok_or_else(|| {
                    format!("--{name} needs a value (or is not a flag of this mode)")
                })?;
                out.values.insert(name.to_string(), v.clone());
            }
        }
        Ok(out)
    }

    /// A typed value with a default.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        Ok(self.opt(name)?.unwrap_or(default))
    }

    /// A typed optional value.
    pub fn opt<T: FromStr>(&self, name: &str) -> Result<Option<T>, String>
    where
        T::Err: std::fmt::Display,
    {
        self.used.borrow_mut().push(name.to_string());
        match self.values.get(name) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|e| format!("--{name} {v:?}: {e}")),
        }
    }

    /// Whether a boolean flag was given.
    pub fn flag(&self, name: &str) -> bool {
        self.used.borrow_mut().push(name.to_string());
        self.flags.iter().any(|f| f == name)
    }

    /// Errors on any flag no getter asked about.
    pub fn finish(&self) -> Result<(), String> {
        let used = self.used.borrow();
        for k in self.values.keys().chain(&self.flags) {
            if !used.contains(k) {
                return Err(format!("unknown flag --{k} for this mode (see --help)"));
            }
        }
        Ok(())
    }
}

/// A duration like `10`, `10s`, `500ms` or `2m`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let (num, mult) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("bad duration {text:?} (use e.g. 10s, 500ms, 2m)"))?;
    if !v.is_finite() || v < 0.0 || v * mult > 86_400.0 {
        return Err(format!("duration {text:?} out of range (0..24h)"));
    }
    Ok(std::time::Duration::from_secs_f64(v * mult))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn values_flags_and_unknowns() {
        let a = Args::parse(&argv("--clients 5 --size=64 --send"), &["send", "c2c"]).unwrap();
        assert_eq!(a.get("clients", 1u32).unwrap(), 5);
        assert_eq!(a.get("size", 1usize).unwrap(), 64);
        assert_eq!(a.get("rate", 7u64).unwrap(), 7);
        assert!(a.flag("send"));
        assert!(!a.flag("c2c"));
        assert!(a.finish().is_ok());
        let b = Args::parse(&argv("--clinets 5"), &[]).unwrap();
        assert!(b.get("clients", 1u32).is_ok());
        assert!(b.finish().unwrap_err().contains("--clinets"));
        assert!(Args::parse(&argv("--clients"), &[]).is_err());
        assert!(Args::parse(&argv("clients"), &[]).is_err());
        assert!(Args::parse(&argv("--send=1"), &["send"]).is_err());
        // An unknown boolean does not swallow the flag after it.
        let e = Args::parse(&argv("--ofload --rounds 2"), &["offload"]).unwrap_err();
        assert!(e.contains("--ofload"), "{e}");
        let c = Args::parse(&argv("--clients x"), &[]).unwrap();
        assert!(c.get("clients", 1u32).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10").unwrap().as_secs(), 10);
        assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
        assert_eq!(parse_duration("2m").unwrap().as_secs(), 120);
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("1000000m").is_err());
    }
}
