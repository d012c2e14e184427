//! The files a report goes to, `--json`, `--csv` and `--markdown`, declared once for every
//! command that writes a table of rows (`bench`, `infer`) and flattened into its arguments.

use std::path::PathBuf;

use clap::Args;
use kernelab_tensor::Result;
use kernelab_tensor::files::{Kind, Paths, is_stdout, write};

/// `--json`, `--csv`, `--markdown`: each a path, or `-` for stdout (the table then goes to stderr).
#[derive(Args, Debug, Default)]
pub struct ReportFiles {
    /// Write the report as JSON to this file (`-`: stdout, the table then goes to stderr).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the rows as CSV to this file (`-`: stdout).
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write the table as Markdown to this file (`-`: stdout).
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

impl ReportFiles {
    /// The three outputs with their flags, in the order `--json`, `--csv`, `--markdown`.
    fn flagged(&self) -> [(&'static str, &Option<PathBuf>); 3] {
        [("--json", &self.json), ("--csv", &self.csv), ("--markdown", &self.markdown)]
    }

    /// Adds the given outputs to `paths`, which refuses two flags naming one file and a file
    /// that cannot be written, before any work is done.
    pub fn add_to(&self, paths: &mut Paths) {
        for (flag, path) in self.flagged() {
            paths.output(flag, path.as_deref(), Kind::Replaced);
        }
    }

    /// Whether one of the outputs is `-` (stdout), so that the table goes to stderr.
    pub fn any_stdout(&self) -> bool {
        self.flagged().iter().any(|(_, p)| p.as_deref().is_some_and(is_stdout))
    }

    /// Writes each given output: the JSON, CSV and Markdown texts that `contents` makes (only for
    /// the files asked for), each file announced on stderr.
    pub fn write(&self, contents: impl Fn(Format) -> Result<String>) -> Result<()> {
        let formats = [Format::Json, Format::Csv, Format::Markdown];
        for ((_, path), format) in self.flagged().into_iter().zip(formats) {
            if let Some(path) = path {
                write(path, contents(format)?.as_bytes())?;
                crate::bench::announce(path);
            }
        }
        Ok(())
    }
}

/// One of the report's file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Markdown,
}
