//! The check's report: numbered steps, each ok, FAIL or skipped, with what it found.

use std::fmt;

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Fail,
    /// Not run: an earlier step failed in a way that leaves nothing to check.
    Skipped,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ok => "ok",
            Self::Fail => "FAIL",
            Self::Skipped => "skipped",
        })
    }
}

/// One step of the check, with what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: &'static str,
    pub status: Status,
    pub details: Vec<String>,
}

impl Step {
    pub(crate) fn new(name: &'static str) -> Self {
        Self {
            name,
            status: Status::Ok,
            details: Vec::new(),
        }
    }

    pub(crate) fn note(&mut self, line: impl Into<String>) {
        self.details.push(line.into());
    }

    pub(crate) fn fail(&mut self, line: impl Into<String>) {
        self.status = Status::Fail;
        self.details.push(line.into());
    }

    /// Whether any detail line contains `text`.
    pub fn mentions(&self, text: &str) -> bool {
        self.details.iter().any(|d| d.contains(text))
    }
}

/// The step names, in order.
pub const STEPS: [&str; 6] = [
    "policy",
    "discovery",
    "connect",
    "stream + TLS",
    "certificate",
    "features after TLS",
];

/// The whole check of one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub domain: String,
    pub steps: Vec<Step>,
}

impl Report {
    /// Every step ran and passed.
    pub fn passed(&self) -> bool {
        self.steps.len() == STEPS.len() && self.steps.iter().all(|s| s.status == Status::Ok)
    }

    /// The step called `name`.
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }

    pub(crate) fn push(&mut self, step: Step) {
        self.steps.push(step);
    }

    /// The steps not run yet, marked skipped.
    pub(crate) fn skip_rest(&mut self) {
        for name in &STEPS[self.steps.len()..] {
            self.steps.push(Step {
                name,
                status: Status::Skipped,
                details: Vec::new(),
            });
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "federation check of {}", self.domain)?;
        for (i, step) in self.steps.iter().enumerate() {
            writeln!(f, "{}. {}: {}", i + 1, step.name, step.status)?;
            for line in &step.details {
                writeln!(f, "   - {line}")?;
            }
        }
        let failed: Vec<String> = self
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.status == Status::Fail)
            .map(|(i, s)| format!("{} ({})", i + 1, s.name))
            .collect();
        if self.passed() {
            writeln!(f, "result: ok, all {} steps passed", self.steps.len())
        } else if failed.is_empty() {
            writeln!(f, "result: FAIL, not every step ran")
        } else {
            writeln!(f, "result: FAIL at step {}", failed.join(", "))
        }
    }
}
