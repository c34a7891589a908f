//! The README's layout section names every module of this crate, so that a new one
//! (or a moved one) cannot be left out of the map a newcomer reads first.

use std::fs;
use std::path::Path;

#[test]
fn the_layout_section_names_every_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("../../README.md")).unwrap();
    let layout = readme
        .split("## Layout")
        .nth(1)
        .expect("README.md has a Layout section");
    let layout = layout.split("\n## ").next().unwrap();
    let mut missing = Vec::new();
    for entry in fs::read_dir(root.join("src")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name == "lib.rs" {
            continue;
        }
        // A folder module is named as `stacked/`; its `stacked.rs` goes with it.
        let shown = match name.strip_suffix(".rs") {
            Some(stem) if root.join("src").join(stem).is_dir() => format!("`{stem}/`"),
            _ if !name.ends_with(".rs") => format!("`{name}/`"),
            _ => format!("`{name}`"),
        };
        if !layout.contains(&shown) {
            missing.push(shown);
        }
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "README.md's Layout section does not name {missing:?}"
    );
}
