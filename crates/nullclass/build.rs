//! Bakes libtorch's folder into this crate's test binaries as an rpath, so they run
//! without LD_LIBRARY_PATH (torch-sys exports the folder to direct dependents).
fn main() {
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        println!("cargo:rustc-env=NULLCLASS_LIBTORCH_LIB={lib}");
    }
}
