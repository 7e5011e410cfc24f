//! The workflow loader: one workflow file's bytes (as read from a git revision, so nothing
//! touches the disk) loaded and checked. Nothing may panic; every problem is a diagnostic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use std::path::PathBuf;
use vane::workflow::{LoadOptions, Snapshot, WorkflowSource, load_workflows_from};

fuzz_target!(|data: &[u8]| {
    let options = LoadOptions {
        workflows_dir: PathBuf::from("workflows"),
        templates_dir: PathBuf::from("templates"),
    };
    let snapshot = Snapshot {
        commit: "0".repeat(40),
        workflows: vec![(PathBuf::from("workflows/fuzz.yaml"), data.to_vec())],
        templates: HashMap::new(),
        skipped: Vec::new(),
    };
    let (set, diagnostics) = load_workflows_from(&options, WorkflowSource::Revision(snapshot), &[]);
    for diagnostic in &diagnostics {
        let _ = diagnostic.to_string();
    }
    drop(set);
});
