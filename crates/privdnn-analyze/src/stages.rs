//! Typed readers of the outputs of the stages that exist: the training stage's `metrics.json`
//! (`privdnn-train`, `TrainMetrics`) and the selection stage's `metrics.json`, `sweep.json`,
//! `exhaustive.json` and `exhaustive_points.csv` (`privdnn-select`, `cli.rs` / `choose.rs`).
//! Only the fields the tables use are declared; unknown fields are ignored, so a stage may add
//! fields without breaking the analysis. A missing or mistyped field is an error naming the
//! file, line and field.

use std::path::Path;

use serde::Deserialize;

use crate::error::AnalyzeError;

/// `results/<run>/train/metrics.json` (the fields used here).
#[derive(Clone, Debug, Deserialize)]
pub struct TrainMetrics {
    /// Epochs run.
    pub epochs_run: usize,
    /// Top-1 test accuracy of the kept weights, percent (A_o).
    pub test_accuracy: f64,
    /// Top-5 test accuracy, percent.
    pub test_top5_accuracy: f64,
    /// Top-1 validation accuracy, percent.
    pub validation_accuracy: f64,
    /// Per-class test accuracy (its length is the number of classes).
    #[serde(default)]
    pub test_per_class_accuracy: Vec<f64>,
    /// Wall seconds of the training invocation.
    pub seconds: f64,
}

/// Accuracies of a selection on one split (`SplitScores` of `privdnn-select`).
#[derive(Clone, Debug, Deserialize)]
pub struct SplitScores {
    /// Images evaluated.
    pub images: usize,
    /// A_o, percent.
    pub original: f64,
    /// A_s, percent.
    pub separate: f64,
    /// A_r, percent.
    pub removed: f64,
    /// point(A_s, A_r).
    pub point: f64,
}

/// One selection with its scores: `select/metrics.json`, and each element of `sweep.json`.
#[derive(Clone, Debug, Deserialize)]
pub struct SelectionRecord {
    /// Algorithm name.
    pub algorithm: String,
    /// Percent of a sweep point (0 when sized by counts).
    #[serde(default)]
    pub percent: f64,
    /// (|S1|, |S2|).
    pub sizes: [usize; 2],
    /// The selection in the reference's JSON form.
    pub selection: serde_json::Value,
    /// Scores on the selection split (validation).
    pub validation: SplitScores,
    /// Scores on the report split (test).
    pub test: SplitScores,
    /// Tail evaluations performed.
    #[serde(default)]
    pub evaluations: usize,
    /// Random draws.
    #[serde(default)]
    pub draws: usize,
    /// Wall seconds of the algorithm.
    pub seconds: f64,
}

/// The rank of one algorithm's choice inside an exhaustive group.
#[derive(Clone, Debug, Deserialize)]
pub struct AlgorithmRank {
    /// Algorithm name.
    pub algorithm: String,
    /// Its selection.
    pub selection: serde_json::Value,
    /// Rank (1 = best point), `None` when the choice is outside the group.
    pub rank: Option<usize>,
    /// Rank with ties counted against the choice (absent in files before it was recorded).
    #[serde(default)]
    pub worst_rank: Option<usize>,
    /// The choice's point in the group (absent in files before it was recorded).
    #[serde(default)]
    pub point: Option<f64>,
    /// Wall seconds of the algorithm.
    pub seconds: f64,
    /// Random draws (random only).
    #[serde(default)]
    pub draws: usize,
}

/// One group of `exhaustive.json`.
#[derive(Clone, Debug, Deserialize)]
pub struct GroupSummary {
    /// (|S1|, |S2|).
    pub sizes: [usize; 2],
    /// Number of selections in the group.
    pub selections: usize,
    /// Seconds spent scoring the whole group.
    pub seconds: f64,
    /// Best selection (highest point).
    pub best: serde_json::Value,
    /// A_s, A_r, point of the best selection.
    pub best_scores: [f64; 3],
    /// Worst selection.
    pub worst: serde_json::Value,
    /// A_s, A_r, point of the worst selection.
    pub worst_scores: [f64; 3],
    /// Each algorithm's rank.
    pub ranks: Vec<AlgorithmRank>,
    /// Greedy's choice made on the other split, ranked in this group (absent in older files).
    #[serde(default)]
    pub greedy_other_split: Option<AlgorithmRank>,
    /// Expected best rank of random search with random's number of draws.
    pub expected_random_rank: f64,
}

