//! Every example dialplan in the repository passes `check`.

use std::path::PathBuf;

fn dialplans() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../dialplans")
}

#[test]
fn every_example_dialplan_is_valid() {
    let mut count = 0;
    for entry in std::fs::read_dir(dialplans()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Err(errors) = ivr::Dialplan::load(&path) {
                panic!("{} is invalid:\n{errors}", path.display());
            }
            count += 1;
        }
    }
    assert!(count >= 1, "no example dialplans found");
}
