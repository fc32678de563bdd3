//! Builds every table from the loaded runs. Each builder takes the runs and returns a
//! [`Table`]; a run whose input is missing gets a note saying which file and which command
//! produces it (only for canonical run folders: renamed variants are shown with what they have).
//! One file per table family: [`accuracy`] (Tables 1 and 7), [`selection`] (Tables 2–5),
//! [`greedy_layer1`] (greedy's rank split into its conv1 and conv2 steps), [`he`] (HE costs and
//! operation counts), [`reference_comparison`] (ours vs the reference).

pub mod accuracy;
pub mod greedy_layer1;
pub mod he;
pub mod reference_comparison;
pub mod selection;

pub use accuracy::{recovery, table1};
pub use he::{he_costs, he_operations, op_models};
pub use reference_comparison::reference_comparison;
pub use selection::{algorithms, ranks, selection_time};

use crate::runs::Run;
use crate::table::Table;

/// Every table, in the order of the index.
pub fn all(runs: &[Run]) -> Vec<Table> {
    vec![
        table1(runs),
        ranks(runs),
        greedy_layer1::greedy_layer1(runs),
        selection_time(runs),
        algorithms(runs),
        recovery(runs),
        crate::security::key_recovery(runs),
        he_costs(runs),
        he_operations(runs),
        reference_comparison(runs),
        crate::systems::table::systems_comparison(runs),
    ]
}

pub(crate) fn model_name(run: &Run) -> String {
    let m = &run.config.pipeline.model;
    if m.architecture == "lenet5" {
        format!(
            "lenet5 {}/{} ×{}",
            m.lenet_filters[0], m.lenet_filters[1], m.width
        )
    } else {
        format!("{} ×{}", m.architecture, m.width)
    }
}

pub(crate) fn group_label(sizes: [usize; 2]) -> String {
    format!("({}, {})", sizes[0], sizes[1])
}

/// Notes for canonical runs whose `input` is missing or unreadable.
pub(crate) fn missing_note<T>(
    t: &mut Table,
    run: &Run,
    input: &crate::json::Input<T>,
    command: &str,
    stage: Option<&str>,
) {
    let problem = match stage {
        Some(stage) => input.stage_problem(command, stage),
        None => input.problem(command),
    };
    if let Some(problem) = problem
        && (run.is_canonical() || matches!(input, crate::json::Input::Invalid(..)))
    {
        t.note(format!("{}: {problem}", run.name));
    }
}