impl GroupSummary {
    /// The rank entry of `algorithm`.
    pub fn rank(&self, algorithm: &str) -> Option<&AlgorithmRank> {
        self.ranks.iter().find(|r| r.algorithm == algorithm)
    }
}

/// A selection as compact reference JSON, e.g. `{"1":[4],"2":[12]}`.
pub fn selection_text(v: &serde_json::Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| v.to_string())
}

/// One row of `exhaustive_points.csv` (scores on the selection split).
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Selected conv1 channels, ascending.
    pub layer1: Vec<usize>,
    /// A_s, percent.
    pub separate: f64,
    /// A_r, percent.
    pub removed: f64,
    /// point(A_s, A_r).
    pub point: f64,
}

/// Reads the members of group `sizes` from `exhaustive_points.csv`, best point first (rank 1
/// first; the file is already sorted that way within a group, the sort makes sure).
pub fn read_group_points(path: &Path, sizes: [usize; 2]) -> Result<Vec<Point>, AnalyzeError> {
    let text = std::fs::read_to_string(path).map_err(|e| AnalyzeError::io(path, e))?;
    parse_group_points(path, &text, sizes)
}

/// [`read_group_points`] on the text of the file.
pub fn parse_group_points(
    path: &Path,
    text: &str,
    sizes: [usize; 2],
) -> Result<Vec<Point>, AnalyzeError> {
    let mut lines = text.lines().enumerate();
    let expected = "s1_size,s2_size,layer1,layer2,separate,removed,point";
    match lines.next() {
        Some((_, header)) if header.trim() == expected => {}
        _ => {
            return Err(AnalyzeError::malformed(
                path,
                format!("line 1: expected the header `{expected}`"),
            ));
        }
    }
    let prefix = format!("{},{},", sizes[0], sizes[1]);
    let mut out = Vec::new();
    for (i, line) in lines {
        if line.is_empty() || !line.starts_with(&prefix) {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let number = |j: usize| -> Result<f64, AnalyzeError> {
            fields
                .get(j)
                .and_then(|f| f.trim().parse::<f64>().ok())
                .ok_or_else(|| {
                    AnalyzeError::malformed(
                        path,
                        format!("line {}: field {} is not a number: `{line}`", i + 1, j + 1),
                    )
                })
        };
        if fields.len() != 7 {
            return Err(AnalyzeError::malformed(
                path,
                format!("line {}: expected 7 fields, found {}", i + 1, fields.len()),
            ));
        }
        let mut layer1: Vec<usize> = fields[2]
            .split_whitespace()
            .map(|v| v.parse::<usize>())
            .collect::<Result<_, _>>()
            .map_err(|_| {
                AnalyzeError::malformed(
                    path,
                    format!("line {}: field 3 is not a channel list: `{line}`", i + 1),
                )
            })?;
        layer1.sort_unstable();
        out.push(Point {
            layer1,
            separate: number(4)?,
            removed: number(5)?,
            point: number(6)?,
        });
    }
    out.sort_by(|a, b| b.point.total_cmp(&a.point));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_of_one_group_sorted_by_point() {
        let text = "s1_size,s2_size,layer1,layer2,separate,removed,point\n\
                    1,1,0,1,90.0,80.0,0.1\n\
                    2,2,0 1,1 2,91.0,70.0,0.3\n\
                    2,2,0 1,1 3,92.0,60.0,0.5\n";
        let p = parse_group_points(Path::new("p.csv"), text, [2, 2]).expect("parse");
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].separate, 92.0);
        assert_eq!(p[0].layer1, [0, 1]);
        assert_eq!(p[1].removed, 70.0);
    }

    #[test]
    fn malformed_points_name_the_line() {
        let bad_header = parse_group_points(Path::new("p.csv"), "a,b\n", [1, 1]);
        assert!(
            bad_header
                .expect_err("header")
                .to_string()
                .starts_with("p.csv: line 1")
        );
        let text = "s1_size,s2_size,layer1,layer2,separate,removed,point\n1,1,0,1,x,80.0,0.1\n";
        let err = parse_group_points(Path::new("p.csv"), text, [1, 1]).expect_err("number");
        assert_eq!(
            err.to_string(),
            "p.csv: line 2: field 5 is not a number: `1,1,0,1,x,80.0,0.1`"
        );
    }
}
