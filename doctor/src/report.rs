//! The findings: one [`Check`] per step a client takes, rendered as text for people or
//! JSON for scripts. Check ids are stable so scripts and tests can match them.

use serde::Serialize;

/// How a step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Works as clients need it.
    Ok,
    /// Works, but something is likely to bite some clients or some networks.
    Warn,
    /// Broken: calls fail for some or all users. Any failure makes the exit code non-zero.
    Fail,
    /// Not checked (needs an access token, or an earlier step failed).
    Skip,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
            Self::Skip => "skip",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable identifier, e.g. `transports-missing` (docs/troubleshooting.md lists them).
    pub id: &'static str,
    /// The outcome.
    pub status: Status,
    /// What was seen.
    pub summary: String,
    /// What to change, for warnings and failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// All findings of one run, in the order a client meets them.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// The target as the user gave it.
    pub target: String,
    /// The findings.
    pub checks: Vec<Check>,
}

impl Report {
    /// An empty report for `target`.
    pub fn new(target: &str) -> Self {
        Self {
            target: target.to_owned(),
            checks: Vec::new(),
        }
    }

    /// Records a working step.
    pub fn ok(&mut self, id: &'static str, summary: impl Into<String>) {
        self.push(id, Status::Ok, summary.into(), None);
    }

    /// Records a step that works with a caveat.
    pub fn warn(&mut self, id: &'static str, summary: impl Into<String>, fix: impl Into<String>) {
        self.push(id, Status::Warn, summary.into(), Some(fix.into()));
    }

    /// Records a broken step and its fix.
    pub fn fail(&mut self, id: &'static str, summary: impl Into<String>, fix: impl Into<String>) {
        self.push(id, Status::Fail, summary.into(), Some(fix.into()));
    }

    /// Records a step that was not checked, and why.
    pub fn skip(&mut self, id: &'static str, why: impl Into<String>) {
        self.push(id, Status::Skip, why.into(), None);
    }

    fn push(&mut self, id: &'static str, status: Status, summary: String, fix: Option<String>) {
        self.checks.push(Check {
            id,
            status,
            summary,
            fix,
        });
    }

    /// Whether any step failed.
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }

    /// The failed checks' ids, in order.
    pub fn failures(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| c.id)
            .collect()
    }

    /// Plain text, one line per check and an indented fix line under problems.
    pub fn to_text(&self) -> String {
        let mut out = format!("Matrix RTC check of {}\n", self.target);
        for check in &self.checks {
            out.push_str(&format!(
                "[{:<4}] {}: {}\n",
                check.status.label(),
                check.id,
                check.summary
            ));
            if let Some(fix) = &check.fix {
                out.push_str(&format!("       fix: {fix}\n"));
            }
        }
        let count = |status| self.checks.iter().filter(|c| c.status == status).count();
        out.push_str(&format!(
            "{} ok, {} warnings, {} failures, {} skipped\n",
            count(Status::Ok),
            count(Status::Warn),
            count(Status::Fail),
            count(Status::Skip)
        ));
        out
    }

    /// JSON: `{"target", "ok", "checks": [{"id", "status", "summary", "fix"?}]}`.
    pub fn to_json(&self) -> String {
        let value = serde_json::json!({
            "target": self.target,
            "ok": !self.failed(),
            "checks": self.checks,
        });
        serde_json::to_string_pretty(&value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_name_each_failure_with_its_fix() {
        let mut report = Report::new("example.org");
        report.ok("well-known", "served");
        report.fail("transports-missing", "404", "enable msc4143");
        report.skip("turn", "no access token");
        assert!(report.failed());
        assert_eq!(report.failures(), ["transports-missing"]);
        let text = report.to_text();
        assert!(text.contains("[FAIL] transports-missing: 404\n       fix: enable msc4143\n"));
        assert!(text.ends_with("1 ok, 0 warnings, 1 failures, 1 skipped\n"));
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["ok"], false);
        assert_eq!(json["checks"][1]["status"], "fail");
        assert_eq!(json["checks"][1]["fix"], "enable msc4143");
        assert!(json["checks"][0].get("fix").is_none());
    }
}
