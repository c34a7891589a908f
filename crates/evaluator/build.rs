//! Bakes libtorch's folder into the binary as an rpath, so it runs without
//! LD_LIBRARY_PATH (torch-sys exports the folder to direct dependents).
fn main() {
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
