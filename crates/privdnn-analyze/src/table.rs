//! A table and its two renderings: Markdown (title, table, notes) and CSV (RFC 4180: header and
//! rows; fields with commas, quotes or line breaks are quoted). Also the number formats shared by
//! every table.

use std::path::{Path, PathBuf};

use crate::error::AnalyzeError;

/// One table.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// File stem under `results/tables/`.
    pub id: String,
    /// Heading of the Markdown file.
    pub title: String,
    /// Column names.
    pub columns: Vec<String>,
    /// Rows (each as long as `columns`).
    pub rows: Vec<Vec<String>>,
    /// Lines under the Markdown table: definitions, sources, what is missing and how to make it.
    pub notes: Vec<String>,
}

impl Table {
    /// An empty table.
    pub fn new(id: &str, title: &str, columns: &[&str]) -> Table {
        Table {
            id: id.to_string(),
            title: title.to_string(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Appends a row, padded or cut to the number of columns.
    pub fn push(&mut self, mut row: Vec<String>) {
        row.resize(self.columns.len(), String::new());
        self.rows.push(row);
    }

    /// Appends a note.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// The Markdown rendering.
    pub fn to_markdown(&self) -> String {
        let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        let mut out = format!("# {}\n\n", self.title);
        out.push_str(&format!(
            "| {} |\n|{}\n",
            self.columns
                .iter()
                .map(|c| cell(c))
                .collect::<Vec<_>>()
                .join(" | "),
            "---|".repeat(self.columns.len())
        ));
        for row in &self.rows {
            out.push_str(&format!(
                "| {} |\n",
                row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
            ));
        }
        if self.rows.is_empty() {
            out.push_str("\n(no rows)\n");
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for n in &self.notes {
                out.push_str(&format!("- {n}\n"));
            }
        }
        out
    }

    /// The CSV rendering.
    pub fn to_csv(&self) -> String {
        let field = |s: &str| {
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        let line =
            |cells: &[String]| cells.iter().map(|c| field(c)).collect::<Vec<_>>().join(",") + "\n";
        let mut out = line(&self.columns);
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }

    /// Writes `<dir>/<id>.md` and `<dir>/<id>.csv`.
    pub fn write(&self, dir: &Path) -> Result<[PathBuf; 2], AnalyzeError> {
        let md = dir.join(format!("{}.md", self.id));
        let csv = dir.join(format!("{}.csv", self.id));
        write_text(&md, &self.to_markdown())?;
        write_text(&csv, &self.to_csv())?;
        Ok([md, csv])
    }
}

/// Writes a text file (through a temporary file and a rename, so a reader never sees half).
pub fn write_text(path: &Path, text: &str) -> Result<(), AnalyzeError> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    std::fs::write(&tmp, text).map_err(|e| AnalyzeError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| AnalyzeError::io(path, e))
}

/// "–", the mark of a value that is not available.
pub const NA: &str = "–";

/// A number with `digits` decimals, or [`NA`].
pub fn num(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.digits$}"),
        _ => NA.to_string(),
    }
}

/// An accuracy (two decimals).
pub fn acc(v: Option<f64>) -> String {
    num(v, 2)
}

/// Seconds, with precision adapted to the magnitude (3 significant digits below 100 s).
pub fn secs(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() && x.abs() >= 100.0 => format!("{x:.0}"),
        Some(x) if x.is_finite() && x.abs() >= 10.0 => format!("{x:.1}"),
        Some(x) if x.is_finite() && x.abs() >= 0.01 => format!("{x:.2}"),
        Some(x) if x.is_finite() => format!("{x:.2e}"),
        _ => NA.to_string(),
    }
}

/// Bytes as MiB with two decimals.
pub fn mib(v: Option<f64>) -> String {
    num(v.map(|b| b / (1024.0 * 1024.0)), 2)
}

/// An integer count.
pub fn count(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{}", x.round() as i64),
        _ => NA.to_string(),
    }
}

/// ours / reference with three decimals, or [`NA`].
pub fn ratio(ours: Option<f64>, reference: Option<f64>) -> String {
    match (ours, reference) {
        (Some(o), Some(r)) if r != 0.0 && o.is_finite() => format!("{:.3}", o / r),
        _ => NA.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_and_csv() {
        let mut t = Table::new("t", "A title", &["a", "b|c"]);
        t.push(vec!["1".into(), "{\"1\":[4],\"2\":[12]}".into()]);
        t.push(vec!["only one".into()]);
        t.note("a note");
        assert_eq!(
            t.to_markdown(),
            "# A title\n\n| a | b\\|c |\n|---|---|\n| 1 | {\"1\":[4],\"2\":[12]} |\n| only one |  |\n\n- a note\n"
        );
        assert_eq!(
            t.to_csv(),
            "a,b|c\n1,\"{\"\"1\"\":[4],\"\"2\"\":[12]}\"\nonly one,\n"
        );
    }

    #[test]
    fn formats() {
        assert_eq!(acc(Some(99.4)), "99.40");
        assert_eq!(acc(None), "–");
        assert_eq!(secs(Some(2803.4)), "2803");
        assert_eq!(secs(Some(17.25)), "17.2");
        assert_eq!(secs(Some(2.55)), "2.55");
        assert_eq!(secs(Some(0.000024)), "2.40e-5");
        assert_eq!(mib(Some(1048576.0 * 1.5)), "1.50");
        assert_eq!(ratio(Some(99.4), Some(99.36)), "1.000");
        assert_eq!(ratio(Some(1.0), Some(0.0)), "–");
        assert_eq!(count(Some(3.0)), "3");
    }
}
